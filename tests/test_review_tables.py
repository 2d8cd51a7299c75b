"""End-to-end: row-level table diffs (Parquet and CSV, by key or by content), read from the
cache, for tracked files and for tables inside tracked folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from conftest import git


def _commit(repo: Path, cas, target: str, msg: str) -> None:
    cas("add", target)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", msg)


def _tables(n: int = 5000) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(0)
    ids = np.arange(n)
    old = pa.table({"id": ids, "label": [f"item-{i}" for i in ids],
                    "score": rng.random(n).round(4)})
    keep = ~np.isin(ids, [17, 4242])  # 2 deleted
    score = old.column("score").to_numpy().copy()
    score[100] = 0.5  # 1 changed, in one column
    label = old.column("label").to_pylist()
    new = pa.table({"id": np.concatenate([ids[keep], [n, n + 1, n + 2]]),  # 3 inserted
                    "label": [x for x, k in zip(label, keep, strict=True) if k]
                    + ["new-a", "new-b", "new-c"],
                    "score": np.concatenate([score[keep], [0.1, 0.2, 0.3]])})
    return old, new


def test_parquet_rows_inserted_deleted_changed_under_a_key(repo: Path, cas) -> None:
    old, new = _tables()
    pq.write_table(old, repo / "train.parquet", row_group_size=1000)
    _commit(repo, cas, "train.parquet", "v1")
    pq.write_table(new, repo / "train.parquet", row_group_size=1000)
    _commit(repo, cas, "train.parquet", "v2")

    res = json.loads(cas("diff", "HEAD~1", "HEAD", "--key", "id", "--json").stdout)
    rows = res["entries"][0]["table"]["rows"]
    counts = (rows["added"], rows["removed"], rows["changed"], rows["unchanged"])
    assert counts == (3, 2, 1, 4997)
    assert rows["changed_columns"] == {"score": 1} and rows["key"] == ["id"]
    [ex] = rows["examples_changed"]
    assert ex["key"] == {"id": 100} and ex["changes"]["score"][1] == 0.5
    assert sorted(r["id"] for r in rows["examples_added"]) == [5000, 5001, 5002]
    assert sorted(r["id"] for r in rows["examples_removed"]) == [17, 4242]

    text = cas("compare", "train.parquet@HEAD~1", "train.parquet@HEAD", "--key", "id").stdout
    assert "rows by key id: 3 added, 2 removed, 1 changed, 4997 unchanged" in text
    assert "changed columns: score (1)" in text and "~ id=100: score:" in text
    md = cas("diff", "HEAD~1", "HEAD", "--key", "id", "--format", "markdown").stdout
    assert "**Rows** (matched by key id): 3 added, 2 removed, 1 changed" in md
    assert "| `id=100` | `score` |" in md and "| `0.5` |" in md

    # Without a key: by content, the changed row is one removed and one added.
    rows = json.loads(cas("diff", "HEAD~1", "HEAD", "--json").stdout)["entries"][0]["table"][
        "rows"]
    assert (rows["added"], rows["removed"], rows["changed"], rows["key"]) == (4, 3, 0, None)


def test_csv_in_a_folder_with_key_from_config_and_column_changes(repo: Path, cas) -> None:
    p = repo / ".cas" / "config.yaml"
    cfg = yaml.safe_load(p.read_text())
    cfg["review"] = {"tables": {"data/users.csv": {"key": "country,user"}}}
    p.write_text(yaml.safe_dump(cfg))
    d = repo / "data"
    d.mkdir()
    (d / "users.csv").write_text("country,user,age,city\nfr,1,30,Paris\nfr,2,41,Lyon\n"
                                 "de,1,25,Berlin\nde,2,52,Bonn\n")
    pq.write_table(pa.table({"k": [1, 2, 3], "v": ["a", "b", "c"]}), d / "side.parquet")
    _commit(repo, cas, "data", "v1")
    # age changes for (de, 1), city for (fr, 2); (de, 2) removed; (it, 1) added; city stays
    # a column, a new column "plan" is a schema change and not a row change.
    (d / "users.csv").write_text("country,user,age,city,plan\nfr,1,30,Paris,x\n"
                                 "fr,2,41,Nice,x\nde,1,26,Berlin,y\nit,1,33,Roma,y\n")
    pq.write_table(pa.table({"k": [1, 2, 4], "v": ["a", "B", "d"]}), d / "side.parquet")
    _commit(repo, cas, "data", "v2")

    res = json.loads(cas("diff", "HEAD~1", "HEAD", "--json").stdout)
    tables = res["entries"][0]["tables"]
    users = tables["users.csv"]
    assert users["columns_added"] == [["plan", "string"]]
    r = users["rows"]
    assert r["key"] == ["country", "user"]
    assert (r["added"], r["removed"], r["changed"], r["unchanged"]) == (1, 1, 2, 1)
    assert r["changed_columns"] == {"age": 1, "city": 1}
    side = tables["side.parquet"]["rows"]  # no key configured: by content
    assert (side["added"], side["removed"], side["key"]) == (2, 2, None)
    # --key overrides the config for every table; a key a table lacks falls back, noted.
    res = json.loads(cas("diff", "HEAD~1", "HEAD", "--key", "k", "--json").stdout)
    side = res["entries"][0]["tables"]["side.parquet"]["rows"]
    assert (side["added"], side["removed"], side["changed"]) == (1, 1, 1)
    assert any("key column 'k'" in n and "compared by content" in n for n in res["notes"])


def test_key_missing_from_a_table_is_a_note_not_a_failure(repo: Path, cas) -> None:
    pq.write_table(pa.table({"a": [1, 2]}), repo / "t.parquet")
    _commit(repo, cas, "t.parquet", "v1")
    pq.write_table(pa.table({"a": [1, 3]}), repo / "t.parquet")
    cas("add", "t.parquet")
    res = cas("diff", "--key", "nope")
    assert "key column 'nope' is not in either version" in res.stdout
    assert "rows by content" in res.stdout
