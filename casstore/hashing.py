"""XXH3-128 ids and file digests, in the same spelling ``xxh128sum`` prints."""

from __future__ import annotations

import os

import xxhash

ID_HEX = 32
READ_BLOCK = 4 << 20


def digest_bytes(data: bytes | bytearray | memoryview) -> bytes:
    """The 16-byte XXH3-128 id of ``data`` (big-endian, as xxh128sum shows it)."""
    return xxhash.xxh3_128_digest(data)


def parse_hex_id(text: str) -> bytes:
    """Parse a 32-hex-digit id; raise ValueError on anything else."""
    if not isinstance(text, str) or len(text) != ID_HEX:
        raise ValueError(f"expected {ID_HEX} hex digits, got {text!r:.60}")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"expected {ID_HEX} hex digits, got {text!r:.60}") from None
    if raw.hex() != text:
        raise ValueError(f"ids are written in lower case, got {text!r:.60}")
    return raw


def digest_file(path: str | os.PathLike[str]) -> bytes:
    """Streaming XXH3-128 of a whole file, read through one reused buffer."""
    h = xxhash.xxh3_128()
    buf = bytearray(READ_BLOCK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.digest()
