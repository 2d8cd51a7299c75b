"""Index files: Arrow IPC tables mapping object ids to (pack, offset, length).

One index file may describe several packs (after compaction); the pack names are kept in
the schema metadata and rows refer to them by position. Arrow is used because millions of
fixed-width rows load zero-copy into numpy arrays.
"""

from __future__ import annotations

import json
import struct

import numpy as np

from ..errors import CorruptObjectError
from .packfile import ENTRY_DTYPE

FORMAT = "cas-index-1"
COLUMNS = ("id", "pack", "type", "codec", "raw_length", "offset", "length")
# An uncompressed row takes 38 bytes of column data (16 + 4 + 1 + 1 + 4 + 8 + 4): a file
# can hold no more rows than its bytes allow. Checked from the metadata before any column
# is read, so a small file claiming millions of rows costs nothing.
ROW_BYTES = 38
MAX_ROWS_PER_PACK = 1 << 26  # casstore.store.packfile.MAX_ENTRIES


def encode_index(packs: list[str], pack_of_row: np.ndarray, entries: np.ndarray) -> bytes:
    """Serialize entries (ENTRY_DTYPE rows) belonging to ``packs`` as an Arrow IPC file."""
    # start-up: pyarrow costs ~0.1 s to import; commands that read no index file skip it
    import pyarrow as pa

    ids = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(16), len(entries), [None, pa.py_buffer(np.ascontiguousarray(entries["id"]))])
    table = pa.table({
        "id": ids,
        "pack": _arrow(pa, pack_of_row, np.uint32),
        "type": _arrow(pa, entries["type"], np.uint8),
        "codec": _arrow(pa, entries["codec"], np.uint8),
        "raw_length": _arrow(pa, entries["raw_length"], np.uint32),
        "offset": _arrow(pa, entries["offset"], np.uint64),
        "length": _arrow(pa, entries["length"], np.uint32),
    })
    table = table.replace_schema_metadata({"format": FORMAT, "packs": json.dumps(packs)})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


def _arrow(pa: object, values: np.ndarray, dtype: type) -> object:
    """A numpy column as an Arrow array built from its buffer.

    ``pa.array(ndarray)`` imports pandas to check for a Series (0.3-0.6 s on every command
    that writes an index); building from the buffer imports nothing.
    """
    arr = np.ascontiguousarray(values, dtype=np.dtype(dtype).newbyteorder("<"))
    typ = {np.uint8: pa.uint8(), np.uint32: pa.uint32(), np.uint64: pa.uint64()}[dtype]  # type: ignore[attr-defined]
    return pa.Array.from_buffers(typ, len(arr), [None, pa.py_buffer(arr)])  # type: ignore[attr-defined]


def decode_index(data: bytes, name: str = "index") -> tuple[list[str], np.ndarray, np.ndarray]:
    """Parse an index file into (pack names, pack position per row, ENTRY_DTYPE rows)."""
    # start-up: as in encode_index
    import pyarrow as pa

    try:
        # Bound what reading will allocate before reading: the writer never compresses,
        # and a compressed buffer declares its own decoded size (a bomb), so compressed
        # files are refused; uncompressed columns are read in place from ``data``.
        check_uncompressed(data)
        reader = pa.ipc.open_file(pa.py_buffer(data))
        rows = reader.count_rows()  # from the metadata, nothing decoded
        if rows * ROW_BYTES > len(data):
            raise ValueError(f"claims {rows} rows in {len(data)} bytes")
        table = reader.read_all()
        meta = table.schema.metadata or {}
        if meta.get(b"format") != FORMAT.encode():
            raise ValueError("not a casstore index")
        packs = json.loads(meta[b"packs"])
        if not isinstance(packs, list) or not all(_is_pack_name(p) for p in packs):
            raise ValueError("bad pack list")
        if table.column_names != list(COLUMNS):
            raise ValueError("unexpected columns")
        n = table.num_rows
        entries = np.empty(n, dtype=ENTRY_DTYPE)
        if n:
            id_col = _single(table.column("id"))
            if id_col.null_count or id_col.type != pa.binary(16):
                raise ValueError("bad id column")
            entries["id"] = np.frombuffer(id_col.buffers()[1], dtype="V16", count=n,
                                          offset=id_col.offset * 16)
            for col in COLUMNS[2:]:
                entries[col] = _numeric(table, col, ENTRY_DTYPE[col])
        # A copy: the column is a view into ``data``, which it would keep alive.
        pack_of_row = _numeric(table, "pack", np.dtype(np.uint32)).copy() if n else \
            np.empty(0, np.uint32)
        if n and int(pack_of_row.max()) >= len(packs):
            raise ValueError("row names a pack outside the pack list")
    except (pa.ArrowException, ValueError, KeyError, TypeError, OSError, struct.error) as exc:
        raise CorruptObjectError(f"{name} is not a readable index ({exc})") from None
    return packs, pack_of_row, entries


def _numeric(table: object, name: str, dtype: np.dtype) -> np.ndarray:
    """A fixed-width column as numpy, straight from its buffer.

    ChunkedArray.to_numpy would import pandas (a quarter second) just to concatenate.
    """
    arr = _single(table.column(name))  # type: ignore[attr-defined]
    if arr.null_count:
        raise ValueError(f"column {name} has nulls")
    want = np.dtype(dtype).newbyteorder("<")
    if arr.type.bit_width != want.itemsize * 8:
        raise ValueError(f"column {name} has the wrong width")
    return np.frombuffer(arr.buffers()[1], dtype=want, count=len(arr), offset=arr.offset *
                         want.itemsize)


def _single(col: object) -> object:
    """A column as one Arrow array: the file's own bytes when it has one record batch (as
    written here), concatenated otherwise. ``combine_chunks`` would copy even one batch
    into Arrow's memory pool, which keeps what it frees: measured, ~20 MB more at the peak
    of a fetch of a million objects."""
    if col.num_chunks == 1:  # type: ignore[attr-defined]
        return col.chunk(0)  # type: ignore[attr-defined]
    return col.combine_chunks()  # type: ignore[attr-defined]


def _is_pack_name(p: object) -> bool:
    return isinstance(p, str) and len(p) == 32 and all(c in "0123456789abcdef" for c in p)


def check_rows(entries: np.ndarray, pack_of_row: np.ndarray, npacks: int) -> None:
    """Row values a well-formed pack can have (ValueError otherwise): known types and
    codecs, offsets past the pack's magic, stored sizes that fit the decoded size, and no
    more rows per pack than a pack's trailer can list."""
    if int(entries["type"].max()) > 2 or int(entries["codec"].max()) > 1:
        raise ValueError("a row has an unknown type or codec")
    if int(entries["offset"].min()) < 8:
        raise ValueError("a row points into the pack header")
    raw = entries["raw_length"]
    plain = entries["codec"] == 0
    if bool((entries["length"][plain] != raw[plain]).any()) or \
            bool((entries["length"][~plain] > raw[~plain]).any()):
        raise ValueError("a row's stored size does not fit its decoded size")
    if int(np.bincount(pack_of_row, minlength=npacks).max()) > MAX_ROWS_PER_PACK:
        raise ValueError("more rows for one pack than a pack can hold")


def check_uncompressed(data: bytes) -> None:
    """ValueError unless ``data`` is an Arrow IPC file whose record batches are all
    uncompressed and that has no dictionary batches.

    pyarrow offers no way to read a batch's compression without decoding it, so the file's
    footer and each batch's message header (flatbuffers) are read here, every offset
    bounds-checked.
    """
    fb = _Flat(data)
    if len(data) < 16 or data[:6] != b"ARROW1" or data[-6:] != b"ARROW1":
        raise ValueError("not an Arrow IPC file")
    footer_len = fb.i32(len(data) - 10)
    start = len(data) - 10 - footer_len
    if footer_len <= 0 or start < 8:
        raise ValueError("bad Arrow footer")
    footer = fb.root(start)
    if fb.vector(footer, 2)[0]:
        raise ValueError("dictionary batches are not expected")
    count, pos = fb.vector(footer, 3)
    for k in range(count):
        block = pos + 24 * k  # struct Block {offset: i64, metaDataLength: i32, bodyLength}
        off = fb.i64(block)
        if off < 8 or off + 8 > len(data):
            raise ValueError("bad Arrow block")
        msg_at = off + 8 if fb.u32(off) == 0xFFFFFFFF else off + 4
        message = fb.root(msg_at)
        if fb.u8_field(message, 1) != 3:  # MessageHeader.RecordBatch
            raise ValueError("a block is not a record batch")
        batch = fb.table_field(message, 2)
        if fb.field(batch, 3):  # RecordBatch.compression
            raise ValueError("compressed index files are not written by casstore")


class _Flat:
    """Just enough of a flatbuffer reader for ``check_uncompressed``; every read is
    bounds-checked (struct.error and ValueError both mean a malformed file)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def _get(self, fmt: str, pos: int) -> int:
        if pos < 0 or pos + struct.calcsize(fmt) > len(self.data):
            raise ValueError("offset outside the file")
        return int(struct.unpack_from(fmt, self.data, pos)[0])

    def u32(self, pos: int) -> int:
        return self._get("<I", pos)

    def i32(self, pos: int) -> int:
        return self._get("<i", pos)

    def i64(self, pos: int) -> int:
        return self._get("<q", pos)

    def root(self, base: int) -> int:
        return base + self.u32(base)

    def field(self, table: int, i: int) -> int:
        """Position of field ``i`` of the table at ``table``, 0 when absent."""
        vtable = table - self.i32(table)
        vt_size = self._get("<H", vtable)
        if 4 + 2 * i + 2 > vt_size:
            return 0
        off = self._get("<H", vtable + 4 + 2 * i)
        return table + off if off else 0

    def u8_field(self, table: int, i: int) -> int:
        pos = self.field(table, i)
        return self._get("<B", pos) if pos else 0

    def table_field(self, table: int, i: int) -> int:
        pos = self.field(table, i)
        if not pos:
            raise ValueError("missing table")
        return pos + self.u32(pos)

    def vector(self, table: int, i: int) -> tuple[int, int]:
        """(length, position of the first element) of a vector field (0, 0 when absent)."""
        pos = self.field(table, i)
        if not pos:
            return 0, 0
        vec = pos + self.u32(pos)
        n = self.u32(vec)
        if vec + 4 + n > len(self.data):
            raise ValueError("vector outside the file")
        return n, vec + 4
