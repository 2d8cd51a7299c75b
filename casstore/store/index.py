"""The in-memory index: sorted numpy arrays, about 38 bytes per object.

Ids are split into two big-endian uint64 halves so that lookups are a binary search
(``np.searchsorted``) over plain integer arrays instead of a dict of Python objects,
which would cost over 200 bytes per entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from .packfile import ENTRY_DTYPE


@dataclass(frozen=True)
class Location:
    """Where one object lives."""

    pack: str
    type: int
    codec: int
    raw_length: int
    offset: int
    length: int


def ids_array(ids: Iterable[bytes]) -> np.ndarray:
    """16-byte ids as a numpy array of V16 values."""
    raw = b"".join(ids)
    return np.frombuffer(raw, dtype="V16").copy() if raw else np.empty(0, "V16")


def split_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hi, lo) native uint64 halves of an array of 16-byte ids."""
    # A view, not a copy of the ids (``tobytes`` would hold a third copy at the peak).
    halves = np.ascontiguousarray(ids).view(">u8").reshape(-1, 2)
    return halves[:, 0].astype(np.uint64), halves[:, 1].astype(np.uint64)


def join_ids(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """16-byte ids (V16) from their (hi, lo) halves: the inverse of ``split_ids``."""
    out = np.empty((len(hi), 2), dtype=">u8")
    out[:, 0] = hi
    out[:, 1] = lo
    return out.view("V16").reshape(-1)


def find_rows(hi: np.ndarray, lo: np.ndarray, qhi: np.ndarray, qlo: np.ndarray
              ) -> np.ndarray:
    """Row of each query id (qhi, qlo) in the sorted id halves (hi, lo); -1 where absent."""
    out = np.full(len(qhi), -1, dtype=np.int64)
    if len(qhi) == 0 or len(hi) == 0:
        return out
    # Sorted (hi, lo) pairs compare like 128-bit numbers: search on hi, then check lo
    # over the (almost always length-one) run of equal hi values.
    left = np.searchsorted(hi, qhi, side="left")
    right = np.searchsorted(hi, qhi, side="right")
    single = (right - left) == 1
    idx = np.minimum(left, len(lo) - 1)
    hit = single & (lo[idx] == qlo)
    out[hit] = left[hit]
    for k in np.nonzero((right - left) > 1)[0]:
        run = np.nonzero(lo[left[k]:right[k]] == qlo[k])[0]
        if len(run):
            out[k] = left[k] + run[0]
    return out


def _find_one(hi: np.ndarray, lo: np.ndarray, oid: bytes) -> int:
    """Row of one id in sorted halves, -1 where absent."""
    if len(oid) != 16:
        return -1
    qhi = np.uint64(int.from_bytes(oid[:8], "big"))
    # The array's own method: a third of the cost of np.searchsorted's dispatch (measured,
    # 3 us against 9 us per lookup on a million ids); a miss returns after one compare.
    i = int(hi.searchsorted(qhi))
    n = len(hi)
    if i < n and hi[i] == qhi:
        qlo = np.uint64(int.from_bytes(oid[8:], "big"))
        while i < n and hi[i] == qhi:
            if lo[i] == qlo:
                return i
            i += 1
    return -1


def sort_order(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """The permutation that sorts ids (hi, lo) as 128-bit numbers."""
    # Ids are hashes, so different ids almost never share a first half: one sort of the
    # first halves (several times faster than a two-key sort of a million ids) orders them,
    # unless a crafted store has such a pair; then both keys are sorted.
    order = np.argsort(hi, kind="stable")
    shi, slo = hi[order], lo[order]
    if bool(((shi[1:] == shi[:-1]) & (slo[1:] != slo[:-1])).any()):
        order = np.lexsort((lo, hi))
    return order


def _sort_unique(hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hi, lo) sorted as 128-bit numbers, duplicates dropped."""
    if len(hi) < 2:
        return hi, lo
    order = sort_order(hi, lo)
    hi, lo = hi[order], lo[order]
    del order
    tie = hi[1:] == hi[:-1]
    dup = tie & (lo[1:] == lo[:-1])
    if bool(dup.any()):
        keep = np.ones(len(hi), dtype=bool)
        keep[1:] = ~dup
        hi, lo = hi[keep], lo[keep]
    return hi, lo


class IdSet:
    """A set of 16-byte ids held as two sorted uint64 arrays: 16 bytes per id.

    A Python set of a million ids costs about 90 MB (a bytes object and a hash slot per id)
    and each lookup is Python work; this costs 16 MB, and testing many ids at once is one
    vectorised binary search. Immutable; iterating yields the ids as bytes, in order.
    """

    __slots__ = ("hi", "lo")

    def __init__(self, hi: np.ndarray, lo: np.ndarray) -> None:
        self.hi, self.lo = hi, lo  # sorted, unique (use the constructors below)

    @classmethod
    def from_array(cls, ids: np.ndarray) -> IdSet:
        """The set of an array of 16-byte ids (V16), in any order, duplicates allowed."""
        if len(ids) == 0:
            return cls.empty()
        return cls(*_sort_unique(*split_ids(ids)))

    @classmethod
    def of(cls, ids: Iterable[bytes]) -> IdSet:
        return cls.from_array(ids_array(ids))

    @classmethod
    def empty(cls) -> IdSet:
        return cls(np.empty(0, np.uint64), np.empty(0, np.uint64))

    @classmethod
    def union_of(cls, parts: Iterable[IdSet]) -> IdSet:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        return cls(*_sort_unique(np.concatenate([p.hi for p in parts]),
                                 np.concatenate([p.lo for p in parts])))

    def __len__(self) -> int:
        return len(self.hi)

    def __bool__(self) -> bool:
        return len(self.hi) > 0

    def __iter__(self) -> Iterator[bytes]:
        for a, b in zip(self.hi.tolist(), self.lo.tolist(), strict=True):
            yield a.to_bytes(8, "big") + b.to_bytes(8, "big")

    def __contains__(self, oid: object) -> bool:
        return isinstance(oid, bytes) and _find_one(self.hi, self.lo, oid) >= 0

    def __eq__(self, other: object) -> bool:
        if isinstance(other, IdSet):
            return bool(np.array_equal(self.hi, other.hi) and np.array_equal(self.lo, other.lo))
        if isinstance(other, (set, frozenset)):
            return len(other) == len(self) and all(x in self for x in other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-like equality, as a set

    def __or__(self, other: IdSet | Iterable[bytes]) -> IdSet:
        return IdSet.union_of([self, other if isinstance(other, IdSet) else IdSet.of(other)])

    def array(self) -> np.ndarray:
        """The ids as 16-byte values (V16), sorted."""
        return join_ids(self.hi, self.lo)

    def contains_many(self, ids: np.ndarray) -> np.ndarray:
        """Which of an array of 16-byte ids are in the set."""
        return self.contains_halves(*split_ids(ids)) if len(ids) else np.zeros(0, bool)

    def contains_halves(self, qhi: np.ndarray, qlo: np.ndarray) -> np.ndarray:
        """``contains_many`` for ids already split into (hi, lo) halves."""
        return find_rows(self.hi, self.lo, qhi, qlo) >= 0

    def without(self, other: IdSet) -> IdSet:
        """The ids of this set that ``other`` lacks."""
        if not len(other) or not len(self):
            return self
        keep = ~other.contains_halves(self.hi, self.lo)
        return IdSet(self.hi[keep], self.lo[keep])


class IdBuffer:
    """Collects ids (duplicates welcome) at 16 bytes each and turns them into an IdSet.

    Past a threshold the collected ids are folded into a sorted set, so a walk that meets
    the same ids many times (a folder in many commits) holds each about once.
    """

    FOLD = 1 << 20  # ids

    def __init__(self) -> None:
        self._buf = bytearray()
        self._done = IdSet.empty()

    def add(self, oid: bytes) -> None:
        self._buf += oid
        self._maybe_fold()

    def extend(self, ids: np.ndarray) -> None:
        """Add an array of 16-byte ids."""
        self._buf += np.ascontiguousarray(ids).tobytes()
        self._maybe_fold()

    def _maybe_fold(self) -> None:
        if len(self._buf) >= 16 * max(self.FOLD, len(self._done)):
            self._fold()

    def _fold(self) -> None:
        if self._buf:
            fresh = IdSet.from_array(np.frombuffer(bytes(self._buf), dtype="V16"))
            self._buf = bytearray()
            self._done = IdSet.union_of([self._done, fresh])

    def ids(self) -> IdSet:
        self._fold()
        return self._done

    def clear(self) -> None:
        """Forget every id (the memory goes with them)."""
        self._buf = bytearray()
        self._done = IdSet.empty()


class _Columns:
    """The ENTRY_DTYPE rows of several index files, one column at a time: ``cols[name]``
    concatenates that column only."""

    def __init__(self, parts: list[np.ndarray]) -> None:
        self.parts = parts

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def __getitem__(self, name: str) -> np.ndarray:
        return np.concatenate([p[name] for p in self.parts])


class Index:
    """Immutable sorted index over any number of packs."""

    def __init__(self, packs: list[str], pack_of_row: np.ndarray,
                 entries: np.ndarray | _Columns) -> None:
        self.packs = packs
        hi, lo = split_ids(entries["id"]) if len(entries) else (
            np.empty(0, np.uint64), np.empty(0, np.uint64))
        order: np.ndarray | None = sort_order(hi, lo) if len(hi) > 1 else None
        if order is not None and bool((order[1:] > order[:-1]).all()):
            order = None  # already sorted (a merged index file)
        if order is not None:
            hi, lo = hi[order], lo[order]
            pack_of_row = pack_of_row[order]
        self.hi = hi
        self.lo = lo
        self.pack = pack_of_row.astype(np.uint32, copy=False)

        # Column by column, not a reordered copy of all entries: a million rows at once
        # would hold one more 40 MB array at the peak.
        def column(name: str) -> np.ndarray:
            col = entries[name]
            return col[order] if order is not None else np.ascontiguousarray(col)

        self.type = column("type")
        self.codec = column("codec")
        self.raw_length = column("raw_length")
        self.offset = column("offset")
        self.length = column("length")

    @classmethod
    def empty(cls) -> Index:
        return cls([], np.empty(0, np.uint32), np.empty(0, ENTRY_DTYPE))

    @classmethod
    def merge(cls, parts: list[tuple[list[str], np.ndarray, np.ndarray]]) -> Index:
        """One index over several decoded index files, pack names de-duplicated."""
        pos: dict[str, int] = {}
        rows, entries = [], []
        for packs, pack_of_row, ents in parts:
            remap = np.array([pos.setdefault(p, len(pos)) for p in packs], dtype=np.uint32)
            rows.append(remap[pack_of_row] if len(ents) else np.empty(0, np.uint32))
            entries.append(ents)
        names = list(pos)  # dicts keep insertion order, which is the position order
        if not entries:
            return cls.empty()
        if len(entries) == 1:
            return cls(names, rows[0], entries[0])
        # Column by column: concatenating whole entries would hold a second copy of every
        # file's rows (40 MB per million objects) at the peak of every index load.
        return cls(names, np.concatenate(rows), _Columns(entries))

    def __len__(self) -> int:
        return len(self.hi)

    def nbytes(self) -> int:
        arrays = (self.hi, self.lo, self.pack, self.type, self.codec, self.raw_length,
                  self.offset, self.length)
        return sum(a.nbytes for a in arrays)

    def _find(self, oid: bytes) -> int:
        return _find_one(self.hi, self.lo, oid)

    def __contains__(self, oid: bytes) -> bool:
        return self._find(oid) >= 0

    def get(self, oid: bytes) -> Location | None:
        i = self._find(oid)
        return None if i < 0 else self.location_at(i)

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Row position of each of an array of 16-byte ids (-1 where absent), vectorised."""
        if len(ids) == 0 or len(self.hi) == 0:
            return np.full(len(ids), -1, dtype=np.int64)
        return find_rows(self.hi, self.lo, *split_ids(ids))

    def types_of(self, ids: np.ndarray) -> np.ndarray:
        """The object type of each of an array of 16-byte ids (-1 where absent)."""
        rows = self.rows_of(ids)
        out = np.full(len(ids), -1, dtype=np.int16)
        hit = rows >= 0
        out[hit] = self.type[rows[hit]]
        return out

    def contains_many(self, ids: np.ndarray) -> np.ndarray:
        """Vectorised membership test for an array of 16-byte ids."""
        return self.rows_of(ids) >= 0

    def holds(self, other: Index) -> np.ndarray:
        """Which rows of ``other`` name an id this index has."""
        return find_rows(self.hi, self.lo, other.hi, other.lo) >= 0

    def id_at(self, row: int) -> bytes:
        return int(self.hi[row]).to_bytes(8, "big") + int(self.lo[row]).to_bytes(8, "big")

    def location_at(self, row: int) -> Location:
        return Location(self.packs[int(self.pack[row])], int(self.type[row]),
                        int(self.codec[row]), int(self.raw_length[row]),
                        int(self.offset[row]), int(self.length[row]))

    def ids(self) -> np.ndarray:
        """All ids as 16-byte values, in index order."""
        return join_ids(self.hi, self.lo)

    def entries_for_pack(self, pack_pos: int) -> np.ndarray:
        return np.nonzero(self.pack == pack_pos)[0]

    def entries_at(self, rows: np.ndarray) -> np.ndarray:
        """ENTRY_DTYPE rows (id, type, codec, lengths, offset) for index rows ``rows``."""
        ents = np.empty(len(rows), ENTRY_DTYPE)
        ents["id"] = self.ids()[rows]
        for col in ("type", "codec", "raw_length", "offset", "length"):
            ents[col] = getattr(self, col)[rows]
        return ents

    def subset(self, rows: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(packs, pack position per row, entries) of ``rows`` (a boolean mask or row
        numbers), naming only the packs those rows use: what an index file holds."""
        if rows.dtype == bool:
            rows = np.nonzero(rows)[0]
        used = np.unique(self.pack[rows])
        remap = np.zeros(len(self.packs), np.uint32)
        remap[used] = np.arange(len(used), dtype=np.uint32)
        return ([self.packs[int(i)] for i in used], remap[self.pack[rows]],
                self.entries_at(rows))

    def without_packs(self, packs: Iterable[str]) -> Index:
        """This index minus the rows of ``packs`` (condemned packs, for a push's view)."""
        drop = set(packs).intersection(self.packs)
        if not drop:
            return self
        keep = ~np.isin(self.pack, np.array([self.packs.index(p) for p in drop], np.uint32))
        return Index(*self.subset(keep))

    def mask_of(self, ids: IdSet | Iterable[bytes]) -> np.ndarray:
        """Which rows hold one of ``ids`` (every copy, in whatever pack)."""
        want = ids if isinstance(ids, IdSet) else IdSet.of(ids)
        if not want or not len(self):
            return np.zeros(len(self), dtype=bool)
        return want.contains_halves(self.hi, self.lo)
