"""Crash consistency: SIGKILL `cas add`, `cas checkout` and `cas gc` at seeded random moments.

After every kill: `cas fsck` finds no damage (its only allowed warnings are unindexed packs
and temporary files, which `cas fsck --repair` and `cas gc` clear — checked at the end of
each test), no pointer names data the cache lacks, re-running the command completes, and the
workspace data rebuilt from the cache is byte-identical to the source.

The power-loss variant writes what a crash between "data written" and "renamed into place"
leaves behind (temp packs, a truncated temp pack, an unindexed pack, temp index and pointer
files) and checks the same promises.

Kill points: 6 per command by default, 50 with ``--long``.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import git, run_cas, write_random

from .helpers import (
    MiB,
    assert_store_consistent,
    fsck,
    kill_count,
    run_and_kill,
    status,
    temp_leftovers,
    timed_run,
    workspace_data,
)

TRACKED = ["model.bin", "data", "notes.txt"]


def make_version(repo: Path, seed: int, *, big: int = 12 * MiB) -> None:
    """Write version ``seed`` of the tracked data: a big file, a folder, a small file.

    Successive versions share most of the folder (dedup) and none of the big file.
    """
    write_random(repo / "model.bin", big + seed, seed=seed)
    d = repo / "data"
    for i in range(24):
        # A third of the folder changes in each version.
        write_random(d / f"part{i // 8}" / f"f{i:02d}.bin", 96 * 1024 + i,
                     seed=1000 * (seed if i % 3 == seed % 3 else 0) + i)
    (d / "empty").mkdir(parents=True, exist_ok=True)
    (repo / "notes.txt").write_text(f"version {seed}\n")


def no_pointer_without_data(repo: Path) -> None:
    """A pointer is only ever written after the data it names is committed to the cache."""
    for e in status(repo):
        assert "not in cache" not in e["states"], e


def rebuild_matches(repo: Path, expected: dict[str, bytes | str]) -> None:
    """Delete the tracked data, check it out from the cache, compare byte for byte."""
    for n in TRACKED:
        p = repo / n
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    run_cas(repo, "checkout")
    assert workspace_data(repo, TRACKED) == expected
    assert temp_leftovers(repo) == []


def final_cleanup_is_complete(repo: Path) -> None:
    """What kills left behind is fixed by repair + gc: afterwards fsck has nothing to say."""
    run_cas(repo, "fsck", "--repair")
    run_cas(repo, "gc")
    report = fsck(repo)
    assert report["rc"] == 0 and not report["damaged"] and not report["warnings"], report


@pytest.fixture
def kills(request: pytest.FixtureRequest) -> int:
    return kill_count(request.config)


def test_kill_add(repo: Path, kills: int, figures) -> None:
    rng = random.Random(7001)
    make_version(repo, 0)
    span = timed_run(repo, "add", *TRACKED)
    landed = 0
    for k in range(1, kills + 1):
        make_version(repo, k)
        expected = workspace_data(repo, TRACKED)
        landed += run_and_kill(repo, ("add", *TRACKED), rng.uniform(0.0, 1.1) * span)
        assert_store_consistent(repo)
        no_pointer_without_data(repo)
        run_cas(repo, "add", *TRACKED)
        assert_store_consistent(repo)
        assert all(e["states"] == [] for e in status(repo))
        rebuild_matches(repo, expected)
    figures["kill points: add"] += kills
    figures["kills landed mid-command: add"] += landed
    assert landed >= kills // 4, f"only {landed} of {kills} kills hit a running add"
    final_cleanup_is_complete(repo)


def test_kill_checkout(repo: Path, kills: int, figures) -> None:
    rng = random.Random(7002)
    versions = {}
    for v in (1, 2):
        make_version(repo, v)
        run_cas(repo, "add", *TRACKED)
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", f"v{v}")
        versions[v] = workspace_data(repo, TRACKED)
    shutil.rmtree(repo / "data")
    (repo / "model.bin").unlink()
    span = timed_run(repo, "checkout")
    landed = 0
    for k in range(kills):
        # Alternate between restoring deleted data and switching versions through Git.
        v = 1 + k % 2
        git(repo, "checkout", "-q", "main~1" if v == 1 else "main", "--", "model.bin.cas",
            "data.cas", "notes.txt.cas")
        if k % 3 == 0:
            shutil.rmtree(repo / "data", ignore_errors=True)
        landed += run_and_kill(repo, ("checkout",), rng.uniform(0.0, 1.1) * span)
        assert_store_consistent(repo)
        res = run_cas(repo, "checkout", check=False)
        assert res.returncode == 0, res.stderr
        assert workspace_data(repo, TRACKED) == versions[v]
        assert temp_leftovers(repo) == [], temp_leftovers(repo)
        assert all(e["states"] == [] for e in status(repo))
    figures["kill points: checkout"] += kills
    figures["kills landed mid-command: checkout"] += landed
    assert landed >= kills // 4, f"only {landed} of {kills} kills hit a running checkout"
    final_cleanup_is_complete(repo)


def test_kill_gc(repo: Path, kills: int, figures) -> None:
    rng = random.Random(7003)
    make_version(repo, 0)
    run_cas(repo, "add", *TRACKED)
    span = 0.0
    landed = 0
    for k in range(1, kills + 1):
        # Each round makes the previous version garbage, in packs that also hold live data.
        make_version(repo, k)
        run_cas(repo, "add", *TRACKED)
        expected = workspace_data(repo, TRACKED)
        if k == 1:
            span = timed_run(repo, "gc", "--dry-run") * 2.5
        landed += run_and_kill(repo, ("gc",), rng.uniform(0.0, 1.0) * span)
        assert_store_consistent(repo)
        rebuild_matches(repo, expected)  # nothing live was lost
        run_cas(repo, "gc")
        assert_store_consistent(repo)
        rebuild_matches(repo, expected)
    figures["kill points: gc"] += kills
    figures["kills landed mid-command: gc"] += landed
    assert landed >= kills // 4, f"only {landed} of {kills} kills hit a running gc"
    final_cleanup_is_complete(repo)


def test_power_loss_leftovers(repo: Path) -> None:
    """Data written but never renamed into place, or renamed but never indexed."""
    from casstore import Repo
    from casstore.store.packfile import MAGIC

    make_version(repo, 1)
    run_cas(repo, "add", *TRACKED)
    expected = workspace_data(repo, TRACKED)
    cache = repo / ".cas" / "cache"
    # 1. A complete pack written by an add whose rename never happened (still in tmp/).
    make_version(repo, 2)
    run_cas(repo, "add", "model.bin")
    newest = max((cache / "packs").rglob("*.pack"), key=lambda p: p.stat().st_mtime_ns)
    shutil.copy(newest, cache / "tmp" / "0123abcd.pack.tmp")
    # 2. A truncated temp pack (power cut mid-write), and an empty one.
    (cache / "tmp" / "feedbeef.pack.tmp").write_bytes(newest.read_bytes()[: 300_000])
    (cache / "tmp" / "deadbeef.pack.tmp").write_bytes(b"")
    # 3. A pack renamed into place whose index was never written.
    idx = cache / "index" / f"{newest.name[:-5]}.idx"
    idx.unlink()
    # 4. Temp files of atomic writes: an index, a pointer, a workspace file mid-checkout.
    (cache / "index" / ".abc.idx.0123456789ab.cas-tmp").write_bytes(b"ARROW1" + b"\0" * 50)
    # Workspace writes are prepared in .cas/tmp/work/<process>/ (never beside user files,
    # whose names may look like anything): a killed process leaves its unlocked folder.
    stale = repo / ".cas" / "tmp" / "work" / "999999-0123456789ab"
    stale.mkdir(parents=True)
    (stale / "lock").write_bytes(b"")
    (stale / "1").write_text("cas: 1\npath: mod")
    (stale / "2").write_bytes(MAGIC)
    # 5. A pack whose bytes were never synced: renamed into place, but all zeros.
    zero_name = "ab" + "0" * 30
    (cache / "packs" / "ab").mkdir(parents=True, exist_ok=True)
    (cache / "packs" / "ab" / f"{zero_name}.pack").write_bytes(b"\0" * 4096)

    report = fsck(repo)
    # The never-synced pack is real damage and must be named; everything else is a warning.
    assert report["rc"] == 1 and any(zero_name in d for d in report["damaged"]), report
    assert any("not indexed" in w for w in report["warnings"]), report
    assert any("temporary file" in w for w in report["warnings"]), report
    (cache / "packs" / "ab" / f"{zero_name}.pack").unlink()  # what the user would do
    assert_store_consistent(repo)
    # Reads still work, and the pointer of model.bin v2 is usable once repaired.
    run_cas(repo, "fsck", "--repair")
    assert_store_consistent(repo)
    with Repo(repo) as r:
        assert len(r.cache.index()) > 0
    make_version(repo, 1)
    run_cas(repo, "add", *TRACKED)
    # A killed command's temp folder is not in the working tree: status is clean, and the
    # next checkout removes it.
    assert all(e["states"] == [] for e in status(repo))
    (repo / "data" / "part0" / "f00.bin").unlink()
    run_cas(repo, "checkout")
    assert not stale.exists()
    assert workspace_data(repo, TRACKED) == expected
    rebuild_matches(repo, expected)
    final_cleanup_is_complete(repo)
    assert not list((cache / "tmp").iterdir())
    assert not list((cache / "index").glob("*.cas-tmp"))
    assert np.all([p.name.endswith(".idx") for p in (cache / "index").iterdir()])
