import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from casstore.review.tables import (
    TableError,
    detect_format,
    diff_tables,
    render_markdown,
    render_text,
    table_info,
    to_dict,
)


class CountingFile(io.BytesIO):
    """Records how many bytes were read, to prove Parquet reads only the footer."""

    bytes_read = 0

    def read(self, n=-1):
        data = super().read(n)
        self.bytes_read += len(data)
        return data


def parquet_bytes(table, **kw):
    buf = io.BytesIO()
    pq.write_table(table, buf, **kw)
    return buf.getvalue()


def test_parquet_schema_rows_footer_only():
    n = 200_000
    t = pa.table({"id": pa.array(range(n), pa.int64()), "x": pa.array([0.5] * n)})
    raw = parquet_bytes(t, row_group_size=50_000, compression="none")
    f = CountingFile(raw)
    info = table_info(f, "parquet")
    assert info.columns == [("id", "int64"), ("x", "double")]
    assert (info.num_rows, info.num_row_groups, info.types_inferred) == (n, 4, False)
    assert f.bytes_read < len(raw) / 10


def test_parquet_diff():
    a = pa.table({"id": [1, 2, 3], "label": ["a", "b", "c"], "score": [1, 2, 3]})
    b = pa.table({"id": [1, 2, 3, 4], "score": [1.0, 2.0, 3.0, 4.0], "weight": [1, 1, 1, 1]})
    ia = table_info(io.BytesIO(parquet_bytes(a)), "parquet")
    ib = table_info(io.BytesIO(parquet_bytes(b)), "parquet")
    d = diff_tables(ia, ib)
    assert d.columns_added == [("weight", "int64")]
    assert d.columns_removed == [("label", "string")]
    assert [(c.name, c.old, c.new) for c in d.type_changed] == [("score", "int64", "double")]
    assert (d.old_rows, d.new_rows, d.row_delta) == (3, 4, 1)
    assert d.schema_changed and not d.order_changed
    text = render_text(d)
    assert "rows: 3 -> 4 (+1)" in text and "~ column score: int64 -> double" in text
    md = render_markdown(d)
    assert "| `weight` | added | - | int64 |" in md
    assert "| `label` | removed | string | - |" in md
    assert to_dict(d)["columns_added"] == [["weight", "int64"]]


def test_csv_schema_rows_and_diff():
    a = b"id,name,score\n1,a,0.5\n2,b,0.7\n"
    b = b"name,id,score,extra\n" + b"".join(b"x,%d,1,true\n" % i for i in range(5))
    ia, ib = table_info(io.BytesIO(a), "csv"), table_info(io.BytesIO(b), "csv")
    assert ia.columns == [("id", "int64"), ("name", "string"), ("score", "double")]
    assert ia.num_rows == 2 and ia.types_inferred
    d = diff_tables(ia, ib)
    assert d.columns_added == [("extra", "bool")]
    assert [(c.name, c.old, c.new) for c in d.type_changed] == [("score", "double", "int64")]
    assert d.order_changed and d.row_delta == 3
    assert "column order changed" in render_text(d)


def test_csv_streams_many_rows_and_type_drift():
    # The first block says int; a later row does not fit. Still counted, as text.
    body = b"".join(b"%d,%d\n" % (i, i) for i in range(300_000)) + b"oops,1\n"
    f = io.BytesIO(b"a,b\n" + body)
    info = table_info(f, "csv")
    assert info.num_rows == 300_001
    assert info.columns == [("a", "string"), ("b", "string")] and info.note


def test_tsv_and_unchanged():
    raw = b"a\tb\n1\t2\n"
    i = table_info(io.BytesIO(raw), "csv", delimiter="\t")
    assert i.columns == [("a", "int64"), ("b", "int64")]
    d = diff_tables(i, i)
    assert not d.schema_changed and "schema unchanged" in render_text(d)


def test_errors_and_detection():
    with pytest.raises(TableError, match="not a readable Parquet file"):
        table_info(io.BytesIO(b"PAR1 garbage"), "parquet")
    with pytest.raises(TableError, match="unsupported table format"):
        table_info(io.BytesIO(b""), "xlsx")
    assert detect_format("data/train.PARQUET") == "parquet"
    assert detect_format("x.bin", b"PAR1....") == "parquet"
    assert detect_format("x.csv") == "csv"
    assert detect_format("model.safetensors") is None
