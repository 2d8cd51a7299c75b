"""Object types and codecs shared by packs, indexes and readers."""

from __future__ import annotations

import enum

from ..errors import CorruptObjectError


class ObjectType(enum.IntEnum):
    CHUNK = 0  # raw file bytes; id = XXH3-128 of the bytes
    RECIPE = 1  # chunk list of a multi-chunk file; id = digest of the whole file
    TREE = 2  # directory manifest; id = XXH3-128 of its canonical bytes


class Codec(enum.IntEnum):
    NONE = 0
    ZSTD = 1


def compress(data: bytes | memoryview, codec: Codec) -> bytes | memoryview:
    if codec == Codec.NONE:
        return data
    # start-up: pyarrow (its zstd codec) costs ~0.1 s to import; 'cas status' reads no object
    import pyarrow as pa

    return pa.compress(data, codec="zstd", asbytes=True)


ZSTD_MAGIC = 0xFD2FB528


def zstd_content_size(data: bytes | memoryview) -> int | None:
    """The content size a zstd frame header declares (None if it declares none)."""
    if len(data) < 6 or int.from_bytes(data[:4], "little") != ZSTD_MAGIC:
        raise CorruptObjectError("object is not a zstd frame")
    fhd = data[4]
    single_segment = (fhd >> 5) & 1
    pos = 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[fhd & 3]
    size_len = (1 if single_segment else 0, 2, 4, 8)[fhd >> 6]
    if size_len == 0:
        return None
    if len(data) < pos + size_len:
        raise CorruptObjectError("zstd frame header is truncated")
    return int.from_bytes(data[pos:pos + size_len], "little") + (256 if size_len == 2 else 0)


def decompress(data: bytes | memoryview, codec: int, raw_length: int,
               limit: int | None = None) -> bytes | memoryview:
    """Decode stored bytes; malformed input raises CorruptObjectError, never crashes.

    ``limit`` bounds the decoded size: the output buffer is sized by ``raw_length`` (from
    an index, possibly a remote's, possibly crafted), so it is checked before anything is
    allocated, and the decoder never writes past ``raw_length``.
    """
    if limit is not None and raw_length > limit:
        raise CorruptObjectError(f"object claims {raw_length} bytes, over the {limit}-byte "
                                 "limit for its kind")
    if codec == Codec.NONE:
        if len(data) != raw_length:
            raise CorruptObjectError("object's stored size does not match its index entry")
        return data
    if codec != Codec.ZSTD:
        raise CorruptObjectError(f"unknown codec {codec}")
    if len(data) > raw_length:
        # The writer keeps zstd only when it is smaller than the raw bytes.
        raise CorruptObjectError("compressed object is larger than its decoded size")
    # raw_length comes from an index (possibly a remote's, possibly crafted) and sizes the
    # output buffer: check it against the frame's own header before allocating anything.
    declared = zstd_content_size(data)
    if declared is not None and declared != raw_length:
        raise CorruptObjectError("object's decoded size does not match its index entry")
    # start-up: as in compress
    import pyarrow as pa

    try:
        out = pa.decompress(data, decompressed_size=raw_length, codec="zstd", asbytes=True)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise CorruptObjectError(f"undecodable zstd object: {exc}") from None
    if len(out) != raw_length:
        raise CorruptObjectError("object decompressed to the wrong length")
    return out
