"""The in-memory index: sorted numpy arrays, about 38 bytes per object.

Ids are split into two big-endian uint64 halves so that lookups are a binary search
(``np.searchsorted``) over plain integer arrays instead of a dict of Python objects,
which would cost over 200 bytes per entry.
"""

from __future__ import annotations

from collections.abc import Iterable
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
    halves = np.frombuffer(np.ascontiguousarray(ids).tobytes(), dtype=">u8")
    halves = halves.reshape(-1, 2).astype(np.uint64)
    return halves[:, 0].copy(), halves[:, 1].copy()


class Index:
    """Immutable sorted index over any number of packs."""

    def __init__(self, packs: list[str], pack_of_row: np.ndarray, entries: np.ndarray) -> None:
        self.packs = packs
        hi, lo = split_ids(entries["id"]) if len(entries) else (
            np.empty(0, np.uint64), np.empty(0, np.uint64))
        order = np.lexsort((lo, hi)) if len(hi) else np.empty(0, np.intp)
        if len(order) and not np.array_equal(order, np.arange(len(order))):
            hi, lo = hi[order], lo[order]
            pack_of_row = pack_of_row[order]
            entries = entries[order]
        self.hi = hi
        self.lo = lo
        self.pack = pack_of_row.astype(np.uint32, copy=False)
        self.type = np.ascontiguousarray(entries["type"])
        self.codec = np.ascontiguousarray(entries["codec"])
        self.raw_length = np.ascontiguousarray(entries["raw_length"])
        self.offset = np.ascontiguousarray(entries["offset"])
        self.length = np.ascontiguousarray(entries["length"])

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
        return cls(names, np.concatenate(rows), np.concatenate(entries))

    def __len__(self) -> int:
        return len(self.hi)

    def nbytes(self) -> int:
        arrays = (self.hi, self.lo, self.pack, self.type, self.codec, self.raw_length,
                  self.offset, self.length)
        return sum(a.nbytes for a in arrays)

    def _find(self, oid: bytes) -> int:
        hi = int.from_bytes(oid[:8], "big")
        lo = int.from_bytes(oid[8:16], "big")
        i = int(np.searchsorted(self.hi, np.uint64(hi)))
        n = len(self.hi)
        while i < n and int(self.hi[i]) == hi:
            if int(self.lo[i]) == lo:
                return i
            i += 1
        return -1

    def __contains__(self, oid: bytes) -> bool:
        return self._find(oid) >= 0

    def get(self, oid: bytes) -> Location | None:
        i = self._find(oid)
        return None if i < 0 else self.location_at(i)

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Row position of each of an array of 16-byte ids (-1 where absent), vectorised."""
        out = np.full(len(ids), -1, dtype=np.int64)
        if len(ids) == 0 or len(self.hi) == 0:
            return out
        qhi, qlo = split_ids(ids)
        # Sorted (hi, lo) pairs compare like 128-bit numbers: search on hi, then check lo
        # over the (almost always length-one) run of equal hi values.
        left = np.searchsorted(self.hi, qhi, side="left")
        right = np.searchsorted(self.hi, qhi, side="right")
        single = (right - left) == 1
        idx = np.minimum(left, len(self.lo) - 1)
        hit = single & (self.lo[idx] == qlo)
        out[hit] = left[hit]
        for k in np.nonzero((right - left) > 1)[0]:
            run = np.nonzero(self.lo[left[k]:right[k]] == qlo[k])[0]
            if len(run):
                out[k] = left[k] + run[0]
        return out

    def contains_many(self, ids: np.ndarray) -> np.ndarray:
        """Vectorised membership test for an array of 16-byte ids."""
        return self.rows_of(ids) >= 0

    def id_at(self, row: int) -> bytes:
        return int(self.hi[row]).to_bytes(8, "big") + int(self.lo[row]).to_bytes(8, "big")

    def location_at(self, row: int) -> Location:
        return Location(self.packs[int(self.pack[row])], int(self.type[row]),
                        int(self.codec[row]), int(self.raw_length[row]),
                        int(self.offset[row]), int(self.length[row]))

    def ids(self) -> np.ndarray:
        """All ids as 16-byte values, in index order."""
        out = np.empty((len(self.hi), 2), dtype=">u8")
        out[:, 0] = self.hi
        out[:, 1] = self.lo
        return out.view("V16").reshape(-1)

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

    def mask_of(self, ids: set[bytes]) -> np.ndarray:
        """Which rows hold one of ``ids`` (every copy, in whatever pack)."""
        if not ids or not len(self):
            return np.zeros(len(self), dtype=bool)
        want = Index([], np.zeros(len(ids), np.uint32), _bare_entries(ids))
        return want.contains_many(self.ids())


def _bare_entries(ids: set[bytes]) -> np.ndarray:
    ents = np.zeros(len(ids), ENTRY_DTYPE)
    ents["id"] = np.frombuffer(b"".join(ids), dtype="V16")
    return ents
