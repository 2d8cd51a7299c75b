"""Recipes: the ordered chunk list that rebuilds a multi-chunk file.

Bytes: b"CASRCP01", u64 count, then count x (16-byte chunk id, u32 little-endian length).
A recipe is stored under its file's digest; it is verified by rebuilding the file.
"""

from __future__ import annotations

import struct

import numpy as np

from .errors import CorruptObjectError

MAGIC = b"CASRCP01"
HEAD = struct.Struct("<8sQ")
ROW = np.dtype([("id", "V16"), ("length", "<u4")])


def encode_recipe(ids: list[bytes], lengths: list[int]) -> bytes:
    rows = np.empty(len(ids), ROW)
    rows["id"] = np.frombuffer(b"".join(ids), dtype="V16")
    rows["length"] = lengths
    return HEAD.pack(MAGIC, len(ids)) + rows.tobytes()


def decode_recipe(data: bytes, *, expect_size: int | None = None) -> np.ndarray:
    """Parse a recipe into ROW records; reject anything malformed."""
    if len(data) < HEAD.size:
        raise CorruptObjectError("recipe is truncated")
    magic, count = HEAD.unpack_from(data)
    if magic != MAGIC or len(data) != HEAD.size + count * ROW.itemsize:
        raise CorruptObjectError("recipe is malformed")
    rows = np.frombuffer(data, dtype=ROW, count=count, offset=HEAD.size)
    if count and int(rows["length"].min()) == 0:
        raise CorruptObjectError("recipe lists an empty chunk")
    if expect_size is not None and int(rows["length"].sum(dtype=np.uint64)) != expect_size:
        raise CorruptObjectError("recipe lengths do not add up to the file size")
    return rows
