"""End-to-end: cas version / log / compare / diff in temporary Git repos, driving the real cas."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import git, write_random


def _set_config(repo: Path, **versioning: object) -> None:
    p = repo / ".cas" / "config.yaml"
    cfg = yaml.safe_load(p.read_text())
    cfg.setdefault("versioning", {}).update(versioning)
    p.write_text(yaml.safe_dump(cfg))


def _meta(repo: Path, pointer: str) -> dict:
    return yaml.safe_load((repo / pointer).read_text()).get("meta") or {}


def _log(cas, path: str) -> list[dict]:
    return json.loads(cas("log", path, "--json").stdout)["versions"]


def _new_model(repo: Path, cas, seed: int) -> None:
    write_random(repo / "model.bin", 200_000 + seed, seed=seed)
    cas("add", "model.bin")


@pytest.mark.parametrize("scheme", ["semantic", "calendar", "sequential", "githash"])
def test_three_versions_under_each_scheme_are_logged_in_order(repo: Path, cas,
                                                              scheme: str) -> None:
    _set_config(repo, scheme=scheme)
    recorded = []
    for i, bump in enumerate([None, "minor", "major"]):
        _new_model(repo, cas, seed=i)
        if scheme == "githash":
            # The version names the commit that introduced the content: commit it first.
            git(repo, "add", "-A")
            git(repo, "commit", "-qm", f"content {i}")
            content_commit = git(repo, "rev-parse", "HEAD").strip()
        args = ["version", "model.bin", "--metric", f"acc={0.5 + i / 10}", "--json"]
        if scheme == "semantic":
            args += ["--set", "1.0.0"] if bump is None else ["--bump", bump]
        out = json.loads(cas(*args).stdout)
        recorded.append(out["version"])
        assert out["scheme"] == scheme
        if scheme == "githash":
            assert out["version"] == content_commit[:7]
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", f"model {out['version']}")

    if scheme == "semantic":
        assert recorded == ["1.0.0", "1.1.0", "2.0.0"]
    elif scheme == "sequential":
        assert recorded == ["1", "2", "3"]
    elif scheme == "calendar":
        assert re.fullmatch(r"\d{4}\.\d{2}\.\d{2}", recorded[0])
        assert recorded[1:] == [recorded[0] + ".1", recorded[0] + ".2"]
    else:
        assert len(set(recorded)) == 3

    entries = _log(cas, "model.bin")
    assert [e["version"] for e in entries] == recorded[::-1]  # newest first, like git log
    assert [e["metrics"]["acc"] for e in entries] == [0.7, 0.6, 0.5]
    assert all(e["commit"] and e["date"] for e in entries)
    text = cas("log", "model.bin").stdout.splitlines()
    assert [line.split()[0] for line in text] == recorded[::-1]
    assert "acc=0.7" in text[0]


def test_version_is_deterministic_and_amends_until_committed(repo: Path, cas) -> None:
    _new_model(repo, cas, seed=1)
    (repo / "params.yaml").write_text("lr: 0.001\noptimizer: {name: adam, beta: 0.9}\n")
    (repo / "metrics.json").write_text('{"accuracy": 0.93, "loss": 0.21}')
    cas("version", "model.bin", "--bump", "minor", "--params", "params.yaml",
        "--metrics", "metrics.json", "--param", "epochs=10", "--message", "first")
    first = (repo / "model.bin.cas").read_text()
    meta = _meta(repo, "model.bin.cas")
    assert meta["version"] == "0.1.0"
    assert meta["params"] == {"epochs": 10, "lr": 0.001,
                              "optimizer": {"beta": 0.9, "name": "adam"}}
    assert meta["metrics"] == {"accuracy": 0.93, "loss": 0.21}
    assert "date" not in first and "time" not in first
    # Not committed yet: running again amends the same version instead of bumping.
    cas("version", "model.bin", "--metric", "f1=0.8")
    meta = _meta(repo, "model.bin.cas")
    assert meta["version"] == "0.1.0" and meta["metrics"]["f1"] == 0.8
    cas("version", "model.bin", "--params", "params.yaml", "--metrics", "metrics.json",
        "--param", "epochs=10", "--message", "first", "--metric", "f1=0.8")
    again = (repo / "model.bin.cas").read_text()
    assert again.count("version: 0.1.0") == 1
    # Validation: a lower or malformed explicit version is refused with one line.
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "v")
    bad = cas("version", "model.bin", "--set", "0.0.9", check=False)
    assert bad.returncode == 2 and "lower than the latest version 0.1.0" in bad.stderr
    bad = cas("version", "model.bin", "--set", "banana", check=False)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_per_artifact_scheme_and_recorded_scheme(repo: Path, cas) -> None:
    _set_config(repo, scheme="semantic", artifacts={"model.bin": {"scheme": "sequential"}})
    _new_model(repo, cas, seed=3)
    assert json.loads(cas("version", "model.bin", "--json").stdout)["version"] == "1"
    write_random(repo / "other.bin", 5000, seed=4)
    cas("add", "other.bin")
    out = json.loads(cas("version", "other.bin", "--scheme", "calendar", "--json").stdout)
    assert out["scheme"] == "calendar"
    assert _meta(repo, "other.bin.cas")["scheme"] == "calendar"
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "v")
    # The recorded scheme sticks for later versions of that artifact.
    out = json.loads(cas("version", "other.bin", "--json").stdout)
    assert out["scheme"] == "calendar" and out["version"].endswith(".1")


def test_tag_needs_a_committed_pointer_and_names_path_at_version(repo: Path, cas) -> None:
    _new_model(repo, cas, seed=5)
    cas("version", "model.bin", "--set", "1.3.0")
    refused = cas("version", "model.bin", "--tag", check=False)
    assert refused.returncode == 1 and "uncommitted changes" in refused.stderr
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "model 1.3.0")
    cas("version", "model.bin", "--tag")
    assert git(repo, "tag").split() == ["model.bin@1.3.0"]
    assert git(repo, "rev-parse", "model.bin@1.3.0^{commit}") == git(repo, "rev-parse", "HEAD")
    mixed = cas("version", "model.bin", "--tag", "--bump", "minor", check=False)
    assert mixed.returncode == 2


def test_log_follows_renames(repo: Path, cas) -> None:
    _new_model(repo, cas, seed=6)
    cas("version", "model.bin", "--set", "1.0.0")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "1.0.0")
    (repo / "models").mkdir()
    git(repo, "mv", "model.bin.cas", "models/model.bin.cas")
    (repo / "model.bin").rename(repo / "models" / "model.bin")
    git(repo, "commit", "-qm", "move")
    cas("version", "models/model.bin", "--bump", "minor")
    git(repo, "commit", "-qam", "1.1.0")
    entries = _log(cas, "models/model.bin")
    assert [(e["version"], e["pointer"]) for e in entries] == [
        ("1.1.0", "models/model.bin.cas"), ("1.0.0", "model.bin.cas")]
    res = json.loads(cas("compare", "models/model.bin@1.0.0", "models/model.bin@1.1.0",
                         "--json").stdout)
    assert res["same_content"] is True


def test_compare_reports_metric_param_lineage_and_env_deltas(repo: Path, cas) -> None:
    (repo / "data").mkdir()
    for n in ("a", "b"):
        (repo / "data" / f"{n}.txt").write_text(n * 100)
    cas("add", "data")
    _new_model(repo, cas, seed=7)
    (repo / "req1.txt").write_text("numpy==1.26.4\ntorch==2.2.0\n")
    cas("version", "model.bin", "--set", "1.2.0", "--metric", "accuracy=0.9",
        "--metric", "loss=0.5", "--param", "lr=0.01", "--param", "epochs=5",
        "--data", "data.cas", "--env", "req1.txt")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "1.2.0")
    (repo / "data" / "c.txt").write_text("c" * 1000)
    cas("add", "data")
    _new_model(repo, cas, seed=8)
    (repo / "req2.txt").write_text("numpy==1.26.4\ntorch==2.3.0\n")
    cas("version", "model.bin", "--bump", "minor", "--metric", "accuracy=0.93",
        "--metric", "loss=0.4", "--param", "lr=0.001", "--param", "epochs=5",
        "--param", "dropout=0.1", "--data", "data", "--env", "req2.txt")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "1.3.0")

    res = json.loads(cas("compare", "model.bin@1.2.0", "model.bin@1.3.0", "--json").stdout)
    metrics = {m["name"]: m for m in res["meta"]["metrics"]}
    assert metrics["accuracy"]["delta"] == pytest.approx(0.03)
    assert metrics["accuracy"]["arrow"] == "↑" and metrics["accuracy"]["improved"] is True
    assert metrics["loss"]["delta"] == pytest.approx(-0.1)
    assert metrics["loss"]["percent"] == pytest.approx(-20.0)
    assert metrics["loss"]["improved"] is True
    params = {p["name"]: (p["status"], p["old"], p["new"]) for p in res["meta"]["params"]}
    assert params == {"lr": ("changed", 0.01, 0.001), "dropout": ("added", None, 0.1)}
    env = {e["name"]: (e["old"], e["new"]) for e in res["meta"]["env"]}
    assert env == {"torch": ("2.2.0", "2.3.0")}
    [lineage] = res["lineage"]
    assert lineage["pointer"] == "data.cas" and lineage["status"] == "changed"
    assert lineage["detail"]["files_added"] == 1
    assert lineage["detail"]["bytes_changed"] == 1000
    assert res["same_content"] is False
    assert 0 <= res["chunks"]["shared_share"] < 0.5  # independent random weights

    text = cas("compare", "model.bin@1.2.0", "model.bin@1.3.0").stdout
    assert "accuracy: 0.9 -> 0.93  ↑ +0.03 (+3.33%) better" in text
    assert "data.cas: changed (1 file added, 0 removed, 0 modified" in text
    md = cas("compare", "model.bin@1.2.0", "model.bin@1.3.0", "--format", "markdown").stdout
    assert "| accuracy | 0.9 | 0.93 | +0.03 | +3.33% | ↑ ✅ |" in md
    # Git revisions name versions too.
    by_rev = json.loads(cas("compare", "model.bin@HEAD~1", "model.bin@HEAD", "--json").stdout)
    assert by_rev["meta"]["metrics"] == res["meta"]["metrics"]
    missing = cas("compare", "model.bin@9.9.9", "model.bin", check=False)
    assert missing.returncode == 1 and "has no version 9.9.9" in missing.stderr


def _save_model(path: Path, tensors: dict[str, np.ndarray]) -> None:
    from safetensors.numpy import save_file

    save_file(tensors, str(path))


def test_safetensors_changed_and_added_tensors_are_reported_exactly(repo: Path, cas) -> None:
    rng = np.random.default_rng(0)
    tensors = {"encoder.weight": rng.standard_normal((512, 256)).astype(np.float32),
               "encoder.bias": rng.standard_normal(256).astype(np.float32),
               "head.weight": rng.standard_normal((256, 10)).astype(np.float32)}
    _save_model(repo / "model.safetensors", tensors)
    cas("add", "model.safetensors")
    cas("version", "model.safetensors", "--set", "1.0.0")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "1.0.0")
    tensors["head.weight"] = tensors["head.weight"].copy()
    tensors["head.weight"][3, :] += 1.0  # one row of one tensor: 10 floats, 40 bytes
    tensors["head.extra"] = np.arange(12, dtype=np.int64).reshape(3, 4)
    _save_model(repo / "model.safetensors", tensors)
    cas("add", "model.safetensors")
    cas("version", "model.safetensors", "--bump", "minor")

    res = json.loads(cas("compare", "model.safetensors@1.0.0", "model.safetensors",
                         "--json").stdout)
    t = res["tensors"]
    assert [c["name"] for c in t["changed"]] == ["head.weight"]
    assert t["changed"][0]["new_shape"] == [256, 10] and t["changed"][0]["new_dtype"] == "F32"
    assert 0 < t["changed"][0]["bytes_changed"] <= 40
    assert [(c["name"], c["new_dtype"], c["new_shape"], c["new_nbytes"]) for c in t["added"]] \
        == [("head.extra", "I64", [3, 4], 96)]
    assert t["removed"] == []
    assert sorted(c["name"] for c in t["unchanged"]) == ["encoder.bias", "encoder.weight"]
    assert res["chunks"]["shared_chunks"] >= 1  # the encoder's chunks are reused

    text = cas("compare", "model.safetensors@1.0.0", "model.safetensors").stdout
    assert "+ head.extra  I64[3, 4]  96 B" in text
    assert "~ head.weight  F32[256, 10]" in text
    assert "tensors: 1 added, 0 removed, 1 changed, 2 unchanged" in text
    diff = json.loads(cas("diff", "--json").stdout)
    [entry] = diff["entries"]
    assert [c["name"] for c in entry["tensors"]["added"]] == ["head.extra"]
    assert entry["new_version"] == "1.1.0" and entry["old_version"] == "1.0.0"
    assert 0 < entry["new_bytes"] < entry["new_size"]


def test_diff_names_files_added_and_removed_in_a_folder(repo: Path, cas) -> None:
    d = repo / "images"
    d.mkdir()
    for i, n in enumerate(("a", "b", "old")):
        write_random(d / f"{n}.bin", 3000, seed=i)
    write_random(repo / "model.bin", 100_000, seed=9)
    cas("add", "images", "model.bin")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    (d / "old.bin").unlink()
    for i, n in enumerate(("new1", "new2", "sub/new3")):
        write_random(d / f"{n}.bin", 2000, seed=i + 10)
    cas("add", "images")

    res = json.loads(cas("diff", "--json").stdout)
    [e] = res["entries"]
    assert e["path"] == "images" and e["status"] == "modified" and res["unchanged"] == 1
    assert e["files"]["added"] == ["new1.bin", "new2.bin", "sub/new3.bin"]
    assert e["files"]["removed"] == ["old.bin"]
    assert e["files"]["modified"] == []
    assert e["files"]["source"] == "tree"
    assert e["new_bytes"] == 6000
    text = cas("diff").stdout
    for line in ("+ images/new1.bin", "+ images/new2.bin", "+ images/sub/new3.bin",
                 "- images/old.bin", "files: 3 added, 1 removed, 0 modified"):
        assert line in text
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "more images")
    md = cas("diff", "HEAD~1", "HEAD", "--format", "markdown").stdout
    assert md.startswith("<!-- cas-diff -->")
    assert "| <code>images/</code> | modified (3 added, 1 removed, 0 modified) |" in md
    assert "- added: <code>images/sub/new3.bin</code>" in md
    assert "- removed: <code>images/old.bin</code>" in md

    # Without the cache (a CI runner has only the pointers) the names come from the pointers.
    import shutil

    shutil.rmtree(repo / ".cas" / "cache")
    res = json.loads(cas("diff", "HEAD~1", "HEAD", "--json").stdout)
    [e] = res["entries"]
    assert e["files"]["source"] == "entries"
    assert e["files"]["added"] == ["new1.bin", "new2.bin", "sub/new3.bin"]
    assert e["files"]["removed"] == ["old.bin"]
    assert e["new_bytes"] is None


def test_diff_reports_table_schema_and_rows(repo: Path, cas) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": [1, 2, 3], "label": ["a", "b", "c"]}),
                   repo / "train.parquet")
    (repo / "eval.csv").write_text("x,y\n1,2\n3,4\n")
    cas("add", "train.parquet", "eval.csv")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "tables")
    pq.write_table(pa.table({"id": [1, 2, 3, 4], "label": ["a", "b", "c", "d"],
                             "weight": [0.5, 1.0, 1.0, 2.0]}), repo / "train.parquet")
    (repo / "eval.csv").write_text("x,y\n1,2\n3,4\n5,6\n")
    cas("add", "train.parquet", "eval.csv")
    res = {e["path"]: e for e in json.loads(cas("diff", "--json").stdout)["entries"]}
    t = res["train.parquet"]["table"]
    assert (t["old_rows"], t["new_rows"]) == (3, 4)
    assert t["columns_added"] == [["weight", "double"]]
    c = res["eval.csv"]["table"]
    assert (c["old_rows"], c["new_rows"], c["schema_changed"]) == (2, 3, False)
    assert "+ column weight: double" in cas("diff").stdout


def test_conflicted_pointer_is_one_clear_line_for_every_command(repo: Path, cas) -> None:
    _new_model(repo, cas, seed=20)
    cas("version", "model.bin", "--set", "1.0.0", "--metric", "acc=0.5")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "1.0.0")
    git(repo, "checkout", "-qb", "experiment")
    _new_model(repo, cas, seed=21)
    cas("version", "model.bin", "--bump", "minor", "--metric", "acc=0.6")
    git(repo, "commit", "-qam", "experiment 1.1.0")
    git(repo, "checkout", "-q", "main")
    cas("checkout", "--force")
    _new_model(repo, cas, seed=22)
    cas("version", "model.bin", "--bump", "minor", "--metric", "acc=0.7")
    git(repo, "commit", "-qam", "main 1.1.0")
    import subprocess

    from conftest import git_env

    merge = subprocess.run(["git", "merge", "experiment"], cwd=repo, capture_output=True,
                           text=True, env=git_env())
    assert merge.returncode != 0 and "CONFLICT" in merge.stdout
    assert "<<<<<<<" in (repo / "model.bin.cas").read_text()

    commands = [("version", "model.bin"), ("log", "model.bin"),
                ("compare", "model.bin@1.0.0", "model.bin"), ("diff",), ("status",),
                ("add", "model.bin"), ("checkout",), ("ls",)]
    for args in commands:
        res = cas(*args, check=False)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 1, (args, res.stderr)
        assert len(lines) == 1, (args, res.stderr)
        assert "model.bin.cas has unresolved Git conflict markers" in lines[0], args
        assert "git checkout --ours model.bin.cas" in lines[0]
        assert "Traceback" not in res.stderr
    # The pointer is untouched by the refused commands.
    assert "<<<<<<<" in (repo / "model.bin.cas").read_text()

    # Resolving with a new version keeps the working tree's side (main's model).
    out = json.loads(cas("version", "model.bin", "--set", "1.2.0", "--json").stdout)
    assert out["resolved_conflict"] is True and out["version"] == "1.2.0"
    assert _meta(repo, "model.bin.cas")["metrics"] == {"acc": 0.7}
    git(repo, "add", "model.bin.cas")
    git(repo, "commit", "-qm", "merge experiment")
    versions = [(e["version"], e["metrics"]["acc"]) for e in _log(cas, "model.bin")]
    assert versions[0] == ("1.2.0", 0.7)
    assert sorted(versions[1:]) == [("1.0.0", 0.5), ("1.1.0", 0.6), ("1.1.0", 0.7)]
    assert cas("status").returncode == 0
