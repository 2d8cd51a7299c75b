"""Reading many objects of a remote in few requests: range planning and verified download.

The objects wanted from one pack are sorted by offset and neighbours less than GAP apart
are read in one request (up to SPAN bytes), so a pack that is mostly needed is read almost
whole and a pack that is barely needed costs a few small requests. Every object is checked
against its id before it is used or stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import CorruptObjectError
from ..store.index import Location
from ..store.local import PackWriter
from ..store.verify import verified

if TYPE_CHECKING:
    from .store import RemoteStore


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


class Downloader:
    """Runs span reads on the remote's thread pool and verifies every object."""

    def __init__(self, rs: RemoteStore) -> None:
        self.rs = rs
        self.counts = Transferred()

    def _read(self, sp: Span) -> list[tuple[bytes, Location, bytes, bytes]]:
        """(id, location, stored bytes, decoded bytes) per object; one retry on bad data
        (a corrupted transfer), then the damage is reported."""
        for attempt in (0, 1):
            blob = self.rs.read_range(sp.pack, sp.start, sp.end)
            try:
                out = []
                for oid, loc in sp.objects:
                    a = loc.offset - sp.start
                    stored = blob[a:a + loc.length]
                    out.append((oid, loc, stored, verified(oid, loc, stored,
                                                              f"remote '{self.rs.name}'")))
                return out
            except CorruptObjectError:
                if attempt:
                    raise CorruptObjectError(
                        f"remote '{self.rs.name}' pack {sp.pack} holds damaged objects; run "
                        "'cas fsck --remote' there") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def fetch(self, wanted: list[tuple[bytes, Location]], label: str,
              writer: PackWriter | None = None) -> dict[bytes, bytes]:
        """Download ``wanted``; with a writer, objects go to the cache and the result is
        empty, without one the decoded bytes are returned (trees, recipes)."""
        if not wanted:
            return {}
        spans = plan_spans(wanted)
        total = sum(s.end - s.start for s in spans)
        out: dict[bytes, bytes] = {}
        with self.rs.reporter.progress(label, total) as bar:
            for sp, objs in self.rs.map(lambda s: (s, self._read(s)), spans):
                self.counts.ranges += 1
                self.counts.bytes += sp.end - sp.start
                for oid, loc, stored, data in objs:
                    self.counts.objects += 1
                    if writer is not None:
                        if not writer.has(oid):
                            writer.put_stored(oid, loc.type, loc.codec, loc.raw_length, stored)
                    else:
                        out[oid] = data
                bar.advance(sp.end - sp.start)
        return out
