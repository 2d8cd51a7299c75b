"""Reading many objects of a remote in few requests: range planning and verified download.

The objects wanted from one pack are sorted by offset and neighbours less than GAP apart
are read in one request (up to SPAN bytes), so a pack that is mostly needed is read almost
whole and a pack that is barely needed costs a few small requests. Every object is checked
against its id before it is used or stored.

Nothing a remote claims is allocated unchecked: each object's decoded size must be within
the store's ``Limits`` for its kind (a chunk within ``chunking.max``, a recipe within what
its file can need) before its span is planned, and the bytes of spans in flight across all
threads stay within ``Limits.in_flight``, whatever ``-j`` is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from ..errors import CorruptObjectError
from ..recipe import decode_recipe
from ..store.index import Index, Location
from ..store.local import PackWriter
from ..store.objects import Codec, ObjectType
from ..store.verify import verified

if TYPE_CHECKING:
    from .store import RemoteStore

_T = TypeVar("_T")


@dataclass
class Transferred:
    """Counters of one download."""

    objects: int = 0
    bytes: int = 0
    ranges: int = 0


GAP = 1 << 20  # read through holes smaller than this rather than start a new request
SPAN = 8 << 20  # largest single range request


@dataclass(frozen=True)
class Span:
    """One range request: objects [(id, location)] inside pack bytes [start, end)."""

    pack: str
    start: int
    end: int
    objects: tuple[tuple[bytes, Location], ...]


def plan_spans(wanted: Iterable[tuple[bytes, Location]], *, gap: int = GAP,
               span: int = SPAN) -> list[Span]:
    """Group objects into few range requests per pack."""
    by_pack: dict[str, list[tuple[bytes, Location]]] = {}
    for oid, loc in wanted:
        by_pack.setdefault(loc.pack, []).append((oid, loc))
    out: list[Span] = []
    for pack, objs in sorted(by_pack.items()):
        objs.sort(key=lambda o: o[1].offset)
        cur: list[tuple[bytes, Location]] = []
        start = end = 0
        for oid, loc in objs:
            o_end = loc.offset + loc.length
            if cur and loc.offset - end <= gap and o_end - start <= span:
                cur.append((oid, loc))
                end = max(end, o_end)
                continue
            if cur:
                out.append(Span(pack, start, end, tuple(cur)))
            cur, start, end = [(oid, loc)], loc.offset, o_end
        if cur:
            out.append(Span(pack, start, end, tuple(cur)))
    return out


@dataclass(frozen=True)
class RowSpan:
    """One range request for index rows: ``rows`` (of one index, in offset order) lie
    inside pack bytes [start, end)."""

    pack: str
    start: int
    end: int
    rows: np.ndarray


ROW_BLOCK = 1 << 16  # rows whose columns are gathered at once while planning


def plan_row_spans(index: Index, rows: np.ndarray, *, gap: int = GAP, span: int = SPAN
                   ) -> Iterator[RowSpan]:
    """``plan_spans`` for index rows sorted by (pack, offset), as a generator: the plan is
    made while the downloads run, a block of rows at a time, so no Python object per
    object of the whole transfer is ever held (a million 1 KiB chunks would take ~150 MB
    of ``Location`` objects)."""
    cur_pack = -1
    first = start = end = 0
    for a in range(0, len(rows), ROW_BLOCK):
        part = rows[a:a + ROW_BLOCK]
        packs = index.pack[part].tolist()
        offs = index.offset[part].tolist()
        lens = index.length[part].tolist()
        for k in range(len(part)):
            pack, off = packs[k], offs[k]
            o_end = off + lens[k]
            i = a + k
            if i > first and pack == cur_pack and off - end <= gap and o_end - start <= span:
                end = max(end, o_end)
                continue
            if i > first:
                yield RowSpan(index.packs[cur_pack], start, end, rows[first:i])
            cur_pack, first, start, end = pack, i, off, o_end
    if len(rows) > first:
        yield RowSpan(index.packs[cur_pack], start, end, rows[first:])


class Downloader:
    """Runs span reads on the remote's thread pool and verifies every object."""

    def __init__(self, rs: RemoteStore) -> None:
        self.rs = rs
        self.limits = rs.limits
        self.counts = Transferred()

    def damaged(self, oid: bytes, loc: Location, what: str) -> CorruptObjectError:
        """The one-line error for an object the remote describes or serves wrongly."""
        kind = ObjectType(loc.type).name.lower() if loc.type in (0, 1, 2) else "object"
        return CorruptObjectError(
            f"remote '{self.rs.name}': {kind} {oid.hex()} in pack {loc.pack} {what}; the "
            "remote is damaged or hostile, run 'cas fsck --remote' there")

    def check(self, oid: bytes, loc: Location, limit: int) -> None:
        """Refuse an index entry whose sizes no well-formed object has, before any read."""
        if loc.raw_length > limit:
            what = {ObjectType.CHUNK: "the maximum chunk size, chunking.max",
                    ObjectType.RECIPE: "what a recipe of its file can need",
                    ObjectType.TREE: "the limit for a folder's tree"}.get(loc.type, "the limit")
            raise self.damaged(oid, loc, f"claims {loc.raw_length} bytes, over {what} "
                                         f"({limit} bytes)")
        if loc.length > loc.raw_length or (loc.codec == Codec.NONE
                                           and loc.length != loc.raw_length):
            raise self.damaged(oid, loc, "has an index entry whose stored and decoded sizes "
                                         "disagree")

    def _read(self, sp: Span, limits: dict[bytes, int], keep: bool
              ) -> list[tuple[bytes, Location, memoryview, bytes | None]]:
        """(id, location, stored bytes, decoded bytes if ``keep``) per object; one retry on
        bad data (a corrupted transfer), then the damage is reported."""
        def decode(blob: memoryview) -> list[tuple[bytes, Location, memoryview, bytes | None]]:
            out = []
            for oid, loc in sp.objects:
                a = loc.offset - sp.start
                stored = blob[a:a + loc.length]
                data = verified(oid, loc, stored, f"remote '{self.rs.name}'", limits[oid])
                # Chunks bound for the cache are only checked here: dropping the decoded
                # bytes keeps a span of well-compressed chunks from holding gigabytes.
                out.append((oid, loc, stored, bytes(data) if keep else None))
            return out

        return self._span_retried(sp.pack, sp.start, sp.end, decode)

    def _span_retried(self, pack: str, start: int, end: int,
                      decode: Callable[[memoryview], _T]) -> _T:
        """``decode`` of the bytes [start, end) of ``pack``, read again once if it finds
        bad data (a corrupted transfer); then the damage is reported."""
        for attempt in (0, 1):
            # Views into the span, not copies: a span's bytes are held once.
            blob = memoryview(self.rs.read_range(pack, start, end))
            try:
                return decode(blob)
            except CorruptObjectError:
                if attempt:
                    raise CorruptObjectError(
                        f"remote '{self.rs.name}' pack {pack} holds damaged objects; run "
                        "'cas fsck --remote' there") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def fetch(self, wanted: list[tuple[bytes, Location]], label: str,
              writer: PackWriter | None = None, *,
              max_raw: Mapping[bytes, int] | None = None,
              sink: Callable[[bytes, Location, memoryview, bytes], None] | None = None
              ) -> dict[bytes, bytes]:
        """Download ``wanted``; with a writer, objects go to the cache and the result is
        empty, without one the decoded bytes are returned (trees, recipes), or handed to
        ``sink`` (id, location, stored bytes, decoded bytes) as they arrive, in this thread,
        so that they need not all be held at once. ``max_raw`` bounds an object's decoded
        size where the caller knows better than its type (a recipe, from its file's
        size)."""
        if not wanted:
            return {}
        limits: dict[bytes, int] = {}
        for oid, loc in wanted:
            bound = self.limits.raw_max(loc.type)
            if max_raw is not None and oid in max_raw:
                bound = min(bound, max_raw[oid])
            self.check(oid, loc, bound)
            limits[oid] = bound
        spans = plan_spans(wanted)
        total = sum(s.end - s.start for s in spans)
        keep = writer is None

        def weight(sp: Span) -> int:
            # The span's bytes, plus what decoding holds: the largest object at a time when
            # objects go to the cache, all of them when they are returned.
            raws = [loc.raw_length for _, loc in sp.objects]
            return sp.end - sp.start + (sum(raws) if keep else max(raws))

        out: dict[bytes, bytes] = {}
        with self.rs.reporter.progress(label, total) as bar:
            for sp, objs in self.rs.map(lambda s: (s, self._read(s, limits, keep)), spans,
                                        weight=weight, budget=self.limits.in_flight):
                self.counts.ranges += 1
                self.counts.bytes += sp.end - sp.start
                for oid, loc, stored, data in objs:
                    self.counts.objects += 1
                    if writer is not None:
                        if not writer.has(oid):
                            writer.put_stored(oid, loc.type, loc.codec, loc.raw_length, stored)
                    elif data is not None:
                        if sink is not None:
                            sink(oid, loc, stored, data)
                        else:
                            out[oid] = data
                bar.advance(sp.end - sp.start)
        return out

    def fetch_rows(self, index: Index, rows: np.ndarray, label: str, writer: PackWriter
                   ) -> None:
        """Download the objects at ``rows`` of the remote's ``index`` (sorted by pack and
        offset) into ``writer``, each verified against its id. The caller has made sure
        the cache lacks them and names each once, so nothing is looked up per object."""
        if not len(rows):
            return
        self._check_rows(index, rows)
        chunk_limit = self.limits.raw_max(ObjectType.CHUNK)
        total = int(index.length[rows].sum(dtype=np.int64))

        def weight(sp: RowSpan) -> int:
            # The span's bytes and the largest object it decodes at a time.
            return sp.end - sp.start + int(index.raw_length[sp.rows].max())

        def read(sp: RowSpan) -> tuple[RowSpan, list[tuple[bytes, int, int, int, memoryview]]]:
            return sp, self._read_rows(index, sp, chunk_limit)

        with self.rs.reporter.progress(label, total) as bar:
            for sp, objs in self.rs.map(read, plan_row_spans(index, rows), weight=weight,
                                        budget=self.limits.in_flight):
                self.counts.ranges += 1
                self.counts.bytes += sp.end - sp.start
                for oid, otype, codec, raw_length, stored in objs:
                    self.counts.objects += 1
                    writer.put_stored(oid, otype, codec, raw_length, stored)
                bar.advance(sp.end - sp.start)

    def _read_rows(self, index: Index, sp: RowSpan, limit: int
                   ) -> list[tuple[bytes, int, int, int, memoryview]]:
        """(id, type, codec, decoded size, stored bytes) of the rows of one span, each
        verified (decoded bytes dropped); one retry on bad data, like ``_read``."""
        rows = sp.rows
        his, los = index.hi[rows].tolist(), index.lo[rows].tolist()
        types, codecs = index.type[rows].tolist(), index.codec[rows].tolist()
        raws, offs = index.raw_length[rows].tolist(), index.offset[rows].tolist()
        lens = index.length[rows].tolist()
        where = f"remote '{self.rs.name}'"
        def decode(blob: memoryview) -> list[tuple[bytes, int, int, int, memoryview]]:
            out = []
            for k in range(len(his)):
                oid = his[k].to_bytes(8, "big") + los[k].to_bytes(8, "big")
                a = offs[k] - sp.start
                stored = blob[a:a + lens[k]]
                loc = Location(sp.pack, types[k], codecs[k], raws[k], offs[k], lens[k])
                verified(oid, loc, stored, where, limit)
                out.append((oid, types[k], codecs[k], raws[k], stored))
            return out

        return self._span_retried(sp.pack, sp.start, sp.end, decode)

    def _check_rows(self, index: Index, rows: np.ndarray) -> None:
        """``check`` for every row at once: chunks only, within the chunk limit, sizes
        consistent. The first bad row is reported as ``check`` would."""
        limit = self.limits.raw_max(ObjectType.CHUNK)
        for a in range(0, len(rows), ROW_BLOCK):
            part = rows[a:a + ROW_BLOCK]
            raw = index.raw_length[part].astype(np.int64)
            length = index.length[part].astype(np.int64)
            plain = index.codec[part] == Codec.NONE
            bad = ((index.type[part] != ObjectType.CHUNK) | (raw > limit) | (length > raw)
                   | (plain & (length != raw)))
            for k in np.nonzero(bad)[0][:1]:
                r = int(part[k])
                loc = index.location_at(r)
                if loc.type != ObjectType.CHUNK:
                    raise self.damaged(index.id_at(r), loc, "is listed where a chunk is "
                                                            "needed")
                self.check(index.id_at(r), loc, limit)


def typed_objects(wanted: Iterable[tuple[bytes, Location]], got: Mapping[bytes, bytes],
                  chunk_max: int) -> dict[bytes, tuple[int, bytes]]:
    """{id: (type, bytes)} of what a Downloader fetched. Chunks and trees were checked
    against their id while downloaded; a recipe's id is its file's digest, checked only by
    reading the whole file, so here it must at least parse as a recipe some chunker could
    have written."""
    out: dict[bytes, tuple[int, bytes]] = {}
    for oid, loc in wanted:
        data = got[oid]
        if loc.type == ObjectType.RECIPE:
            decode_recipe(data, max_chunk=chunk_max)
        out[oid] = (loc.type, data)
    return out
