"""cas get / cas import / cas update from another repository (local folder or Git URL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import git, run_cas, write_random


@pytest.fixture
def upstream(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """A repository with a model and a data folder: v1 tagged, then v2 on main."""
    up = tmp_path / "upstream"
    up.mkdir()
    git(up, "init", "-q", "-b", "main")
    run_cas(up, "init")
    remote = tmp_path / "upstream-remote"
    remote.mkdir()
    run_cas(up, "remote", "add", "origin", str(remote), "--default")
    v = {"model1": write_random(up / "model.bin", 600_000, seed=1),
         "a": write_random(up / "data" / "a.bin", 30_000, seed=2),
         "c": write_random(up / "data" / "sub" / "c.bin", 20_000, seed=3)}
    run_cas(up, "add", "model.bin", "data")
    run_cas(up, "push")
    git(up, "add", "-A")
    git(up, "commit", "-q", "-m", "v1")
    git(up, "tag", "v1")
    v["model2"] = write_random(up / "model.bin", 500_000, seed=4)
    run_cas(up, "add", "model.bin")
    run_cas(up, "push")
    git(up, "add", "-A")
    git(up, "commit", "-q", "-m", "v2")
    return up, v


def test_get_from_a_local_repository(upstream, tmp_path: Path) -> None:
    up, v = upstream
    work = tmp_path / "plain"
    work.mkdir()
    run_cas(work, "get", str(up), "model.bin")
    assert (work / "model.bin").read_bytes() == v["model2"]
    run_cas(work, "get", str(up), "model.bin", "--rev", "v1", "-o", "old.bin")
    assert (work / "old.bin").read_bytes() == v["model1"]
    run_cas(work, "get", str(up), "data")
    assert (work / "data" / "sub" / "c.bin").read_bytes() == v["c"]
    run_cas(work, "get", str(up), "data/sub/c.bin", "-o", "c.bin")
    assert (work / "c.bin").read_bytes() == v["c"]
    res = run_cas(work, "get", str(up), "model.bin", check=False)
    assert res.returncode == 1 and "already exists" in res.stderr
    res = run_cas(work, "get", str(up), "nothing.bin", check=False)
    assert res.returncode == 1 and "not tracked" in res.stderr
    assert not list(work.glob(".*cas-tmp"))


def test_get_from_a_git_url_reads_the_source_remote(upstream, tmp_path: Path) -> None:
    up, v = upstream
    work = tmp_path / "plain"
    work.mkdir()
    out = run_cas(work, "get", f"file://{up}", "model.bin", "--rev", "v1", "--json")
    info = json.loads(out.stdout)
    assert info["source"]["rev"] == "v1" and info["objects_fetched"] > 0
    assert (work / "model.bin").read_bytes() == v["model1"]


def test_import_records_the_source_and_update_follows_it(upstream, repo: Path, cas) -> None:
    up, v = upstream
    cas("import", str(up), "model.bin", "--rev", "main")
    assert (repo / "model.bin").read_bytes() == v["model2"]
    ptr = yaml.safe_load((repo / "model.bin.cas").read_text())
    assert ptr["source"]["path"] == "model.bin" and ptr["source"]["rev"] == "main"
    assert len(ptr["source"]["commit"]) == 40
    assert Path(repo, ptr["source"]["repo"]).resolve() == up.resolve()
    assert "/model.bin" in (repo / ".gitignore").read_text()
    status = json.loads(cas("status", "--json").stdout)
    assert all(not e["states"] for e in (status if isinstance(status, list)
                                         else status["entries"]))
    # Upstream moves on; update follows the recorded branch.
    v3 = write_random(up / "model.bin", 400_000, seed=9)
    run_cas(up, "add", "model.bin")
    git(up, "add", "-A")
    git(up, "commit", "-q", "-m", "v3")
    assert "updated model.bin" in cas("update").stdout
    assert (repo / "model.bin").read_bytes() == v3
    assert "up to date" in cas("update", "model.bin").stdout
    # A sub-folder of a tracked folder becomes a tracked folder of its own here.
    cas("import", str(up), "data/sub", "-o", "sub")
    assert (repo / "sub" / "c.bin").read_bytes() == v["c"]
    sub = yaml.safe_load((repo / "sub.cas").read_text())
    assert sub["kind"] == "dir" and sub["files"] == 1
    assert cas("fsck").returncode == 0


def test_import_refuses_to_replace_data_tracked_here(upstream, repo: Path, cas) -> None:
    up, _ = upstream
    write_random(repo / "model.bin", 1000, seed=5)
    cas("add", "model.bin")
    res = cas("import", str(up), "model.bin", check=False)
    assert res.returncode == 1 and "already tracked" in res.stderr
