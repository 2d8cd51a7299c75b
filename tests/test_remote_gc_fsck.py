"""cas gc --remote (two phases, grace period, dry run, reachability) and cas fsck --remote
[--repair]; the remote as an on-demand backend for casstore.open."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from conftest import git, run_cas, write_random

import casstore
from casstore.errors import CasError
from casstore.repo import Repo

MiB = 1 << 20


def _packs(remote: Path) -> list[Path]:
    return sorted((remote / "packs").rglob("*.pack"))


def _age(paths: list[Path], hours: float) -> None:
    t = time.time() - hours * 3600
    for p in paths:
        os.utime(p, (t, t))


def test_remote_gc_condemns_then_deletes_old_unreferenced_packs(repo: Path, cas,
                                                                tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    write_random(repo / "keep.bin", 300_000, seed=1)
    cas("add", "keep.bin")
    cas("remote", "add", "origin", str(remote), "--default")
    cas("push")
    keep_pack = _packs(remote)
    write_random(repo / "old.bin", 500_000, seed=2)
    cas("add", "old.bin")
    cas("push")
    # old.bin is dropped from the workspace, and its push record is past retention: its
    # pack becomes garbage on the remote.
    (repo / "old.bin.cas").unlink()
    dead_pack = [p for p in _packs(remote) if p not in keep_pack]
    assert len(dead_pack) == 1
    young = json.loads(cas("gc", "--remote", "origin", "--keep-pushed", "0", "-n",
                           "--json").stdout)
    assert young["packs_condemned"] == [] and young["packs_deleted"] == []
    _age(_packs(remote), 48)
    # Within the retention window the push record keeps old.bin's data live.
    kept = json.loads(cas("gc", "--remote", "origin", "--json").stdout)
    assert kept["packs_condemned"] == [] and kept["root_records_live"] == 2
    dry = json.loads(cas("gc", "--remote", "origin", "--keep-pushed", "0", "--dry-run",
                         "--json").stdout)
    assert dry["packs_condemned"] == [dead_pack[0].stem] and dry["packs_deleted"] == []
    assert not list((remote / "records" / "condemned").glob("*.json"))
    first = json.loads(cas("gc", "--remote", "origin", "--keep-pushed", "0", "--json").stdout)
    assert first["packs_condemned"] == [dead_pack[0].stem] and first["packs_deleted"] == []
    assert dead_pack[0].exists()  # phase one never deletes
    fres = json.loads(cas("fsck", "--remote", "--json").stdout)
    assert fres["ok"] and fres["condemned_packs"] == [dead_pack[0].stem]
    text = cas("gc", "--remote", "origin", "--keep-pushed", "0", "-n").stdout
    assert "1 earlier condemnation still in its grace period" in text
    text = cas("gc", "--remote", "origin", "--keep-pushed", "0", "--grace", "0", "-n").stdout
    assert f"would delete pack {dead_pack[0].stem}" in text
    done = json.loads(cas("gc", "--remote", "origin", "--keep-pushed", "0", "--grace", "0",
                          "--json").stdout)
    assert done["packs_deleted"] == [dead_pack[0].stem] and not done["dry_run"]
    assert not dead_pack[0].exists() and all(p.exists() for p in keep_pack)
    assert not list((remote / "records" / "condemned").glob("*.json"))
    assert run_cas(repo, "fsck", "--remote").ok
    # What is still referenced is intact and pullable.
    (repo / "keep.bin").unlink()
    run_cas(repo, "gc")  # empties nothing needed, but forces the pull to go to the remote
    assert run_cas(repo, "pull").ok and (repo / "keep.bin").stat().st_size == 300_000


def test_remote_gc_keeps_history_when_asked(repo: Path, cas, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    write_random(repo / "m.bin", 200_000, seed=3)
    cas("add", "m.bin")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "v1")
    cas("remote", "add", "origin", str(remote), "--default")
    cas("push")
    write_random(repo / "m.bin", 200_000, seed=4)
    cas("add", "m.bin")
    cas("push")
    _age(_packs(remote), 48)
    kept = json.loads(cas("gc", "--remote", "origin", "--all-commits", "--keep-pushed", "0",
                          "-n", "--json").stdout)
    assert kept["packs_condemned"] == []
    gone = json.loads(cas("gc", "--remote", "origin", "--keep-pushed", "0", "-n",
                          "--json").stdout)
    assert len(gone["packs_condemned"]) == 1


def test_remote_gc_aborts_when_a_tree_cannot_be_read(tmp_path: Path, repo: Path, cas) -> None:
    remote = tmp_path / "remote"
    (repo / "d").mkdir()
    (repo / "d" / "a.txt").write_text("a" * 100)
    cas("add", "d")
    cas("remote", "add", "origin", str(remote), "--default")
    cas("push")
    pack = _packs(remote)[0]
    pack.write_bytes(pack.read_bytes()[:20])  # the tree can no longer be read
    _age([pack], 48)
    r = Repo(repo)
    r.cache.root.joinpath("packs").rename(tmp_path / "moved")  # force reads from the remote
    with pytest.raises(CasError, match="nothing was deleted"):
        r.gc(remote="origin", grace_hours=0)
    assert pack.exists()


def test_fsck_remote_reports_unindexed_pack_and_repairs_it(repo: Path, cas, tmp_path: Path
                                                           ) -> None:
    remote = tmp_path / "remote"
    write_random(repo / "a.bin", 200_000, seed=5)
    cas("add", "a.bin")
    cas("remote", "add", "origin", str(remote), "--default")
    cas("push")
    idx = next((remote / "index").glob("*.idx"))
    idx.unlink()  # as if the push had been killed between pack and index
    r = json.loads(cas("fsck", "--remote", "--json").stdout)
    assert r["ok"] and "not indexed" in r["warnings"][0]
    assert "not pushed" in cas("status", "--remote").stdout
    again = json.loads(cas("push", "--json").stdout)
    # The pack is already there whole: only its index is sent.
    assert again["bytes_uploaded"] < 4096
    assert json.loads(cas("fsck", "--remote", "--json").stdout)["warnings"] == []
    idx.unlink()
    fixed = json.loads(cas("fsck", "--remote", "--repair", "--json").stdout)
    assert fixed["repaired"] and idx.exists()


def test_missing_indexed_pack_is_damage(repo: Path, cas, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    write_random(repo / "a.bin", 50_000, seed=6)
    cas("add", "a.bin")
    cas("remote", "add", "origin", str(remote), "--default")
    cas("push")
    _packs(remote)[0].unlink()
    r = cas("fsck", "--remote", check=False)
    assert r.returncode == 1 and "missing" in r.stderr


def test_open_fetches_from_remote_on_demand(repo: Path, cas, tmp_path: Path) -> None:
    data = write_random(repo / "w.bin", 1 * MiB, seed=7)
    cas("add", "w.bin")
    cas("remote", "add", "origin", str(tmp_path / "remote"), "--default")
    cas("push")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "w")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    with casstore.open("w.bin", repo=clone) as f:
        assert f.read() == data


def test_unindexed_pack_is_reindexed_never_deleted(repo: Path, cas, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    write_random(repo / "a.bin", 100_000, seed=8)
    cas("add", "a.bin")
    cas("remote", "add", "origin", str(remote), "--default")
    cas("push")
    next((remote / "index").glob("*.idx")).unlink()  # a push between pack and index
    (repo / "a.bin.cas").unlink()
    gc = ("gc", "--remote", "origin", "--grace", "0", "--keep-pushed", "0", "--json")
    _age(_packs(remote), 0.2)
    young = json.loads(cas(*gc).stdout)
    assert young["unindexed_packs"] == 1 and young["unindexed_reindexed"] == 0
    assert len(_packs(remote)) == 1 and young["packs_condemned"] == []
    _age(_packs(remote), 2)
    old = json.loads(cas(*gc).stdout)  # indexed again from its trailer, not deleted
    assert old["unindexed_reindexed"] == 1 and len(_packs(remote)) == 1
    assert json.loads(cas(*gc).stdout)["packs_condemned"] == [_packs(remote)[0].stem]
    assert json.loads(cas(*gc).stdout)["packs_deleted"] and _packs(remote) == []


def test_remote_gc_repacks_mostly_dead_packs(repo: Path, cas, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    small = write_random(repo / "small.bin", 100_000, seed=12)
    write_random(repo / "big.bin", 2 * MiB, seed=13)
    cas("add", "small.bin", "big.bin")  # one local pack, one remote pack
    cas("remote", "add", "origin", str(remote), "--default")
    cas("push")
    old = _packs(remote)
    assert len(old) == 1
    (repo / "big.bin.cas").unlink()
    _age(old, 48)
    gc = ("gc", "--remote", "origin", "--keep-pushed", "0", "--json")
    dry = json.loads(cas(*gc, "-n").stdout)
    assert dry["packs_repacked"] == [old[0].stem] and dry["packs_condemned"] == [old[0].stem]
    assert _packs(remote) == old
    done = json.loads(cas(*gc).stdout)
    assert done["packs_repacked"] == [old[0].stem] and done["packs_condemned"] == [old[0].stem]
    assert len(_packs(remote)) == 2  # the live copy is written; the old pack waits
    later = json.loads(cas(*gc, "--grace", "0").stdout)
    assert later["packs_deleted"] == [old[0].stem]
    new = _packs(remote)
    assert len(new) == 1 and new[0] != old[0] and new[0].stat().st_size < 200_000
    assert run_cas(repo, "fsck", "--remote").ok
    clone = tmp_path / "clone"
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "small only")
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    run_cas(clone, "pull")
    assert (clone / "small.bin").read_bytes() == small


def test_fsck_after_gc_calls_a_dead_recipe_garbage_and_a_live_one_damage(
        repo: Path, cas, tmp_path: Path) -> None:
    """gc deletes a dead pack of chunks but keeps the mostly-live pack holding a dead recipe
    of them: fsck calls that recipe garbage (a warning), on the remote and in the cache. A
    recipe something needs whose chunks are gone is still damage."""
    import random

    remote = tmp_path / "remote"
    shared = random.Random(1).randbytes(300_000)
    (repo / "g.bin").write_bytes(shared)
    (repo / "f.bin").write_bytes(shared + random.Random(2).randbytes(100_000))
    write_random(repo / "h.bin", 1_000_000, seed=3)
    cas("remote", "add", "origin", str(remote), "--default")
    cas("add", "g.bin")
    cas("push")  # a pack of the shared chunks
    cas("add", "f.bin", "h.bin")
    cas("push")  # f's recipe and h, relying on the first pack for the shared chunks
    for name in ("f.bin.cas", "g.bin.cas", "f.bin", "g.bin"):
        (repo / name).unlink()
    for _ in range(2):
        cas("gc", "--remote", "origin", "--grace", "0", "--keep-pushed", "0")
    for where in (("fsck", "--remote"), ("fsck",)):
        if where == ("fsck",):
            cas("gc")
        res = json.loads(cas(*where, "--json").stdout)
        assert res["ok"] and not res["damaged"], res
        assert any("unused recipe" in w for w in res["warnings"]), res
    # Damage where something needs it: h's chunks gone from under its live recipe.
    for p in _packs(remote):
        p.unlink()
    bad = cas("fsck", "--remote", check=False)
    assert bad.returncode == 1 and "missing" in bad.stderr


def test_a_condemnation_executed_while_a_push_lists_them_is_skipped(
        repo: Path, cas, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A collector deletes a condemnation record once executed; a push that listed it just
    before reads nothing there, and goes on (the index shows what went)."""
    from casstore.store import records

    remote = tmp_path / "remote"
    write_random(repo / "old.bin", 200_000, seed=21)
    cas("add", "old.bin")
    cas("remote", "add", "origin", str(remote), "--default")
    cas("push")
    (repo / "old.bin.cas").unlink()
    cas("gc", "--remote", "origin", "--grace", "0", "--keep-pushed", "0")
    assert list((remote / "records" / "condemned").glob("*.json"))
    real = records.list_condemnations

    def listing_then_executed(store: object) -> dict:
        out = real(store)  # type: ignore[arg-type]
        for n in out:
            store.backend.delete(f"{records.CONDEMNED}/{n}.json")  # type: ignore[attr-defined]
        return out

    monkeypatch.setattr(records, "list_condemnations", listing_then_executed)
    write_random(repo / "new.bin", 100_000, seed=22)
    cas("add", "new.bin")
    with Repo(repo) as r:
        res = r.push()
    assert res.objects_sent > 0 and not res.missing
