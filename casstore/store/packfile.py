"""The pack file format: many objects back to back, with a self-describing trailer.

Layout (see docs/format.md):
    b"CASPACK1"                                  8-byte magic
    object bytes ...                             stored (possibly compressed) bytes
    entry table: N x ENTRY (34 bytes each)       id, type, codec, raw length, offset, length
    u64 N (little-endian)
    b"CASPEND1"                                  8-byte end magic
A pack's name is the XXH3-128 of its trailer (entry table and footer). The table lists the
id of every object, and every object is verified against its id when read, so the name
pins the whole content the way a Merkle root does, without hashing every byte a second time
while writing. The trailer also lets an index be rebuilt from the pack alone.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..errors import CorruptObjectError
from ..hashing import digest_bytes

MAGIC = b"CASPACK1"
END_MAGIC = b"CASPEND1"
FOOTER = struct.Struct("<Q8s")
ENTRY_DTYPE = np.dtype([
    ("id", "V16"), ("type", "u1"), ("codec", "u1"), ("raw_length", "<u4"),
    ("offset", "<u8"), ("length", "<u4"),
], align=False)
assert ENTRY_DTYPE.itemsize == 34
MAX_ENTRIES = 1 << 26


def encode_trailer(entries: np.ndarray) -> bytes:
    """The bytes that close a pack whose objects are described by ``entries``."""
    return entries.astype(ENTRY_DTYPE, copy=False).tobytes() + FOOTER.pack(len(entries), END_MAGIC)


def pack_name(entries: np.ndarray) -> str:
    """The name of the pack whose entry table is ``entries``."""
    return digest_bytes(encode_trailer(entries)).hex()


def decode_trailer(tail: bytes, pack_size: int) -> np.ndarray:
    """Parse and bounds-check the entry table from the last bytes of a pack.

    ``tail`` must hold at least the table and footer; ``pack_size`` is the whole pack's
    length, used to reject entries pointing outside the object region.
    """
    if len(tail) < FOOTER.size:
        raise CorruptObjectError("pack is too short to hold a trailer")
    count, magic = FOOTER.unpack(tail[-FOOTER.size:])
    if magic != END_MAGIC:
        raise CorruptObjectError("pack trailer magic is wrong (truncated or not a pack)")
    table_len = count * ENTRY_DTYPE.itemsize
    if count > MAX_ENTRIES or table_len + FOOTER.size + len(MAGIC) > pack_size:
        raise CorruptObjectError("pack trailer claims more entries than the pack can hold")
    if len(tail) < table_len + FOOTER.size:
        raise CorruptObjectError("pack trailer is incomplete")
    start = len(tail) - FOOTER.size - table_len
    entries = np.frombuffer(tail, dtype=ENTRY_DTYPE, count=count, offset=start).copy()
    validate_entries(entries, pack_size - FOOTER.size - table_len)
    return entries


def trailer_size_hint(pack_size: int) -> int:
    """How many tail bytes to read first: enough for a typical pack's table in one read."""
    return min(pack_size, 1 << 20)


def validate_entries(entries: np.ndarray, region_end: int) -> None:
    """Reject entries that point outside the object region or carry unknown kinds."""
    if len(entries) == 0:
        return
    offs = entries["offset"].astype(np.uint64)
    ends = offs + entries["length"].astype(np.uint64)
    if int(offs.min()) < len(MAGIC) or int(ends.max()) > region_end:
        raise CorruptObjectError("pack entry points outside the pack")
    if int(entries["type"].max()) > 2 or int(entries["codec"].max()) > 1:
        raise CorruptObjectError("pack entry has an unknown type or codec")


def salted_copy(path: Path, dest_dir: Path) -> tuple[Path, str, np.ndarray]:
    """A copy of pack ``path`` under a new name: the same objects plus one more entry, an
    empty chunk (id = hash of no bytes, length 0), so the trailer and the name change and
    nothing a reader verifies does. Used to publish objects again without reusing the key
    of a pack a collector has condemned."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        f.seek(size - trailer_size_hint(size))
        try:
            entries = decode_trailer(f.read(), size)
        except CorruptObjectError:
            f.seek(0)
            entries = decode_trailer(f.read(), size)
        region = size - FOOTER.size - len(entries) * ENTRY_DTYPE.itemsize
        extra = np.zeros(1, ENTRY_DTYPE)
        extra["id"] = np.frombuffer(digest_bytes(b""), dtype="V16")
        extra["offset"] = region
        salted = np.concatenate([entries, extra])
        name = pack_name(salted)
        out = dest_dir / f"{name}.pack"
        f.seek(0)
        with open(out, "wb") as w:
            left = region
            while left > 0:
                block = f.read(min(left, 8 << 20))
                if not block:
                    raise CorruptObjectError(f"pack {path.name} is truncated")
                w.write(block)
                left -= len(block)
            w.write(encode_trailer(salted))
    return out, name, salted
