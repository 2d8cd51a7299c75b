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


def decode_recipe(data: bytes, *, expect_size: int | None = None,
                  max_rows: int | None = None, max_chunk: int | None = None) -> np.ndarray:
    """Parse a recipe into ROW records; reject anything malformed.

    ``max_rows`` and ``max_chunk`` (from the chunking a repository uses: a file of S bytes
    has at most S // min + 1 chunks, none over max) refuse a recipe that no chunker could
    have written before anything iterates over its rows.
    """
    if len(data) < HEAD.size:
        raise CorruptObjectError("recipe is truncated")
    magic, count = HEAD.unpack_from(data)
    if magic != MAGIC or len(data) != HEAD.size + count * ROW.itemsize:
        raise CorruptObjectError("recipe is malformed")
    if max_rows is not None and count > max_rows:
        raise CorruptObjectError(f"recipe lists {count} chunks, more than its file can have "
                                 f"({max_rows})")
    rows = np.frombuffer(data, dtype=ROW, count=count, offset=HEAD.size)
    if count and int(rows["length"].min()) == 0:
        raise CorruptObjectError("recipe lists an empty chunk")
    if count and max_chunk is not None and int(rows["length"].max()) > max_chunk:
        raise CorruptObjectError(f"recipe lists a chunk over the {max_chunk}-byte maximum "
                                 "chunk size")
    if expect_size is not None and int(rows["length"].sum(dtype=np.uint64)) != expect_size:
        raise CorruptObjectError("recipe lengths do not add up to the file size")
    return rows
