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
    import pyarrow as pa

    return pa.compress(data, codec="zstd", asbytes=True)


def decompress(data: bytes, codec: int, raw_length: int) -> bytes:
    """Decode stored bytes; malformed input raises CorruptObjectError, never crashes."""
    if codec == Codec.NONE:
        return data
    if codec != Codec.ZSTD:
        raise CorruptObjectError(f"unknown codec {codec}")
    import pyarrow as pa

    try:
        out = pa.decompress(data, decompressed_size=raw_length, codec="zstd", asbytes=True)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise CorruptObjectError(f"undecodable zstd object: {exc}") from None
    if len(out) != raw_length:
        raise CorruptObjectError("object decompressed to the wrong length")
    return out
