"""Team-safe shared storage, end to end: several clones of one Git server share a remote
(a local folder and the S3 test server) or one cache, and routine gc never loses a
teammate's data. Each numbered case of the "team-safe shared storage" issue is here:

1. ``gc --remote --all-branches`` counts remote-tracking branches (a teammate's pushed,
   unmerged branch);
2. a push that reuses data held in a pack gc has condemned (or condemns while the push
   runs) uploads it again, and B's commit pulls after A's gc;
3. a push landing between gc's listing of index files and of packs is left alone;
4. ``gc`` on a cache shared through ``cache.dir`` keeps every registered clone's data;
plus the lease (one collector at a time) and group-shared caches.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CAS, git, git_env, run_cas, write_random

from casstore.repo import Repo
from casstore.store import lease, records
from casstore.store.collector import Snapshot

MiB = 1 << 20
FAST = ("--grace", "0", "--keep-pushed", "0")


class Team:
    """A bare Git server, a remote every clone uses, and clones of the server."""

    def __init__(self, base: Path, url: str, env: dict[str, str], endpoint: str | None):
        self.base = base
        self.url = url
        self.env = env
        self.endpoint = endpoint
        self.server = base / "server.git"
        git(base, "init", "-q", "--bare", "-b", "main", str(self.server))
        seed = base / "seed"
        git(base, "clone", "-q", str(self.server), str(seed))
        run_cas(seed, "init", env=env)
        run_cas(seed, "remote", "add", "origin", url, "--default", env=env)
        (seed / "README").write_text("team\n")
        git(seed, "add", "-A")
        git(seed, "commit", "-qm", "start")
        git(seed, "push", "-q", "origin", "main")

    def clone(self, name: str, branch: str = "main") -> Path:
        dest = self.base / name
        git(self.base, "clone", "-q", "-b", branch, str(self.server), str(dest))
        if self.endpoint:
            self.cas(dest, "remote", "modify", "origin", "endpoint_url", self.endpoint,
                     "--local")
        return dest

    def cas(self, cwd: Path, *args: str, check: bool = True):  # noqa: ANN201
        return run_cas(cwd, *args, env=self.env, check=check)

    def json(self, cwd: Path, *args: str) -> dict:
        return json.loads(self.cas(cwd, *args, "--json").stdout)

    def commit_and_push(self, cwd: Path, msg: str, branch: str = "main") -> None:
        git(cwd, "add", "-A")
        git(cwd, "commit", "-qm", msg)
        git(cwd, "push", "-q", "origin", f"HEAD:{branch}")

    def fresh_pull(self, name: str, branch: str) -> Path:
        dest = self.clone(name, branch)
        self.cas(dest, "pull")
        return dest


@pytest.fixture(params=["folder", "s3"])
def team(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Team]:
    env = git_env()
    if request.param == "folder":
        yield Team(tmp_path, str(tmp_path / "remote"), env, None)
        return
    from support.s3 import fresh_bucket, s3_endpoint, s3_filesystem

    endpoint = s3_endpoint()
    url, _ = fresh_bucket(endpoint)
    for k, v in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                 ("AWS_DEFAULT_REGION", "us-east-1")):
        env.setdefault(k, v)
    try:
        yield Team(tmp_path, url, env, endpoint)
    finally:
        with contextlib.suppress(Exception):
            s3_filesystem().rm(url.removeprefix("s3://").split("/")[0], recursive=True)


def _gc(team: Team, cwd: Path, *args: str) -> dict:
    return team.json(cwd, "gc", "--remote", "origin", *FAST, *args)


# 1 -----------------------------------------------------------------------------------
def test_all_branches_keeps_a_teammates_remote_tracking_branch(team: Team) -> None:
    a = team.clone("a")
    b = team.clone("b")
    git(b, "checkout", "-q", "-b", "feature")
    data = write_random(b / "feat.bin", 600_000, seed=1)
    team.cas(b, "add", "feat.bin")
    team.cas(b, "push")
    team.commit_and_push(b, "feature data", "feature")
    git(a, "fetch", "-q", "origin")  # A knows the branch only as refs/remotes/origin/feature
    assert "origin/feature" in git(a, "branch", "-r")
    for _ in range(3):  # condemn, then delete, then once more: nothing of feature goes
        res = _gc(team, a, "--all-branches")
        assert res["packs_condemned"] == [] and res["packs_deleted"] == []
    fresh = team.fresh_pull("fresh", "feature")
    assert (fresh / "feat.bin").read_bytes() == data
    assert team.json(fresh, "fsck", "--remote")["ok"]


# 2 -----------------------------------------------------------------------------------
def _deleted_branch_data(team: Team, size: int, seed: int) -> tuple[Path, bytes]:
    """Clone A pushes w.bin on branch tmp, then deletes the branch: the remote holds data
    nothing references (but A's root record, within retention)."""
    a = team.clone("a")
    git(a, "checkout", "-q", "-b", "tmp")
    data = write_random(a / "w.bin", size, seed=seed)
    team.cas(a, "add", "w.bin")
    team.cas(a, "push")
    team.commit_and_push(a, "tmp data", "tmp")
    git(a, "checkout", "-q", "main")
    git(a, "push", "-q", "origin", "--delete", "tmp")
    git(a, "branch", "-q", "-D", "tmp")
    return a, data


def test_push_reusing_condemned_data_uploads_it_again(team: Team) -> None:
    a, data = _deleted_branch_data(team, 700_000, 2)
    first = _gc(team, a, "--all-branches")  # the deleted branch's pack is condemned
    assert len(first["packs_condemned"]) == 1
    b = team.clone("b")
    (b / "w.bin").write_bytes(data)  # B adds bytes that only a condemned pack holds
    team.cas(b, "add", "w.bin")
    assert "on remote only in condemned packs" in team.cas(b, "status", "--remote").stdout
    pushed = team.json(b, "push")
    assert pushed["objects_sent"] > 0 and pushed["objects_present"] == 0
    second = _gc(team, a, "--all-branches")  # B's commit is not pushed to Git yet
    assert second["packs_deleted"] == first["packs_condemned"]
    assert "not pushed" not in team.cas(b, "status", "--remote").stdout
    team.commit_and_push(b, "w again")
    fresh = team.fresh_pull("fresh", "main")
    assert (fresh / "w.bin").read_bytes() == data


def test_push_that_dedups_before_gc_is_kept_by_its_root_record(team: Team) -> None:
    """The issue's case 2 as reported: B's push sends nothing (the bytes are in an old pack
    of a deleted branch); A, up to date, runs gc twice before B pushes its Git commit."""
    a, data = _deleted_branch_data(team, 500_000, 3)
    b = team.clone("b")
    (b / "w.bin").write_bytes(data)
    team.cas(b, "add", "w.bin")
    assert team.json(b, "push")["objects_sent"] == 0  # dedup against the old pack
    for _ in range(2):  # default retention: B's root record keeps the data live
        res = team.json(a, "gc", "--remote", "origin", "--grace", "0", "--all-commits")
        assert res["packs_condemned"] == [] and res["packs_deleted"] == []
    assert "not pushed" not in team.cas(b, "status", "--remote").stdout
    team.commit_and_push(b, "w")
    assert (team.fresh_pull("fresh", "main") / "w.bin").read_bytes() == data


def test_condemnation_during_a_push_is_caught_by_its_recheck(team: Team,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    """gc condemns the pack B dedups against after B looked at the condemnations and
    before B's root record: B's re-check sends the data again, so gc's next run may delete
    the old pack (retention zero: nothing else protects it)."""
    from casstore.remote import transfer

    a, data = _deleted_branch_data(team, 500_000, 4)
    b = team.clone("b")
    (b / "w.bin").write_bytes(data)
    team.cas(b, "add", "w.bin")
    real = records.write_root_record
    condemned: list[dict] = []

    def gc_then_record(*args: object, **kw: object) -> str:
        if not condemned:
            condemned.append(_gc(team, a, "--all-branches"))
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(transfer.records, "write_root_record", gc_then_record)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", team.env.get("AWS_ACCESS_KEY_ID", "x"))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", team.env.get("AWS_SECRET_ACCESS_KEY", "x"))
    with Repo(b) as r:
        res = r.push()
    monkeypatch.undo()
    assert len(condemned[0]["packs_condemned"]) == 1
    # Everything was on the remote when the push looked; the re-check sent it again (under
    # a new pack name: the same objects repacked would have had the condemned name).
    assert res.objects_present == res.objects_needed and res.resent_after_gc > 0
    later = _gc(team, a, "--all-branches")
    assert later["packs_deleted"] == condemned[0]["packs_condemned"]
    team.commit_and_push(b, "w")
    assert (team.fresh_pull("fresh", "main") / "w.bin").read_bytes() == data


# 3 -----------------------------------------------------------------------------------
def test_push_landing_between_gc_listings_is_never_touched(team: Team,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """A push whose pack and index both land after gc listed index files and before it
    lists packs: gc sees an unindexed pack, re-indexes it, and deletes nothing of it."""
    from casstore.store.store import Store

    a = team.clone("a")
    write_random(a / "old.bin", 300_000, seed=5)
    team.cas(a, "add", "old.bin")
    team.cas(a, "push")
    (a / "old.bin.cas").unlink()  # garbage for gc
    b = team.clone("b")
    data = write_random(b / "new.bin", 800_000, seed=6)
    team.cas(b, "add", "new.bin")
    real = Store.list_packs
    pushed: list[object] = []

    def push_then_list(self: Store) -> object:
        if not pushed:
            pushed.append(team.cas(b, "push"))
        return real(self)

    monkeypatch.setattr(Store, "list_packs", push_then_list)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", team.env.get("AWS_ACCESS_KEY_ID", "x"))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", team.env.get("AWS_SECRET_ACCESS_KEY", "x"))
    with Repo(a) as r:
        first = r.gc(remote="origin", grace_hours=0, keep_pushed_days=0)
    monkeypatch.undo()
    assert pushed and first.unindexed_packs == 1 and len(first.packs_condemned) == 1
    assert first.index_files_replaced == 0
    for _ in range(2):  # B's Git push comes later: its root record keeps the data live
        res = team.json(a, "gc", "--remote", "origin", "--grace", "0")
        assert not set(res["packs_condemned"]) & set(pushed_packs(team, b))
    team.commit_and_push(b, "new")
    assert (team.fresh_pull("fresh", "main") / "new.bin").read_bytes() == data
    assert team.json(a, "fsck", "--remote")["ok"]


def pushed_packs(team: Team, clone: Path) -> list[str]:
    """Names of the packs the remote's index lists for the clone's pointers' objects."""
    with Repo(clone) as r:
        from casstore.ops.sync import open_remote_store
        from casstore.reachability import expand, workspace_roots

        rs = open_remote_store(r, "origin")
        index = rs.index()
        need = expand(r.cache, workspace_roots(r))
        return sorted({loc.pack for oid in need if (loc := index.get(oid)) is not None})


# 4 -----------------------------------------------------------------------------------
def _share_cache(clone: Path, cache: Path) -> None:
    (clone / ".cas" / "config.local.yaml").write_text(f"cache:\n  dir: {cache}\n")


def test_gc_on_a_shared_cache_keeps_every_registered_clones_data(tmp_path: Path) -> None:
    team = Team(tmp_path, str(tmp_path / "remote"), git_env(), None)
    shared = tmp_path / "shared-cache"
    x, y = team.clone("x"), team.clone("y")
    _share_cache(x, shared)
    _share_cache(y, shared)
    write_random(x / "a.bin", 400_000, seed=7)
    team.cas(x, "add", "a.bin")
    ydata = write_random(y / "b.bin", 400_000, seed=8)
    team.cas(y, "add", "b.bin")  # not pushed anywhere: the shared cache is its only copy
    res = team.json(x, "gc")
    assert sorted(res["clones"]) == sorted([str(x), str(y)])
    assert res["packs_deleted"] == []
    text = team.cas(x, "gc").stdout
    assert str(y) in text
    (y / "b.bin").unlink()
    team.cas(y, "checkout")
    assert (y / "b.bin").read_bytes() == ydata
    # A clone that is gone is dropped, and its data with it.
    import shutil

    shutil.rmtree(y)
    gone = team.json(x, "gc")
    assert gone["clones_dropped"] == [str(y)] and gone["packs_deleted"]
    assert team.json(x, "gc")["clones"] == [str(x)]
    assert team.json(x, "fsck")["ok"]


def test_group_shared_cache_is_group_writable_whatever_the_umask(tmp_path: Path) -> None:
    team = Team(tmp_path, str(tmp_path / "remote"), git_env(), None)
    x = team.clone("x")
    (x / ".cas" / "config.local.yaml").write_text(
        f"cache:\n  dir: {tmp_path / 'shared'}\n  shared: group\n")
    write_random(x / "a.bin", 300_000, seed=9)
    subprocess.run([CAS, "add", "a.bin"], cwd=x, env=git_env(), check=True,
                   capture_output=True, preexec_fn=lambda: os.umask(0o077))
    cache = tmp_path / "shared"
    files = [p for p in cache.rglob("*") if p.is_file() and p.name != "lock"]
    assert files and all(p.stat().st_mode & 0o060 == 0o060 for p in files), \
        [(str(p), oct(p.stat().st_mode)) for p in files if p.stat().st_mode & 0o060 != 0o060]
    dirs = [p for p in cache.rglob("*") if p.is_dir()]
    assert all(p.stat().st_mode & 0o070 == 0o070 for p in dirs)
    assert (cache / "packs").stat().st_mode & 0o2000
    bad = team.cas(x, "status", check=False)
    assert bad.ok
    (x / ".cas" / "config.local.yaml").write_text("cache:\n  shared: everyone\n")
    wrong = team.cas(x, "add", "a.bin", check=False)
    assert wrong.returncode == 1 and "cache.shared" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1


# the lease -----------------------------------------------------------------------------
def test_a_second_gc_exits_naming_the_first(team: Team) -> None:
    a = team.clone("a")
    write_random(a / "a.bin", 100_000, seed=10)
    team.cas(a, "add", "a.bin")
    team.cas(a, "push")
    with Repo(a) as r:
        from casstore.ops.sync import open_remote_store

        store = open_remote_store(r, "origin")
        held = lease.acquire(store)
        try:
            res = team.cas(a, "gc", "--remote", "origin", check=False)
            assert res.returncode == 1 and "another gc is running" in res.stderr
            assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
            # Pushes never wait for a collector.
            write_random(a / "b.bin", 100_000, seed=11)
            team.cas(a, "add", "b.bin")
            team.cas(a, "push")
        finally:
            held.release()
        assert team.cas(a, "gc", "--remote", "origin").ok
        # An expired lease (its holder was killed) is superseded, not waited for.
        stale = lease.acquire(store, ttl=-1)
        assert stale.generation >= 1
        assert team.cas(a, "gc", "--remote", "origin").ok


def test_lease_has_one_winner_among_racing_collectors(team: Team) -> None:
    a = team.clone("a")
    with Repo(a) as r:
        from casstore.ops.sync import open_remote_store

        stores = [open_remote_store(r, "origin") for _ in range(6)]
        won: list[lease.Lease] = []
        lost: list[str] = []
        gate = threading.Barrier(len(stores))

        def take(s: object) -> None:
            gate.wait()
            try:
                won.append(lease.acquire(s))  # type: ignore[arg-type]
            except lease.LeaseHeldError as exc:
                lost.append(str(exc))

        threads = [threading.Thread(target=take, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(won) == 1 and len(lost) == len(stores) - 1
        won[0].release()


def test_snapshot_reads_through_the_cache(tmp_path: Path) -> None:
    """The collector reads trees and recipes from the local cache when it has them (same
    ids, same bytes) instead of asking the remote."""
    team = Team(tmp_path, str(tmp_path / "remote"), git_env(), None)
    a = team.clone("a")
    (a / "d").mkdir()
    write_random(a / "d" / "x.bin", 200_000, seed=12)
    team.cas(a, "add", "d")
    team.cas(a, "push")
    with Repo(a) as r:
        from casstore.ops.sync import open_remote_store

        rs = open_remote_store(r, "origin")
        calls: list[bytes] = []
        real = rs.read

        def counted(oid: bytes, *, verify: bool = True) -> tuple[int, bytes]:
            calls.append(oid)
            return real(oid, verify=verify)

        rs.read = counted  # type: ignore[method-assign]
        snap = Snapshot(rs, rs.index(), r.cache)
        tree = r.load_pointer(a / "d.cas").digest
        assert snap.read(tree)[1] == r.cache.read(tree)[1] and calls == []
