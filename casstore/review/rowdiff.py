"""Row-level difference of two versions of a Parquet or CSV table, with bounded memory.

Rows are matched by a key (one or more columns) or, without one, by their content. Neither
table is ever held in memory: each is streamed batch by batch (Parquet by row group, CSV by
block), and every row becomes a 24-byte record (key hash, row hash, row number) written to
one of P partition files by key hash. Each partition pair is then joined on its own, so
memory stays at one partition (about 16 MiB of records) whatever the table size, and the
temporary disk use is 24 bytes per row.

Rows that changed are counted exactly; which columns changed, and a few example rows, come
from a second pass that hashes each column only for the rows in a sample of the changed
keys (all of them up to :data:`DETAIL_ROWS`; beyond that the smallest key hashes, which are
a uniform random sample, and the per-column counts are scaled and marked as estimates).

Hashes are 64-bit and computed with numpy over Arrow buffers (strings included), so a
1 GB table costs seconds, not minutes. Values are compared as the file stores them; a
column whose type differs between the versions (or every column of a CSV file, whose
types are only guesses) is compared as text.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

import numpy as np
import xxhash

from .tables import TableError

__all__ = ["DETAIL_ROWS", "EXAMPLES", "RowDiff", "row_diff"]

#: Changed rows whose columns are compared one by one (a uniform sample beyond this).
DETAIL_ROWS = 100_000
#: Example rows kept per kind of change (changed, added, removed) for the reports.
EXAMPLES = 5
#: Records per partition the join holds in memory at once (24 bytes each, both sides).
_PART_RECORDS = 700_000
_MAX_PARTS = 256
_BATCH_ROWS = 65_536
_STRING_SLICE = 1 << 20  # bytes of string data hashed per numpy pass

_REC = np.dtype([("k", "<u8"), ("r", "<u8"), ("i", "<i8")])
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_NULL = np.uint64(0x6A09E667F3BCC909)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


@dataclass
class RowDiff:
    """Rows added, removed, changed and unchanged between two versions of a table.

    With a ``key``, a row is matched by its key columns and ``changed`` when another
    compared column differs; ``changed_columns`` counts changed rows per column. Without a
    key, rows are matched by content (as a multiset), so an edited row counts as one
    removed and one added. ``compared`` are the columns present in both versions (added
    and removed columns are schema changes, not row changes). Examples hold JSON-able
    values: ``{"key": {...}, "changes": {column: [old, new]}}`` for changed rows and the
    whole row for added and removed ones.
    """

    key: list[str] | None
    old_rows: int
    new_rows: int
    added: int = 0
    removed: int = 0
    changed: int = 0
    unchanged: int = 0
    compared: list[str] = field(default_factory=list)
    changed_columns: dict[str, int] = field(default_factory=dict)
    estimated: bool = False  # changed_columns scaled up from a sample of DETAIL_ROWS rows
    old_duplicate_keys: int = 0
    new_duplicate_keys: int = 0
    examples_changed: list[dict[str, Any]] = field(default_factory=list)
    examples_added: list[dict[str, Any]] = field(default_factory=list)
    examples_removed: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- hashing ---------------------------------------------------------------------------

def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, element-wise (uint64 arithmetic wraps, as intended)."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def _hash_bytes(arr: Any) -> np.ndarray:
    """One hash per string or binary value: the sum over its bytes of mix(byte, position),
    mixed with its length, computed over the Arrow buffers in slices of about 1 MiB."""
    # start-up: pyarrow costs 0.1-0.2 s to import; only table diffs need it
    import pyarrow as pa

    arr = arr.cast(pa.large_binary())
    n = len(arr)
    bufs = arr.buffers()
    offs = np.frombuffer(bufs[1], dtype="<i8")[arr.offset:arr.offset + n + 1]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None and n else \
        np.zeros(0, np.uint8)
    out = np.empty(n, dtype=np.uint64)
    lengths = np.diff(offs)
    row = 0
    while row < n:
        # As many rows as fit in one slice of bytes (at least one, however long).
        stop = int(np.searchsorted(offs, offs[row] + _STRING_SLICE, side="right")) - 1
        stop = min(n, max(stop, row + 1))
        lo, hi = int(offs[row]), int(offs[stop])
        lens = lengths[row:stop]
        d = data[lo:hi].astype(np.uint64)
        pos = np.arange(hi - lo, dtype=np.uint64) - np.repeat(
            (offs[row:stop] - lo).astype(np.uint64), lens)
        terms = _mix(d | (pos << np.uint64(8)))
        sums = np.concatenate(([np.uint64(0)], np.cumsum(terms, dtype=np.uint64)))
        rel = (offs[row:stop + 1] - lo).astype(np.int64)
        out[row:stop] = sums[rel[1:]] - sums[rel[:-1]]
        out[row:stop] ^= _mix(lens.astype(np.uint64) + _GOLDEN)
        row = stop
    return _mix(out)


def _hash_column(arr: Any, as_text: bool) -> np.ndarray:
    """One uint64 per value of an Arrow array; nulls hash to one constant."""
    # start-up: pyarrow, as in _hash_bytes
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
        t = arr.type
    with np.errstate(over="ignore"):
        if as_text and not (pa.types.is_string(t) or pa.types.is_large_string(t)):
            try:
                arr = pc.cast(arr, pa.large_string())
                t = arr.type
            except pa.ArrowException:
                pass  # nested types: hashed below by their Python value
        if pa.types.is_boolean(t) or pa.types.is_integer(t):
            v = pc.cast(arr, pa.int64(), safe=False).fill_null(0).to_numpy(
                zero_copy_only=False).view(np.uint64)
            h = _mix(v ^ np.uint64(0x1000))
        elif pa.types.is_temporal(t):
            width = pa.int32() if t.bit_width == 32 else pa.int64()
            v = arr.view(width).cast(pa.int64()).fill_null(0).to_numpy(
                zero_copy_only=False).view(np.uint64)
            h = _mix(v ^ np.uint64(0x2000))
        elif pa.types.is_floating(t):
            f = pc.cast(arr, pa.float64()).fill_null(0).to_numpy(zero_copy_only=False)
            f = np.where(f == 0, 0.0, f)  # -0.0 == 0.0
            f = np.where(np.isnan(f), np.nan, f)  # one NaN
            h = _mix(f.view(np.uint64) ^ np.uint64(0x3000))
        elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) \
                or pa.types.is_large_binary(t):
            h = _hash_bytes(arr)
        else:
            h = np.fromiter((xxhash.xxh3_64_intdigest(repr(x).encode())
                             for x in arr.to_pylist()), dtype=np.uint64, count=len(arr))
        if arr.null_count:
            valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            h = np.where(valid, h, _NULL)
    return h


def _combine(hashes: list[np.ndarray], n: int, salt: int) -> np.ndarray:
    with np.errstate(over="ignore"):
        h = np.full(n, np.uint64(salt), dtype=np.uint64)
        for i, ch in enumerate(hashes):
            h = _mix(h ^ (ch + _GOLDEN * np.uint64(i + 1)))
    return h


# -- reading ----------------------------------------------------------------------------

@dataclass
class _Side:
    """How to stream one version: a reopenable file, its format, its columns."""

    open: Callable[[], BinaryIO]
    fmt: str
    delimiter: str
    columns: list[str] = field(default_factory=list)
    types: dict[str, str] = field(default_factory=dict)
    rows: int | None = None

    def load_schema(self) -> None:
        # start-up: pyarrow and its Parquet/CSV readers, only for table diffs
        import pyarrow as pa

        with self.open() as f:
            try:
                if self.fmt == "parquet":
                    # start-up: as above
                    import pyarrow.parquet as pq

                    pf = pq.ParquetFile(f)
                    schema, self.rows = pf.schema_arrow, pf.metadata.num_rows
                else:
                    # start-up: as above
                    import pyarrow.csv as pcsv

                    schema = pcsv.open_csv(
                        f, parse_options=pcsv.ParseOptions(delimiter=self.delimiter)).schema
            except (pa.ArrowException, OSError) as e:
                raise TableError(f"not a readable {self.fmt} file: "
                                 f"{str(e).strip().splitlines()[0] if str(e).strip() else e}"
                                 ) from None
        self.columns = [fld.name for fld in schema]
        self.types = {fld.name: str(fld.type) for fld in schema}

    def batches(self, columns: list[str]) -> Iterator[Any]:
        """Record batches of ``columns`` in file order (CSV: every column as text)."""
        # start-up: pyarrow and its readers, as in load_schema
        import pyarrow as pa

        with self.open() as f:
            try:
                if self.fmt == "parquet":
                    # start-up: as above
                    import pyarrow.parquet as pq

                    # pre_buffer (the default) reads a whole row group's columns ahead
                    # and held 0.9 GB of a 1 GB file at once; plain buffered reads 0.17 GB.
                    pf = pq.ParquetFile(f, pre_buffer=False, buffer_size=1 << 20)
                    yield from pf.iter_batches(batch_size=_BATCH_ROWS, columns=columns)
                else:
                    # start-up: as above
                    import pyarrow.csv as pcsv

                    # CSV types are guesses from the first block, and a later row may
                    # contradict them: the text is what the file holds, so compare that.
                    reader = pcsv.open_csv(
                        f, read_options=pcsv.ReadOptions(block_size=4 << 20),
                        parse_options=pcsv.ParseOptions(delimiter=self.delimiter),
                        convert_options=pcsv.ConvertOptions(
                            column_types={c: pa.string() for c in self.columns},
                            include_columns=columns, strings_can_be_null=False))
                    yield from reader
            except (pa.ArrowException, OSError) as e:
                raise TableError(f"cannot read the {self.fmt} file: "
                                 f"{str(e).strip().splitlines()[0] if str(e).strip() else e}"
                                 ) from None


def _text_columns(a: _Side, b: _Side, cols: list[str]) -> set[str]:
    if a.fmt == "csv" or b.fmt == "csv":
        return set(cols)
    return {c for c in cols if a.types.get(c) != b.types.get(c)}


class _Hasher:
    def __init__(self, key: list[str] | None, compared: list[str], text: set[str]) -> None:
        self.key = key
        self.compared = compared
        self.text = text

    def columns(self, batch: Any) -> dict[str, np.ndarray]:
        names = batch.schema.names
        return {c: _hash_column(batch.column(names.index(c)), c in self.text)
                for c in self.compared}

    def hashes(self, batch: Any) -> tuple[np.ndarray, np.ndarray]:
        """(key hash, row hash) per row; without a key the key is the whole row."""
        cols = self.columns(batch)
        n = batch.num_rows
        row = _combine([cols[c] for c in self.compared], n, 0x51ED)
        if self.key is None:
            return row, row
        return _combine([cols[c] for c in self.key], n, 0x4B45), row


# -- partitions ---------------------------------------------------------------------------

class _Spill:
    """Records of one side, split by key hash into P partitions (on disk when P > 1)."""

    def __init__(self, parts: int, folder: str | None, name: str) -> None:
        self.parts = parts
        self.mem: list[list[np.ndarray]] = [[] for _ in range(parts)] if parts == 1 else []
        self.files = [open(os.path.join(folder, f"{name}.{p}"), "wb")  # noqa: SIM115
                      for p in range(parts)] if parts > 1 and folder else []

    def add(self, rec: np.ndarray) -> None:
        if self.parts == 1:
            self.mem[0].append(rec)
            return
        part = (rec["k"] % np.uint64(self.parts)).astype(np.int64)
        order = np.argsort(part, kind="stable")
        rec, part = rec[order], part[order]
        bounds = np.searchsorted(part, np.arange(self.parts + 1))
        for p in range(self.parts):
            if bounds[p + 1] > bounds[p]:
                rec[bounds[p]:bounds[p + 1]].tofile(self.files[p])

    def close(self) -> None:
        for f in self.files:
            f.close()

    def load(self, p: int) -> np.ndarray:
        if self.parts == 1:
            return np.concatenate(self.mem[0]) if self.mem[0] else np.zeros(0, _REC)
        return np.fromfile(self.files[p].name, dtype=_REC)


def _spill(side: _Side, cols: list[str], hasher: _Hasher, spill: _Spill) -> int:
    rows = 0
    for batch in side.batches(cols):
        k, r = hasher.hashes(batch)
        rec = np.empty(batch.num_rows, dtype=_REC)
        rec["k"], rec["r"] = k, r
        rec["i"] = np.arange(rows, rows + batch.num_rows)
        rows += batch.num_rows
        spill.add(rec)
    spill.close()
    return rows


def _dedupe(rec: np.ndarray) -> tuple[np.ndarray, int]:
    """Sorted by key hash, first occurrence of each key kept; (records, duplicates)."""
    rec = rec[np.argsort(rec["k"], kind="stable")]
    if len(rec) < 2:
        return rec, 0
    first = np.concatenate(([True], rec["k"][1:] != rec["k"][:-1]))
    return rec[first], int(len(rec) - np.count_nonzero(first))


class _Sample:
    """The smallest key hashes seen (a uniform sample, since hashes are uniform)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.keys = np.zeros(0, dtype=np.uint64)

    def add(self, keys: np.ndarray) -> None:
        if not len(keys):
            return
        self.keys = np.concatenate((self.keys, keys))
        if len(self.keys) > 2 * self.limit:
            self.keys = np.partition(self.keys, self.limit)[:self.limit]

    def final(self) -> np.ndarray:
        return np.sort(self.keys)[:self.limit]


def _in(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    if not len(sorted_keys):
        return np.zeros(len(keys), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[pos] == keys


# -- the diff ---------------------------------------------------------------------------

def row_diff(open_old: Callable[[], BinaryIO], fmt_old: str,
             open_new: Callable[[], BinaryIO], fmt_new: str, *,
             key: list[str] | None = None, delimiter_old: str = ",",
             delimiter_new: str = ",", tmpdir: str | None = None,
             size_hint: int | None = None) -> RowDiff:
    """Compare two versions of a table row by row.

    ``open_old``/``open_new`` return a fresh seekable binary file object each call (the
    tables are read twice at most). ``key`` names the columns that identify a row; they
    must be in both versions (:class:`TableError` otherwise). ``tmpdir`` holds the
    partition files of large tables; ``size_hint`` (bytes of the larger file) helps size
    them for CSV, whose row count is unknown until read.
    """
    a = _Side(open_old, fmt_old, delimiter_old)
    b = _Side(open_new, fmt_new, delimiter_new)
    a.load_schema()
    b.load_schema()
    common = [c for c in b.columns if c in set(a.columns)]
    if key is not None:
        missing = [c for c in key if c not in common]
        if missing:
            where = "either version" if all(c not in a.columns and c not in b.columns
                                            for c in missing) else "both versions"
            raise TableError(f"key column {missing[0]!r} is not in {where} of the table")
    if not common:
        raise TableError("the two versions have no column in common; rows cannot be matched")
    hasher = _Hasher(key, common, _text_columns(a, b, common))
    est_rows = max(a.rows or 0, b.rows or 0) or (size_hint or 0) // 8
    parts = min(_MAX_PARTS, max(1, math.ceil(est_rows / _PART_RECORDS)))
    res = RowDiff(key=list(key) if key else None, old_rows=0, new_rows=0,
                  compared=list(common))
    with tempfile.TemporaryDirectory(prefix="cas-rowdiff-", dir=tmpdir) as tmp:
        sa, sb = _Spill(parts, tmp, "old"), _Spill(parts, tmp, "new")
        res.old_rows = _spill(a, common, hasher, sa)
        res.new_rows = _spill(b, common, hasher, sb)
        changed, added, removed = _Sample(DETAIL_ROWS), _Sample(EXAMPLES), _Sample(EXAMPLES)
        for p in range(parts):
            ra, rb = sa.load(p), sb.load(p)
            if key is None:
                _join_content(ra, rb, res, added, removed)
            else:
                _join_keys(ra, rb, res, changed, added, removed)
    if res.changed or res.added or res.removed:
        _details(a, b, common, hasher, res, changed.final(), added.final(), removed.final())
    return res


def _join_content(ra: np.ndarray, rb: np.ndarray, res: RowDiff, added: _Sample,
                  removed: _Sample) -> None:
    ka, ca = np.unique(ra["k"], return_counts=True)
    kb, cb = np.unique(rb["k"], return_counts=True)
    keys = np.union1d(ka, kb)
    na = np.zeros(len(keys), np.int64)
    nb = np.zeros(len(keys), np.int64)
    na[np.searchsorted(keys, ka)] = ca
    nb[np.searchsorted(keys, kb)] = cb
    res.unchanged += int(np.minimum(na, nb).sum())
    res.added += int(np.maximum(nb - na, 0).sum())
    res.removed += int(np.maximum(na - nb, 0).sum())
    added.add(keys[nb > na])
    removed.add(keys[na > nb])


def _join_keys(ra: np.ndarray, rb: np.ndarray, res: RowDiff, changed: _Sample,
               added: _Sample, removed: _Sample) -> None:
    ra, da = _dedupe(ra)
    rb, db = _dedupe(rb)
    res.old_duplicate_keys += da
    res.new_duplicate_keys += db
    in_a = _in(ra["k"], rb["k"])
    in_b = _in(rb["k"], ra["k"])
    new_only, old_only = rb[~in_a], ra[~in_b]
    res.added += len(new_only)
    res.removed += len(old_only)
    added.add(new_only["k"])
    removed.add(old_only["k"])
    both_b = rb[in_a]
    both_a = ra[in_b]  # same keys, both sorted by key: aligned row for row
    diff = both_a["r"] != both_b["r"]
    res.changed += int(np.count_nonzero(diff))
    res.unchanged += int(len(diff) - np.count_nonzero(diff))
    changed.add(both_b["k"][diff])


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v if not (isinstance(v, float) and not math.isfinite(v)) else str(v)
    if isinstance(v, bytes):
        return v.hex() if len(v) <= 32 else v[:32].hex() + "…"
    return str(v)


def _collect(side: _Side, cols: list[str], hasher: _Hasher, changed: np.ndarray,
             examples: np.ndarray, want_rows: np.ndarray
             ) -> tuple[dict[int, dict[str, int]], dict[int, dict[str, Any]]]:
    """Second pass over one side: per-column hashes of the sampled changed rows, and the
    values of example rows (changed ones and the added/removed ones of ``want_rows``)."""
    hashes: dict[int, dict[str, int]] = {}
    values: dict[int, dict[str, Any]] = {}
    for batch in side.batches(cols):
        k, _ = hasher.hashes(batch)
        sel = _in(changed, k)
        if sel.any():
            # start-up: pyarrow, as in _hash_bytes
            import pyarrow as pa

            sub = batch.filter(pa.array(sel))
            ch = hasher.columns(sub)
            for j, kh in enumerate(k[sel].tolist()):
                hashes.setdefault(kh, {c: int(ch[c][j]) for c in cols})
        ex = _in(examples, k) | _in(want_rows, k)
        if ex.any():
            # start-up: as above
            import pyarrow as pa

            for kh, row in zip(k[ex].tolist(), batch.filter(pa.array(ex)).to_pylist(),
                               strict=True):
                values.setdefault(kh, {c: _jsonable(row[c]) for c in cols})
    return hashes, values


def _details(a: _Side, b: _Side, cols: list[str], hasher: _Hasher, res: RowDiff,
             changed: np.ndarray, added: np.ndarray, removed: np.ndarray) -> None:
    ex_changed = changed[:EXAMPLES]
    ha, va = _collect(a, cols, hasher, changed, ex_changed, removed)
    hb, vb = _collect(b, cols, hasher, changed, ex_changed, added)
    counts = dict.fromkeys(cols, 0)
    for kh in changed.tolist():
        old, new = ha.get(kh), hb.get(kh)
        if old is None or new is None:
            continue
        for c in cols:
            if old[c] != new[c]:
                counts[c] += 1
    if res.key is not None and len(changed) < res.changed:
        res.estimated = True
        scale = res.changed / max(1, len(changed))
        counts = {c: round(n * scale) for c, n in counts.items()}
    res.changed_columns = {c: n for c, n in counts.items() if n}
    key = res.key or []
    for kh in ex_changed.tolist():
        old, new = va.get(kh), vb.get(kh)
        if old is None or new is None:
            continue
        res.examples_changed.append({
            "key": {c: new[c] for c in key},
            "changes": {c: [old[c], new[c]] for c in cols if c not in key and old[c] != new[c]},
        })
    res.examples_added = _ordered([vb[kh] for kh in added.tolist() if kh in vb], key)
    res.examples_removed = _ordered([va[kh] for kh in removed.tolist() if kh in va], key)
    res.examples_changed = _ordered(res.examples_changed, key, lambda ex: ex["key"])


def _ordered(rows: list[Any], key: list[str],
             get: Callable[[Any], dict[str, Any]] = lambda r: r) -> list[Any]:
    """Examples in key order (else in their first column's), as a reader expects them;
    values of mixed types keep the sample's order."""
    cols = key or (list(get(rows[0]))[:1] if rows else [])
    try:
        return sorted(rows, key=lambda r: tuple((get(r)[c] is None, get(r)[c]) for c in cols))
    except TypeError:
        return rows
