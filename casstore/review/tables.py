"""Schema and row count of Parquet and CSV files, and the difference between two versions.

Reads only what is needed: for Parquet the footer (schema and row counts live
there, so a multi-gigabyte file costs a few reads); for CSV one streaming pass
in pyarrow's blocks (a row count needs every newline, but memory stays at one
block). Input is any seekable binary file-like object, so the bytes can come
from the store without a checkout. pyarrow is imported inside the functions:
``import pyarrow.parquet`` alone costs ~70 ms that other commands should not pay.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

__all__ = [
    "TableError",
    "TableDiff",
    "TableInfo",
    "TypeChange",
    "detect_format",
    "diff_tables",
    "render_markdown",
    "render_text",
    "table_info",
    "to_dict",
]

_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
_CSV_SUFFIXES = (".csv", ".tsv")


class TableError(ValueError):
    """The file could not be read as the table format; the message is one line."""


@dataclass(frozen=True)
class TableInfo:
    """Schema and size of one table file.

    ``columns`` is the ordered list of ``(name, arrow type as text)``.
    ``types_inferred`` is True for CSV (types come from pyarrow's inference on
    the first block) and False for Parquet (types are stored in the file).
    ``note`` explains a degraded result, e.g. a CSV whose later rows did not
    fit the inferred types and was re-read with every column as string.
    """

    format: str
    columns: list[tuple[str, str]]
    num_rows: int
    num_row_groups: int | None = None
    types_inferred: bool = False
    note: str | None = None


@dataclass(frozen=True)
class TypeChange:
    """A column present in both versions whose type changed."""

    name: str
    old: str
    new: str


@dataclass(frozen=True)
class TableDiff:
    """Schema and row-count difference between two versions of a table."""

    old_rows: int
    new_rows: int
    columns_added: list[tuple[str, str]] = field(default_factory=list)
    columns_removed: list[tuple[str, str]] = field(default_factory=list)
    type_changed: list[TypeChange] = field(default_factory=list)
    order_changed: bool = False
    old_format: str | None = None
    new_format: str | None = None
    rows: Any = None  # rowdiff.RowDiff when the rows were compared

    @property
    def row_delta(self) -> int:
        """``new_rows - old_rows``."""
        return self.new_rows - self.old_rows

    @property
    def schema_changed(self) -> bool:
        """True when columns were added, removed, retyped or reordered."""
        return bool(
            self.columns_added or self.columns_removed or self.type_changed or self.order_changed
        )


def detect_format(name: str | None = None, head: bytes | None = None) -> str | None:
    """``"parquet"``, ``"csv"`` or None, from the file name's suffix or its first bytes.

    Parquet files start with the magic ``PAR1``; CSV has no magic, so it is
    recognised by suffix only (``.csv``, ``.tsv``, also under ``.gz`` etc. is
    not supported: compressed CSV would need a full decompression pass).
    """
    if head is not None and head[:4] == b"PAR1":
        return "parquet"
    if name:
        low = name.lower()
        if low.endswith(_PARQUET_SUFFIXES):
            return "parquet"
        if low.endswith(_CSV_SUFFIXES):
            return "csv"
    return None


def table_info(f: BinaryIO, fmt: str, *, delimiter: str | None = None) -> TableInfo:
    """Read the schema and row count of a ``"parquet"`` or ``"csv"`` file object.

    ``f`` must be binary and seekable and is read from its start. For CSV the
    delimiter defaults to a comma (a tab for callers that pass ``"\\t"``).
    Raises :class:`TableError` when the bytes are not a readable table.
    """
    if fmt == "parquet":
        return _parquet_info(f)
    if fmt == "csv":
        return _csv_info(f, delimiter or ",")
    raise TableError(f"unsupported table format {fmt!r}: expected parquet or csv")


def _parquet_info(f: BinaryIO) -> TableInfo:
    # start-up: pyarrow costs 0.1-0.3 s to import; only table reviews need it
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(f)  # reads the footer only
        schema = pf.schema_arrow
        md = pf.metadata
    except (pa.ArrowException, OSError) as e:
        raise TableError(f"not a readable Parquet file: {_first_line(e)}") from None
    cols = [(fld.name, str(fld.type)) for fld in schema]
    return TableInfo("parquet", cols, md.num_rows, md.num_row_groups, types_inferred=False)


def _csv_info(f: BinaryIO, delimiter: str) -> TableInfo:
    # start-up: as in _parquet_info
    import pyarrow as pa
    import pyarrow.csv as pcsv

    parse = pcsv.ParseOptions(delimiter=delimiter)
    f.seek(0)
    try:
        reader = pcsv.open_csv(f, parse_options=parse)
        schema = reader.schema
    except (pa.ArrowException, OSError) as e:
        raise TableError(f"not a readable CSV file: {_first_line(e)}") from None
    try:
        rows = sum(batch.num_rows for batch in reader)
        cols = [(fld.name, str(fld.type)) for fld in schema]
        return TableInfo("csv", cols, rows, types_inferred=True)
    except pa.ArrowInvalid:
        # Types were inferred from the first block and a later row contradicts
        # them (e.g. "n/a" in an int column). Count again with every column as
        # text rather than fail: the reviewer still gets columns and rows.
        pass
    f.seek(0)
    text_types = {fld.name: pa.string() for fld in schema}
    try:
        reader = pcsv.open_csv(
            f, parse_options=parse, convert_options=pcsv.ConvertOptions(column_types=text_types)
        )
        rows = sum(batch.num_rows for batch in reader)
    except (pa.ArrowException, OSError) as e:
        raise TableError(f"not a readable CSV file: {_first_line(e)}") from None
    cols = [(fld.name, "string") for fld in schema]
    return TableInfo(
        "csv",
        cols,
        rows,
        types_inferred=True,
        note="column types vary between rows; all columns read as string",
    )


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def diff_tables(a: TableInfo, b: TableInfo, rows: Any = None) -> TableDiff:
    """Columns added, removed and retyped, column order, and row counts from ``a`` (old) to ``b``.

    Columns are matched by name. ``order_changed`` is set when the columns
    present in both appear in a different relative order.
    """
    ta, tb = dict(a.columns), dict(b.columns)
    common_a = [n for n, _ in a.columns if n in tb]
    common_b = [n for n, _ in b.columns if n in ta]
    return TableDiff(
        old_rows=a.num_rows,
        new_rows=b.num_rows,
        columns_added=[(n, t) for n, t in b.columns if n not in ta],
        columns_removed=[(n, t) for n, t in a.columns if n not in tb],
        type_changed=[TypeChange(n, ta[n], tb[n]) for n in common_b if ta[n] != tb[n]],
        order_changed=common_a != common_b,
        old_format=a.format,
        new_format=b.format,
        rows=rows,
    )


def _signed(n: int) -> str:
    return f"+{n}" if n > 0 else str(n)


def render_text(d: TableDiff) -> str:
    """Plain-text report: row counts, then one line per schema change."""
    lines = [f"rows: {d.old_rows} -> {d.new_rows} ({_signed(d.row_delta)})"]
    lines += [f"  + column {n}: {t}" for n, t in d.columns_added]
    lines += [f"  - column {n}: {t}" for n, t in d.columns_removed]
    lines += [f"  ~ column {c.name}: {c.old} -> {c.new}" for c in d.type_changed]
    if d.order_changed:
        lines.append("  column order changed")
    if not d.schema_changed:
        lines.append("schema unchanged")
    if d.rows is not None:
        lines += _rows_text(d.rows)
    return "\n".join(lines)


def _matched_by(r: Any) -> str:
    return f"key {', '.join(r.key)}" if r.key else "content (no key: an edited row is one " \
        "removed and one added)"


def _rows_text(r: Any) -> list[str]:
    lines = [f"rows by {_matched_by(r)}: {r.added} added, {r.removed} removed, "
             f"{r.changed} changed, {r.unchanged} unchanged"]
    if r.changed_columns:
        cols = ", ".join(f"{c} ({n})" for c, n in sorted(r.changed_columns.items(),
                                                         key=lambda x: (-x[1], x[0])))
        lines.append(f"  changed columns{' (estimated)' if r.estimated else ''}: {cols}")
    for side, n in (("old", r.old_duplicate_keys), ("new", r.new_duplicate_keys)):
        if n:
            lines.append(f"  {n} rows of the {side} version repeat a key; the first of each "
                         "was compared")
    for ex in r.examples_changed:
        key = ", ".join(f"{k}={_val(v)}" for k, v in ex["key"].items())
        changes = ", ".join(f"{c}: {_val(o)} -> {_val(n)}" for c, (o, n) in
                            ex["changes"].items())
        lines.append(f"  ~ {key}: {changes}")
    for sign, rows in (("+", r.examples_added), ("-", r.examples_removed)):
        for row in rows:
            lines.append(f"  {sign} " + ", ".join(f"{k}={_val(v)}" for k, v in row.items()))
    return lines


def _val(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, float):
        return f"{v:.6g}"
    text = str(v)
    return text if len(text) <= 40 else text[:39] + "…"


def _md_val(v: Any) -> str:
    return f"`{_val(v).replace('|', chr(92) + '|').replace('`', chr(39))}`"


def _rows_markdown(r: Any) -> list[str]:
    out = [f"**Rows** (matched by {_matched_by(r)}): {r.added} added, {r.removed} removed, "
           f"{r.changed} changed, {r.unchanged} unchanged", ""]
    if r.changed_columns:
        out += ["| Column | Rows changed |", "|---|---:|"]
        for c, n in sorted(r.changed_columns.items(), key=lambda x: (-x[1], x[0])):
            out.append(f"| {_md_val(c)} | {'~' if r.estimated else ''}{n} |")
        out.append("")
    if r.examples_changed:
        out += ["| Key | Column | Old | New |", "|---|---|---|---|"]
        for ex in r.examples_changed:
            key = ", ".join(f"{k}={_val(v)}" for k, v in ex["key"].items())
            for c, (o, n) in ex["changes"].items():
                out.append(f"| {_md_val(key)} | {_md_val(c)} | {_md_val(o)} | {_md_val(n)} |")
        out.append("")
    for what, rows in (("Added", r.examples_added), ("Removed", r.examples_removed)):
        if rows:
            out.append(f"{what} rows (examples): " + "; ".join(
                _md_val(", ".join(f"{k}={_val(v)}" for k, v in row.items())) for row in rows))
            out.append("")
    return out


def render_markdown(d: TableDiff) -> str:
    """Markdown for a PR comment: a row-count line and a table of column changes."""
    out = [f"**Rows:** {d.old_rows} → {d.new_rows} ({_signed(d.row_delta)})", ""]
    rows = (
        [(n, "added", "-", t) for n, t in d.columns_added]
        + [(n, "removed", t, "-") for n, t in d.columns_removed]
        + [(c.name, "type changed", c.old, c.new) for c in d.type_changed]
    )
    if rows:
        out += ["| Column | Change | Old type | New type |", "|---|---|---|---|"]
        for name, what, old, new in rows:
            out.append(f"| `{name.replace('|', chr(92) + '|')}` | {what} | {old} | {new} |")
        out.append("")
    if d.order_changed:
        out += ["_Column order changed._", ""]
    if not d.schema_changed:
        out += ["_Schema unchanged._", ""]
    if d.rows is not None:
        out += _rows_markdown(d.rows)
    return "\n".join(out).rstrip() + "\n"


def to_dict(d: TableDiff) -> dict[str, Any]:
    """A JSON-able dict (column pairs as lists) with ``row_delta`` and ``schema_changed``."""
    out = asdict(d)
    out["columns_added"] = [list(c) for c in d.columns_added]
    out["columns_removed"] = [list(c) for c in d.columns_removed]
    out["rows"] = d.rows.to_dict() if d.rows is not None else None
    out["row_delta"] = d.row_delta
    out["schema_changed"] = d.schema_changed
    return out
