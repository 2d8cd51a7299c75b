"""Scripts' view of a repository, driving the real `cas`: status exit codes, what a remote
holds per artifact (status --remote, ls --remote) and pointers at a Git revision (ls REV)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import git, run_cas, write_random


def test_status_exit_code(repo: Path, cas) -> None:
    write_random(repo / "m.bin", 50_000, seed=1)
    cas("add", "m.bin")
    assert cas("status", "--exit-code").returncode == 0
    write_random(repo / "m.bin", 50_000, seed=2)
    res = cas("status", "--exit-code", check=False)
    assert res.returncode == 1 and "modified: m.bin" in res.stdout and not res.stderr
    assert cas("status").returncode == 0  # without the flag, a report is not a failure
    (repo / "m.bin").unlink()
    res = cas("status", "--exit-code", "--json", check=False)
    assert res.returncode == 1 and json.loads(res.stdout)["clean"] is False
    cas("checkout")
    shutil.rmtree(repo / ".cas" / "cache")
    res = cas("status", "--exit-code", check=False)
    assert res.returncode == 1 and "not in cache: m.bin" in res.stdout


def test_status_and_ls_against_a_remote(repo: Path, cas, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    d = repo / "data"
    for i in range(3):
        write_random(d / f"{i}.bin", 40_000, seed=10 + i)
    write_random(repo / "m.bin", 300_000, seed=20)
    cas("add", "data", "m.bin")
    cas("remote", "add", "origin", str(remote), "--default")

    res = cas("status", "--remote")
    assert res.stdout.splitlines() == ["remote: origin", "not pushed: data", "not pushed: m.bin"]
    res = cas("status", "--remote", "--exit-code", check=False)
    assert res.returncode == 1  # with --remote, data the remote lacks fails the check
    res = cas("ls", "--remote")
    assert res.stdout.splitlines()[0] == "remote: origin"
    assert all(line.endswith("absent") for line in res.stdout.splitlines()[1:])

    cas("push")
    res = cas("status", "--remote", "--exit-code")
    assert res.stdout.splitlines() == ["remote: origin", "on remote: data", "on remote: m.bin"]
    rows = json.loads(cas("ls", "--remote", "origin", "--json").stdout)
    assert {r["path"]: r["remote_state"] for r in rows} == {"data": "complete",
                                                            "m.bin": "complete"}
    assert all(r["objects"] == r["objects_on_remote"] > 0 for r in rows)

    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "v1")
    git(repo, "tag", "v1")
    # One new file in the folder: its old files are on the remote, the new tree and file
    # are not.
    write_random(d / "3.bin", 40_000, seed=30)
    write_random(repo / "new.bin", 1000, seed=31)
    cas("add", "data", "new.bin")
    rows = {r["path"]: r for r in json.loads(cas("ls", "--remote", "--json").stdout)}
    assert rows["data"]["remote_state"] == "partial"
    assert rows["new.bin"]["remote_state"] == "absent"
    assert rows["m.bin"]["remote_state"] == "complete"

    # ls REV: the pointers of a Git revision, not the workspace's.
    out = cas("ls", "v1").stdout
    assert "data" in out and "m.bin" in out and "new.bin" not in out
    assert "3 files" in out
    res = cas("ls", "v1", "--remote", "origin")
    assert "new.bin" not in res.stdout
    assert all(line.endswith("complete") for line in res.stdout.splitlines()[1:])
    res = cas("ls", "no-such-rev", check=False)
    assert res.returncode == 1 and "unknown Git revision" in res.stderr

    # A fresh clone knows nothing locally: what the folder holds is read from the remote.
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    rows = {r["path"]: r["remote_state"]
            for r in json.loads(run_cas(clone, "ls", "--remote", "--json").stdout)}
    assert rows == {"data": "complete", "m.bin": "complete"}
    res = run_cas(clone, "status", "--remote", "--exit-code", check=False)
    assert res.returncode == 1  # missing in the clone's workspace and cache
    assert "missing, not in cache, on remote: m.bin" in res.stdout
