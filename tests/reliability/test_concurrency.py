"""Concurrency: several `cas` processes on one cache at once.

Adders share the store lock and write their own packs; gc takes it exclusively. Nothing may
be lost, nothing may deadlock (every process has a timeout), and a process that waits more
than a second says so ("waiting for lock").
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from conftest import git, run_cas, write_random

from casstore import Repo

from .helpers import MiB, assert_store_consistent, finish, start_cas, status, workspace_data


def make_clones(tmp_path: Path, n: int) -> tuple[list[Path], Path]:
    """``n`` repositories whose caches are one shared folder (``cache.dir``)."""
    shared = tmp_path / "shared-cache"
    out = []
    for i in range(n):
        root = tmp_path / f"ws{i}"
        root.mkdir()
        git(root, "init", "-q", "-b", "main")
        Repo.init(root)
        with Repo(root) as r:
            r.config.set("cache.dir", str(shared), local=True)
            r.config.save(True)
        out.append(root)
    return out, shared


def fill(root: Path, i: int, rnd: int) -> list[str]:
    """Data of worker ``i`` in round ``rnd``: its own files plus files every worker shares."""
    write_random(root / "own.bin", 3 * MiB + i, seed=100 * rnd + i)
    write_random(root / "shared.bin", 4 * MiB, seed=100 * rnd + 99)  # identical everywhere
    for k in range(12):
        # Half of the folder is the same in every workspace, half is this worker's.
        seed = 100 * rnd + (50 if k % 2 else i) + k * 1000
        write_random(root / "ds" / f"{k}.bin", 40_000 + k, seed=seed)
    return ["own.bin", "shared.bin", "ds"]


@pytest.mark.parametrize("workers", [2, 4])
def test_parallel_adds_into_one_cache(tmp_path: Path, workers: int) -> None:
    roots, shared = make_clones(tmp_path, workers)
    for rnd in range(2):
        names = [fill(r, i, rnd) for i, r in enumerate(roots)]
        expected = [workspace_data(r, n) for r, n in zip(roots, names, strict=True)]
        procs = [start_cas(r, "add", *n) for r, n in zip(roots, names, strict=True)]
        results = [finish(p, timeout=300) for p in procs]
        assert all(res.returncode == 0 for res in results), [r.stderr for r in results]
        assert_store_consistent(roots[0])
        for root, want, n in zip(roots, expected, names, strict=True):
            assert all(e["states"] == [] for e in status(root))
            (root / "own.bin").unlink()
            (root / "shared.bin").unlink()
            shutil.rmtree(root / "ds")
            run_cas(root, "checkout")
            assert workspace_data(root, n) == want
    report = assert_store_consistent(roots[0])
    assert not report["warnings"], report


def test_parallel_adds_in_one_workspace(repo: Path) -> None:
    """Four adds of different files in one folder: every pointer and ignore rule survives."""
    names = [f"part{i}.bin" for i in range(4)]
    data = {n: write_random(repo / n, 2 * MiB, seed=i) for i, n in enumerate(names)}
    for rnd in range(3):
        procs = [start_cas(repo, "add", n) for n in names]
        results = [finish(p) for p in procs]
        assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
        ignored = (repo / ".gitignore").read_text().splitlines()
        assert sorted(f"/{n}" for n in names) == sorted(ignored), ignored
        for n in names:
            assert (repo / f"{n}.cas").is_file()
        if rnd < 2:
            for i, n in enumerate(names):
                data[n] = write_random(repo / n, 2 * MiB, seed=10 * (rnd + 1) + i)
            (repo / ".gitignore").unlink()
    assert_store_consistent(repo)
    for n in names:
        (repo / n).unlink()
    run_cas(repo, "checkout")
    assert {n: (repo / n).read_bytes() for n in names} == data


def test_checkout_readers_during_gc(repo: Path) -> None:
    model = write_random(repo / "model.bin", 8 * MiB, seed=1)
    for v in range(3):  # garbage for gc: old versions of a second file
        write_random(repo / "old.bin", 6 * MiB, seed=10 + v)
        run_cas(repo, "add", "old.bin")
    (repo / "old.bin.cas").unlink()
    (repo / "old.bin").unlink()
    run_cas(repo, "add", "model.bin")
    for rnd in range(3):
        (repo / "model.bin").unlink()
        gc = start_cas(repo, "gc")
        readers = [start_cas(repo, "checkout") for _ in range(2)]
        results = [finish(p, timeout=120) for p in [gc, *readers]]
        # Concurrent checkouts of one file may race on the rename, never on content.
        assert results[0].returncode == 0, results[0].stderr
        assert any(r.returncode == 0 for r in results[1:]), [r.stderr for r in results]
        assert (repo / "model.bin").read_bytes() == model
        assert_store_consistent(repo)
        write_random(repo / "old.bin", 6 * MiB, seed=20 + rnd)
        run_cas(repo, "add", "old.bin")
        (repo / "old.bin.cas").unlink()


def _wait_for(proc_err: Path, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in proc_err.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {proc_err.read_text()!r}")


def test_waiting_for_lock_message_and_no_lost_add_during_gc(repo: Path, tmp_path: Path
                                                              ) -> None:
    """An add that finishes while gc waits for the lock must not lose its data to that gc."""
    import subprocess

    from conftest import CAS, git_env

    keep = write_random(repo / "keep.bin", 2 * MiB, seed=1)
    run_cas(repo, "add", "keep.bin")
    with Repo(repo) as r, r.cache.lock(shared=True):  # stands for a long-running add
        err = tmp_path / "gc.err"
        with open(err, "w") as ef:
            gc = subprocess.Popen([CAS, "gc"], cwd=repo, env=git_env(), stdout=subprocess.PIPE,
                                  stderr=ef, text=True)
            _wait_for(err, "waiting for lock")
            # Meanwhile another add (shared lock, so not blocked) records new data.
            new = write_random(repo / "new.bin", 3 * MiB, seed=2)
            run_cas(repo, "add", "new.bin")
    gc.communicate(timeout=120)
    assert gc.returncode == 0, err.read_text()
    assert "another cas command is running" in err.read_text()
    assert all(e["states"] == [] for e in status(repo))
    for name in ("keep.bin", "new.bin"):
        (repo / name).unlink()
    run_cas(repo, "checkout")
    assert (repo / "keep.bin").read_bytes() == keep and (repo / "new.bin").read_bytes() == new
    assert_store_consistent(repo)


def test_checkout_waits_for_gc_and_says_so(repo: Path) -> None:
    data = write_random(repo / "a.bin", 1 * MiB, seed=3)
    run_cas(repo, "add", "a.bin")
    (repo / "a.bin").unlink()
    with Repo(repo) as r, r.cache.lock(shared=False):  # stands for a long gc
        proc = start_cas(repo, "checkout")
        time.sleep(3.0)  # start-up, then more than the one second before the notice
        assert proc.poll() is None  # still waiting, not failed
    res = finish(proc, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "waiting for lock" in res.stderr
    assert (repo / "a.bin").read_bytes() == data


def test_open_readers_across_a_repacking_gc(repo: Path) -> None:
    """`casstore.open` handles opened before a gc that repacks their data keep reading."""
    import casstore

    live = write_random(repo / "live.bin", 1 * MiB, seed=5)
    write_random(repo / "junk.bin", 6 * MiB, seed=6)
    run_cas(repo, "add", "live.bin", "junk.bin")  # one pack, mostly junk-to-be
    (repo / "junk.bin.cas").unlink()
    (repo / "junk.bin").unlink()
    with casstore.open("live.bin", repo=repo) as early:
        head = early.read(1000)
        gc = start_cas(repo, "gc", "--json")
        with casstore.open("live.bin", repo=repo) as during:
            mid = during.read()
        res = finish(gc, timeout=120)
        assert res.returncode == 0, res.stderr
        assert len(json.loads(res.stdout)["packs_repacked"]) == 1  # live data moved to a new pack
        rest = early.read()
    assert head + rest == live and mid == live
    with casstore.open("live.bin", repo=repo) as after:
        assert after.read() == live
    assert_store_consistent(repo)
