"""Vectorised lookups of many object ids in an Index (no Python loop per object)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..store.index import Index, Location, split_ids


def ids_array(ids: Iterable[bytes]) -> np.ndarray:
    """16-byte ids as a numpy array of V16 values."""
    raw = b"".join(ids)
    return np.frombuffer(raw, dtype="V16").copy() if raw else np.empty(0, "V16")


def find_rows(index: Index, ids: np.ndarray) -> np.ndarray:
    """Row position in ``index`` of each id (-1 where absent)."""
    out = np.full(len(ids), -1, dtype=np.int64)
    if len(ids) == 0 or len(index) == 0:
        return out
    qhi, qlo = split_ids(ids)
    left = np.searchsorted(index.hi, qhi, side="left")
    right = np.searchsorted(index.hi, qhi, side="right")
    single = (right - left) == 1
    idx = np.minimum(left, len(index) - 1)
    hit = single & (index.lo[idx] == qlo)
    out[hit] = left[hit]
    for k in np.nonzero((right - left) > 1)[0]:
        run = np.nonzero(index.lo[left[k]:right[k]] == qlo[k])[0]
        if len(run):
            out[k] = left[k] + run[0]
    return out


def id_at(index: Index, row: int) -> bytes:
    return int(index.hi[row]).to_bytes(8, "big") + int(index.lo[row]).to_bytes(8, "big")


def location_at(index: Index, row: int) -> Location:
    return Location(index.packs[int(index.pack[row])], int(index.type[row]),
                    int(index.codec[row]), int(index.raw_length[row]), int(index.offset[row]),
                    int(index.length[row]))
