"""Remotes under crashes, damage and races (on a remote in a local folder: fast, no server).

- `cas push` and `cas pull` SIGKILLed at seeded random moments (10 points each, 50 with
  --long): both stores stay consistent, the re-run completes, pulled data is byte-identical.
- A remote pack or index replaced by garbage or truncated: one clear error, nothing
  unverified enters the cache, no half-written workspace file.
- `gc --remote --grace 0` racing a push that lands after gc took its snapshot: nothing the
  push wrote is deleted.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from conftest import git, run_cas, write_random

from .helpers import (
    MiB,
    assert_store_consistent,
    kill_count,
    run_and_kill,
    temp_leftovers,
    timed_run,
    workspace_data,
)

TRACKED = ["model.bin", "ds"]


def make_version(repo: Path, seed: int) -> None:
    write_random(repo / "model.bin", 3 * MiB + seed, seed=seed)
    for i in range(16):
        write_random(repo / "ds" / f"{i}.bin", 30_000 + i,
                     seed=1000 * (seed if i % 4 == seed % 4 else 0) + i)


def remote_ok(repo: Path) -> dict:
    """``cas fsck --remote``: no damage (warnings about interrupted uploads and packs gc
    has condemned are allowed)."""
    res = run_cas(repo, "fsck", "--remote", "--json", check=False)
    assert "Traceback" not in res.stderr, res.stderr
    report = json.loads(res.stdout)
    assert res.returncode == 0 and not report["damaged"], report
    for w in report["warnings"]:
        assert "not indexed" in w or "temporary" in w or "condemned" in w, w
    return report


@pytest.fixture
def kills(request: pytest.FixtureRequest) -> int:
    return kill_count(request.config)


@pytest.fixture
def pair(repo: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The fixture repository with a folder remote, and a Git clone of it."""
    run_cas(repo, "remote", "add", "origin", str(tmp_path / "remote"), "--default")
    make_version(repo, 0)
    run_cas(repo, "add", *TRACKED)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "v0")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    return repo, clone


def _commit(repo: Path, msg: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", msg)


def test_kill_push(pair: tuple[Path, Path], kills: int, figures) -> None:
    repo, clone = pair
    rng = random.Random(7101)
    span = timed_run(repo, "push")
    landed = 0
    for k in range(1, kills + 1):
        make_version(repo, k)
        run_cas(repo, "add", *TRACKED)
        _commit(repo, f"v{k}")
        expected = workspace_data(repo, TRACKED)
        landed += run_and_kill(repo, ("push",), rng.uniform(0.0, 1.1) * span)
        assert_store_consistent(repo)
        remote_ok(repo)
        run_cas(repo, "push")
        git(clone, "pull", "-q")
        run_cas(clone, "pull")
        assert workspace_data(clone, TRACKED) == expected
    figures["kill points: push"] += kills
    figures["kills landed mid-command: push"] += landed
    assert landed >= kills // 4, f"only {landed} of {kills} kills hit a running push"
    assert_store_consistent(clone)
    run_cas(repo, "gc", "--remote", "origin", "--grace", "0", "--all-commits")
    # gc leaves a killed push's temporary upload or unindexed pack alone for an hour (it may
    # belong to a push still running elsewhere), so remote_ok allows those; nothing else.
    remote_ok(repo)
    run_cas(clone, "pull")
    assert workspace_data(clone, TRACKED) == expected


def test_kill_pull(pair: tuple[Path, Path], kills: int, figures) -> None:
    repo, clone = pair
    rng = random.Random(7102)
    versions = {}
    for v in (1, 2):
        make_version(repo, v)
        run_cas(repo, "add", *TRACKED)
        _commit(repo, f"v{v}")
        run_cas(repo, "push")
        versions[v] = workspace_data(repo, TRACKED)
    git(clone, "pull", "-q")
    span = timed_run(clone, "pull")
    landed = 0
    for k in range(kills):
        v = 1 + k % 2
        git(clone, "checkout", "-q", "main~1" if v == 1 else "main", "--", "model.bin.cas",
            "ds.cas")
        if k % 2 == 0:  # start from an empty cache half of the time: all of it downloads
            shutil.rmtree(clone / ".cas" / "cache")
            shutil.rmtree(clone / "ds", ignore_errors=True)
            (clone / "model.bin").unlink(missing_ok=True)
        landed += run_and_kill(clone, ("pull",), rng.uniform(0.0, 1.1) * span)
        assert_store_consistent(clone)
        res = run_cas(clone, "pull", check=False)
        assert res.returncode == 0, res.stderr
        assert workspace_data(clone, TRACKED) == versions[v]
        assert temp_leftovers(clone) == []
    figures["kill points: pull"] += kills
    figures["kills landed mid-command: pull"] += landed
    assert landed >= kills // 4, f"only {landed} of {kills} kills hit a running pull"
    remote_ok(repo)


def _remote_file(tmp_path: Path, kind: str) -> Path:
    files = sorted((tmp_path / "remote").rglob(f"*.{kind}"))
    assert files, kind
    return max(files, key=lambda p: p.stat().st_size)


def _garbage(p: Path) -> None:
    p.write_bytes(random.Random(1).randbytes(p.stat().st_size))


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _flip(p: Path) -> None:
    b = bytearray(p.read_bytes())
    b[len(b) // 3] ^= 0x10
    p.write_bytes(bytes(b))


@pytest.mark.parametrize("damage", [_garbage, _truncate, _flip], ids=["garbage", "truncated",
                                                                      "bitflip"])
@pytest.mark.parametrize("kind", ["pack", "idx"])
def test_damaged_remote_object(pair: tuple[Path, Path], tmp_path: Path, kind: str,
                               damage: object) -> None:
    repo, clone = pair
    run_cas(repo, "push")
    damage(_remote_file(tmp_path, kind))  # type: ignore[operator]
    res = run_cas(clone, "pull", check=False)
    assert res.returncode == 1 and "Traceback" not in res.stderr, res
    # One line for the damage (a damaged index row can also read as a missing object, and
    # then checkout adds one line for the file it could not restore).
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("cas: error")]
    assert 1 <= len(errors) <= 2, res.stderr
    assert any(w in errors[0] for w in ("fsck --remote", "damaged", "corrupt", "index",
                                        "not on remote")), errors[0]
    report = assert_store_consistent(clone)  # nothing unverified was stored
    assert not report["warnings"], report
    assert temp_leftovers(clone) == []
    assert not (clone / "model.bin").exists()
    # fsck --remote names the damage.
    fres = run_cas(clone, "fsck", "--remote", check=False)
    assert fres.returncode == 1 and "Traceback" not in fres.stderr
    assert "damaged:" in fres.stderr or "is not a readable index" in fres.stderr, fres.stderr


def test_push_racing_remote_gc_after_its_snapshot(pair: tuple[Path, Path], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """gc --remote --grace 0 in one clone; a push from another lands between gc's listing and
    its decisions. The pushed pack appeared after gc's listing and must survive both phases."""
    from casstore import Repo
    from casstore.store import collector

    repo, clone = pair
    run_cas(repo, "push")
    # Garbage on the remote for gc to delete: a version nobody references any more.
    make_version(repo, 1)
    run_cas(repo, "add", *TRACKED)
    run_cas(repo, "push")
    git(repo, "checkout", "-q", "--", "model.bin.cas", "ds.cas")  # back to v0 pointers
    run_cas(repo, "checkout", "--force")
    # The other clone's new data, pushed from inside gc (after its snapshot).
    write_random(clone / "fresh.bin", 3 * MiB, seed=77)
    run_cas(clone, "add", "fresh.bin")

    real_expand = collector.expand
    pushed = {}

    def expand_then_push(*a: object, **kw: object) -> object:
        if not pushed:  # gc has listed the remote's records, packs and indexes by now
            pushed["res"] = run_cas(clone, "push", check=False)
        return real_expand(*a, **kw)

    monkeypatch.setattr(collector, "expand", expand_then_push)
    with Repo(repo) as r:
        first = r.gc(remote="origin", grace_hours=0.0, keep_pushed_days=0.0)
        monkeypatch.undo()
        second = r.gc(remote="origin", grace_hours=0.0, keep_pushed_days=0.0)
    assert pushed["res"].returncode == 0, pushed["res"].stderr
    assert first.packs_condemned and not first.packs_deleted
    assert second.packs_deleted, "gc should have deleted the unreferenced version"
    remote_ok(repo)
    # A third clone gets the pushed file, and the first clone's live data is intact.
    _commit(clone, "fresh")
    third = tmp_path / "third"
    git(tmp_path, "clone", "-q", str(clone), str(third))
    run_cas(third, "pull")
    assert (third / "fresh.bin").read_bytes() == (clone / "fresh.bin").read_bytes()
    assert workspace_data(third, TRACKED) == workspace_data(repo, TRACKED)

