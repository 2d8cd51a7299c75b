"""Index files: Arrow IPC tables mapping object ids to (pack, offset, length).

One index file may describe several packs (after compaction); the pack names are kept in
the schema metadata and rows refer to them by position. Arrow is used because millions of
fixed-width rows load zero-copy into numpy arrays.
"""

from __future__ import annotations

import json

import numpy as np

from ..errors import CorruptObjectError
from .packfile import ENTRY_DTYPE

FORMAT = "cas-index-1"
COLUMNS = ("id", "pack", "type", "codec", "raw_length", "offset", "length")


def encode_index(packs: list[str], pack_of_row: np.ndarray, entries: np.ndarray) -> bytes:
    """Serialize entries (ENTRY_DTYPE rows) belonging to ``packs`` as an Arrow IPC file."""
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
    import pyarrow as pa

    try:
        table = pa.ipc.open_file(pa.py_buffer(data)).read_all()
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
            id_col = table.column("id").combine_chunks()
            if id_col.null_count or id_col.type != pa.binary(16):
                raise ValueError("bad id column")
            entries["id"] = np.frombuffer(id_col.buffers()[1], dtype="V16", count=n,
                                          offset=id_col.offset * 16)
            for col in COLUMNS[2:]:
                entries[col] = _numeric(table, col, ENTRY_DTYPE[col])
        pack_of_row = _numeric(table, "pack", np.dtype(np.uint32)) if n else \
            np.empty(0, np.uint32)
        if n and int(pack_of_row.max()) >= len(packs):
            raise ValueError("row names a pack outside the pack list")
    except (pa.ArrowException, ValueError, KeyError, TypeError, OSError) as exc:
        raise CorruptObjectError(f"{name} is not a readable index ({exc})") from None
    return packs, pack_of_row, entries


def _numeric(table: object, name: str, dtype: np.dtype) -> np.ndarray:
    """A fixed-width column as numpy, straight from its buffer.

    ChunkedArray.to_numpy would import pandas (a quarter second) just to concatenate.
    """
    arr = table.column(name).combine_chunks()  # type: ignore[attr-defined]
    if arr.null_count:
        raise ValueError(f"column {name} has nulls")
    want = np.dtype(dtype).newbyteorder("<")
    if arr.type.bit_width != want.itemsize * 8:
        raise ValueError(f"column {name} has the wrong width")
    return np.frombuffer(arr.buffers()[1], dtype=want, count=len(arr), offset=arr.offset *
                         want.itemsize)


def _is_pack_name(p: object) -> bool:
    return isinstance(p, str) and len(p) == 32 and all(c in "0123456789abcdef" for c in p)
