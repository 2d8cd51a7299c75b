"""push / fetch / pull / status --remote against file:// and memory:// remotes."""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path

import numpy as np
import pytest
from conftest import git, init_repo, run_cas, write_random

from casstore.errors import CorruptObjectError, RemoteError
from casstore.ops.sync import fetch, mark_remote_states, pull, push
from casstore.remote import config as rc
from casstore.remote import ranges
from casstore.remote.ranges import plan_spans
from casstore.repo import Repo
from casstore.store.index import Index, Location
from casstore.store.packfile import ENTRY_DTYPE

MiB = 1 << 20


def _remote_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def _clone(src: Path, dest: Path) -> Path:
    git(src, "add", "-A")
    git(src, "commit", "-q", "-m", "data")
    git(src.parent, "clone", "-q", str(src), str(dest))
    return dest


def test_push_then_pull_into_fresh_clone_is_byte_identical(repo: Path, cas, tmp_path: Path
                                                           ) -> None:
    big = write_random(repo / "model.bin", 5 * MiB, seed=1)
    small = {f"data/f{i}.txt": f"row {i}\n".encode() * (i + 1) for i in range(30)}
    for rel, data in small.items():
        (repo / rel).parent.mkdir(exist_ok=True)
        (repo / rel).write_bytes(data)
    cas("add", "model.bin", "data")
    cas("remote", "add", "origin", str(tmp_path / "remote"), "--default")
    out = json.loads(cas("push", "--json").stdout)
    assert out["objects_sent"] == out["objects_needed"] > 0
    assert out["bytes_uploaded"] >= 5 * MiB
    # A second push finds everything there.
    again = json.loads(cas("push", "--json").stdout)
    assert again["objects_sent"] == 0 and again["bytes_uploaded"] == 0
    clone = _clone(repo, tmp_path / "clone")
    res = run_cas(clone, "pull", "--json")
    data = json.loads(res.stdout)
    assert data["fetch"]["missing"] == [] and data["checkout"]["failed"] == []
    assert (clone / "model.bin").read_bytes() == big
    for rel, content in small.items():
        assert (clone / rel).read_bytes() == content
    assert run_cas(clone, "status").stdout.startswith("Everything is up to date")
    assert run_cas(clone, "fsck").ok


def test_small_edit_of_big_file_uploads_little(repo: Path, cas, tmp_path: Path) -> None:
    data = bytearray(write_random(repo / "w.bin", 64 * MiB, seed=2))
    cas("add", "w.bin")
    cas("remote", "add", "origin", str(tmp_path / "remote"), "--default")
    first = json.loads(cas("push", "--json").stdout)
    assert first["bytes_uploaded"] >= 64 * MiB
    data[20 * MiB:21 * MiB] = bytes(reversed(data[20 * MiB:21 * MiB]))
    (repo / "w.bin").write_bytes(bytes(data))
    cas("add", "w.bin")
    second = json.loads(cas("push", "--json").stdout)
    assert 1 * MiB <= second["bytes_uploaded"] < 2 * MiB, second


def _small_files_dir(root: Path, n: int) -> None:
    import numpy as np

    rng = np.random.default_rng(7)
    blob = rng.integers(0, 256, n * 4096, dtype=np.uint8).tobytes()
    for i in range(n):
        d = root / f"part{i // 1000:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"s{i:05d}.bin").write_bytes(blob[i * 4096:(i + 1) * 4096])


def test_many_small_files_land_as_few_objects(repo: Path, cas, tmp_path: Path) -> None:
    n = 20_000  # 4 KiB each; about 7 s here, so it runs every time
    _small_files_dir(repo / "ds", n)
    cas("add", "ds")
    cas("remote", "add", "origin", str(tmp_path / "remote"), "--default")
    out = json.loads(cas("push", "--json").stdout)
    # Every file is one chunk, plus one tree per folder (20 subfolders and the top).
    assert out["objects_needed"] == n + 20 + 1
    objects = _remote_files(tmp_path / "remote")
    assert 2 <= len(objects) < 50, len(objects)
    # A no-op push reads no index file again (they are cached) and sends nothing.
    noop = json.loads(cas("push", "--json").stdout)
    assert noop["bytes_uploaded"] == 0


def _api_repo(path: Path) -> Repo:
    return Repo(init_repo(path))


def test_memory_remote_push_fetch_only_what_is_asked(tmp_path: Path) -> None:
    url = f"memory://cas-test-{uuid.uuid4().hex}"
    a = _api_repo(tmp_path / "a")
    write_random(a.root / "one.bin", 2 * MiB, seed=3)
    write_random(a.root / "two.bin", 2 * MiB, seed=4)
    a.add([a.root / "one.bin", a.root / "two.bin"])
    rc.add_remote(a.config, "mem", url, default=True)
    res = push(a)
    assert res.packs_uploaded == 1 and res.missing == []
    b = _api_repo(tmp_path / "b")
    rc.add_remote(b.config, "mem", url, default=True)
    for name in ("one.bin.cas", "two.bin.cas"):
        (b.root / name).write_bytes((a.root / name).read_bytes())
    f = fetch(b, None, [str(b.root / "one.bin.cas")])
    # Only one file's bytes come down, by range, although both share one remote pack.
    assert 2 * MiB <= f.bytes_downloaded < 3 * MiB
    assert f.missing == []
    p = pull(b, None, [str(b.root / "one.bin.cas")])
    assert p.fetch.objects_fetched == 0 and p.checkout.restored == ["one.bin"]
    assert (b.root / "one.bin").read_bytes() == (a.root / "one.bin").read_bytes()
    assert not (b.root / "two.bin").exists()


def test_partly_present_pack_sends_only_missing_objects(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    a = _api_repo(tmp_path / "a")
    shared = write_random(a.root / "shared.bin", 3 * MiB, seed=5)
    a.add([a.root / "shared.bin"])
    rc.add_remote(a.config, "origin", str(remote), default=True)
    push(a)
    # A colleague's cache holds the same file and a new one in a single pack.
    b = _api_repo(tmp_path / "b")
    (b.root / "shared.bin").write_bytes(shared)
    write_random(b.root / "new.bin", 1 * MiB, seed=6)
    b.add([b.root / "shared.bin", b.root / "new.bin"])
    assert len(b.cache.list_packs()) == 1
    rc.add_remote(b.config, "origin", str(remote), default=True)
    res = push(b)
    assert res.packs_uploaded == 0 and res.packs_built == 1
    assert 1 * MiB <= res.bytes_uploaded < 1 * MiB + 64 * 1024
    assert res.objects_present > 0


def test_status_remote_states(repo: Path, cas, tmp_path: Path) -> None:
    write_random(repo / "a.bin", 100_000, seed=8)
    cas("add", "a.bin")
    cas("remote", "add", "origin", str(tmp_path / "remote"), "--default")
    assert "not pushed: a.bin" in cas("status", "--remote").stdout
    cas("push")
    assert cas("status", "--remote").stdout.splitlines() == ["remote: origin",
                                                             "on remote: a.bin"]
    clone = _clone(repo, tmp_path / "clone")
    with Repo(clone) as r:
        entries = r.status()
        mark_remote_states(r, entries)
        assert entries[0].states == ["missing", "not in cache"]
    import shutil

    shutil.rmtree(tmp_path / "remote")
    with Repo(clone) as r:
        entries = r.status()
        mark_remote_states(r, entries)
        assert entries[0].states == ["missing", "not in cache", "not on remote"]


def test_corrupt_remote_pack_is_refused_and_reported(repo: Path, cas, tmp_path: Path) -> None:
    write_random(repo / "a.bin", 300_000, seed=9)
    cas("add", "a.bin")
    cas("remote", "add", "origin", str(tmp_path / "remote"), "--default")
    cas("push")
    pack = next((tmp_path / "remote" / "packs").rglob("*.pack"))
    raw = bytearray(pack.read_bytes())
    raw[100] ^= 0xFF
    pack.write_bytes(bytes(raw))
    clone = _clone(repo, tmp_path / "clone")
    r = run_cas(clone, "pull", check=False)
    assert r.returncode == 1 and "damaged" in r.stderr
    assert not (clone / "a.bin").exists()
    assert run_cas(clone, "fsck").ok  # nothing bad entered the cache
    f = run_cas(clone, "fsck", "--remote", check=False)
    # The damaged chunk is named; the pack's name still matches its (intact) entry table.
    assert f.returncode == 1 and "hash mismatch" in f.stderr


def test_data_missing_everywhere_is_an_error(repo: Path, cas, tmp_path: Path) -> None:
    write_random(repo / "a.bin", 1000, seed=10)
    cas("add", "a.bin")
    cas("remote", "add", "origin", str(tmp_path / "remote"), "--default")
    clone = _clone(repo, tmp_path / "clone")
    r = run_cas(clone, "pull", check=False)
    assert r.returncode == 1 and "a.bin" in r.stderr and "not on remote 'origin'" in r.stderr
    r = run_cas(clone, "push", check=False)
    assert r.returncode == 1 and "neither in the cache nor on remote" in r.stderr


def test_plan_spans_coalesces_near_objects_only() -> None:
    def loc(pack: str, off: int, n: int) -> Location:
        return Location(pack, 0, 0, n, off, n)

    spans = plan_spans([(b"a" * 16, loc("p", 8, 100)), (b"b" * 16, loc("p", 200, 100)),
                        (b"c" * 16, loc("p", 50 * MiB, 10)), (b"d" * 16, loc("q", 8, 5))],
                       gap=MiB, span=8 * MiB)
    assert [(s.pack, s.start, s.end, len(s.objects)) for s in spans] == [
        ("p", 8, 300, 2), ("p", 50 * MiB, 50 * MiB + 10, 1), ("q", 8, 13, 1)]


def test_unknown_protocol_is_one_clear_error(tmp_path: Path) -> None:
    a = _api_repo(tmp_path / "a")
    write_random(a.root / "x.bin", 100, seed=1)
    a.add([a.root / "x.bin"])
    rc.add_remote(a.config, "odd", "nosuchproto://bucket/x", default=True)
    with pytest.raises(RemoteError, match="cannot open"):
        push(a)


def test_corrupt_download_never_enters_cache(tmp_path: Path) -> None:
    url = f"memory://cas-test-{uuid.uuid4().hex}"
    a = _api_repo(tmp_path / "a")
    write_random(a.root / "x.bin", 200_000, seed=11)
    a.add([a.root / "x.bin"])
    rc.add_remote(a.config, "mem", url, default=True)
    push(a)
    import fsspec

    fs = fsspec.filesystem("memory")
    key = next(k for k in fs.find(url) if k.endswith(".pack"))
    raw = bytearray(fs.cat_file(key))
    raw[20] ^= 1
    fs.pipe_file(key, bytes(raw))
    b = _api_repo(tmp_path / "b")
    rc.add_remote(b.config, "mem", url, default=True)
    (b.root / "x.bin.cas").write_bytes((a.root / "x.bin.cas").read_bytes())
    with pytest.raises(CorruptObjectError, match="damaged"):
        fetch(b)
    assert len(b.cache.index()) == 0


def test_push_and_fetch_git_history(repo: Path, cas, tmp_path: Path) -> None:
    v1 = write_random(repo / "m.bin", 200_000, seed=21)
    cas("add", "m.bin")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "v1")
    write_random(repo / "m.bin", 200_000, seed=22)
    cas("add", "m.bin")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "v2")
    cas("remote", "add", "origin", str(tmp_path / "remote"), "--default")
    git(repo, "commit", "-qam", "remote")
    only_now = json.loads(cas("push", "--json").stdout)
    with_history = json.loads(cas("push", "--all-commits", "--json").stdout)
    assert only_now["objects_sent"] > 0 and with_history["objects_sent"] > 0
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    out = json.loads(run_cas(clone, "fetch", "--rev", "HEAD~2", "--json").stdout)
    assert out["missing"] == [] and out["objects_fetched"] > 0
    git(clone, "checkout", "-q", "HEAD~2")
    run_cas(clone, "checkout")
    assert (clone / "m.bin").read_bytes() == v1


def test_index_that_mislabels_a_chunk_is_refused(tmp_path: Path) -> None:
    import fsspec

    from casstore.store.indexfile import decode_index, encode_index

    url = f"memory://cas-test-{uuid.uuid4().hex}"
    a = _api_repo(tmp_path / "a")
    write_random(a.root / "x.bin", 300_000, seed=31)  # several chunks and a recipe
    a.add([a.root / "x.bin"])
    rc.add_remote(a.config, "mem", url, default=True)
    push(a)
    fs = fsspec.filesystem("memory")
    key = next(k for k in fs.find(url) if k.endswith(".idx"))
    packs, rows, ents = decode_index(fs.cat_file(key))
    ents["type"][ents["type"] == 0] = 1  # every chunk now claims to be a recipe
    fs.pipe_file(key, encode_index(packs, rows, ents))
    b = _api_repo(tmp_path / "b")
    rc.add_remote(b.config, "mem", url, default=True)
    (b.root / "x.bin.cas").write_bytes((a.root / "x.bin.cas").read_bytes())
    with pytest.raises(CorruptObjectError, match="should be a chunk"):
        fetch(b)
    assert len(b.cache.index()) == 0


@pytest.mark.parametrize("block", [3, 1 << 16])
def test_plan_row_spans_matches_plan_spans(block: int, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    """Spans planned from index rows, a block of rows at a time, are those planned from
    locations (the block boundary falls inside spans when ``block`` is 3)."""
    monkeypatch.setattr(ranges, "ROW_BLOCK", block)
    rng = random.Random(5)
    packs = ["a" * 32, "b" * 32, "c" * 32]
    ents = np.zeros(40, ENTRY_DTYPE)
    pack_of = np.zeros(40, np.uint32)
    offsets = {0: 8, 1: 8, 2: 8}
    for i in range(40):
        p = rng.randrange(3)
        n = rng.choice([100, 3000, 2 * MiB])
        offsets[p] += rng.choice([0, 0, 10, 2 * MiB])
        ents[i] = (i.to_bytes(16, "big"), 0, 0, n, offsets[p], n)
        pack_of[i] = p
        offsets[p] += n
    idx = Index(packs, pack_of, ents)
    rows = np.lexsort((idx.offset, idx.pack))
    want = [(idx.id_at(int(r)), idx.location_at(int(r))) for r in rows]
    expect = [(s.pack, s.start, s.end, [o for o, _ in s.objects])
              for s in plan_spans(want, gap=MiB, span=4 * MiB)]
    got = [(s.pack, s.start, s.end, [idx.id_at(int(r)) for r in s.rows])
           for s in ranges.plan_row_spans(idx, rows, gap=MiB, span=4 * MiB)]
    assert got == expect and len(got) > 3
