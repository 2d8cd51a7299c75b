"""Partial work inside a tracked folder: `cas fetch/pull/checkout data/sub` and
`data/file.bin` transfer and write only that part; `cas status data/sub` looks only there."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import git, run_cas, write_random

from casstore import Repo
from casstore.pointer import read_pointer
from casstore.tree import decode_nodes

KIB = 1024


def _dataset(repo: Path, tmp_path: Path) -> dict[str, bytes]:
    """data/a (4 files of 64 KiB), data/b (4 files of 64 KiB, one nested), data/top.bin,
    pushed to a folder remote and committed."""
    files = {}
    for i, rel in enumerate(["a/x0.bin", "a/x1.bin", "a/x2.bin", "a/x3.bin",
                             "b/y0.bin", "b/y1.bin", "b/y2.bin", "b/deep/y3.bin", "top.bin"]):
        files[rel] = write_random(repo / "data" / rel, 64 * KIB, seed=100 + i)
    run_cas(repo, "add", "data")
    run_cas(repo, "remote", "add", "origin", str(tmp_path / "remote"), "--default")
    run_cas(repo, "push")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "data")
    return files


def _clone(repo: Path, dest: Path) -> Path:
    git(repo.parent, "clone", "-q", str(repo), str(dest))
    return dest


def _has(clone: Path, content: bytes) -> bool:
    from casstore.hashing import digest_bytes

    with Repo(clone) as r:
        r.cache.invalidate()
        return r.cache.has(digest_bytes(content))


def test_fetch_and_checkout_of_a_subfolder_transfer_and_write_only_it(
        repo: Path, tmp_path: Path) -> None:
    files = _dataset(repo, tmp_path)
    clone = _clone(repo, tmp_path / "clone")
    res = json.loads(run_cas(clone, "fetch", "data/a", "--json").stdout)
    # The four files of data/a and the trees on the way (top tree, a's tree), not b's nor
    # top.bin (range reads may span a small gap between wanted objects: not a whole file).
    assert 4 * 64 * KIB <= res["bytes_downloaded"] < 6 * 64 * KIB
    assert all(_has(clone, files[f"a/x{i}.bin"]) for i in range(4))
    assert not any(_has(clone, c) for rel, c in files.items() if not rel.startswith("a/"))
    out = run_cas(clone, "checkout", "data/a", "--json")
    done = json.loads(out.stdout)
    assert sorted(done["restored"]) == [f"data/a/x{i}.bin" for i in range(4)]
    assert sorted(p.relative_to(clone / "data").as_posix()
                  for p in (clone / "data").rglob("*") if p.is_file()) == \
        [f"a/x{i}.bin" for i in range(4)]
    for i in range(4):
        assert (clone / "data" / "a" / f"x{i}.bin").read_bytes() == files[f"a/x{i}.bin"]
    # Its status is clean; the whole folder's is not (b and top.bin are missing).
    part = json.loads(run_cas(clone, "status", "data/a", "--json").stdout)
    assert part["clean"] and part["entries"][0]["path"] == "data/a"
    whole = json.loads(run_cas(clone, "status", "--json").stdout)["entries"][0]
    assert "modified" in whole["states"] and "top.bin" in whole["removed"]
    # A second checkout of the part writes nothing.
    again = json.loads(run_cas(clone, "checkout", "data/a", "--json").stdout)
    assert again["restored"] == [] and again["failed"] == []
    # The rest can be pulled later; then the whole folder is clean.
    run_cas(clone, "pull")
    assert json.loads(run_cas(clone, "status", "--json").stdout)["clean"]


def test_pull_of_one_file_inside_a_folder(repo: Path, tmp_path: Path) -> None:
    files = _dataset(repo, tmp_path)
    clone = _clone(repo, tmp_path / "clone")
    res = run_cas(clone, "pull", "data/b/deep/y3.bin", "--json")
    out = json.loads(res.stdout)
    assert 64 * KIB <= out["fetch"]["bytes_downloaded"] < 3 * 64 * KIB
    assert out["checkout"]["restored"] == ["data/b/deep/y3.bin"]
    assert (clone / "data" / "b" / "deep" / "y3.bin").read_bytes() == files["b/deep/y3.bin"]
    assert [p.name for p in (clone / "data").rglob("*") if p.is_file()] == ["y3.bin"]
    st = json.loads(run_cas(clone, "status", "data/b/deep/y3.bin", "--json").stdout)
    assert st["clean"] and st["entries"][0]["kind"] == "file"


def test_status_of_a_part_looks_only_there(repo: Path, tmp_path: Path) -> None:
    _dataset(repo, tmp_path)
    (repo / "data" / "b" / "y0.bin").write_bytes(b"changed")
    (repo / "data" / "b" / "new.bin").write_bytes(b"new")
    a = json.loads(run_cas(repo, "status", "data/a", "--json").stdout)
    assert a["clean"]
    b = json.loads(run_cas(repo, "status", "data/b", "--json").stdout)["entries"][0]
    assert b["path"] == "data/b" and b["pointer"] == "data.cas"
    assert b["modified"] == ["y0.bin"] and b["added"] == ["new.bin"]
    assert "modified" in run_cas(repo, "status", "data/b/y0.bin").stdout
    # checkout of the part restores it and leaves the rest of the folder alone.
    (repo / "data" / "a" / "x0.bin").write_bytes(b"also changed, and added")
    run_cas(repo, "add", "data")  # keeps the edits in the cache, so checkout may replace them
    git(repo, "checkout", "-q", "--", "data.cas")
    run_cas(repo, "checkout", "data/b")
    assert not (repo / "data" / "b" / "new.bin").exists()
    assert (repo / "data" / "a" / "x0.bin").read_bytes() == b"also changed, and added"


def test_part_not_in_the_folder_is_one_line(repo: Path, tmp_path: Path) -> None:
    _dataset(repo, tmp_path)
    for cmd in (["checkout", "data/nothing"], ["status", "data/a/none.bin"],
                ["fetch", "data/zzz"]):
        res = run_cas(repo, *cmd, check=False)
        assert res.returncode == 1, cmd
        assert res.stderr.count("\n") == 1 and "is not in tracked folder data" in res.stderr


def test_checkout_of_a_part_without_the_rest_in_the_cache(repo: Path, tmp_path: Path) -> None:
    files = _dataset(repo, tmp_path)
    clone = _clone(repo, tmp_path / "clone")
    run_cas(clone, "fetch", "data/b")
    shutil.rmtree(clone / "data", ignore_errors=True)
    res = run_cas(clone, "checkout", check=False)
    # The part that is in the cache is written; the rest is reported, one line per folder.
    assert res.returncode == 1 and "not in the cache" in res.stderr
    assert (clone / "data" / "b" / "y1.bin").read_bytes() == files["b/y1.bin"]
    assert not (clone / "data" / "a").exists() or not any((clone / "data" / "a").iterdir())


def test_trees_on_the_path_to_a_part_land_in_one_pack(repo: Path, tmp_path: Path) -> None:
    """`cas fetch data/b/deep` reads the top tree and b's tree on its way: they go to the
    cache together, not as a pack each."""
    _dataset(repo, tmp_path)
    clone = _clone(repo, tmp_path / "clone")
    run_cas(clone, "fetch", "data/b/deep")
    top = read_pointer(clone / "data.cas").digest
    with Repo(clone) as r:
        r.cache.invalidate()
        b = next(n for n in decode_nodes(r.cache.read(top)[1]) if n.name == "b").digest
        packs = {r.cache.locate(t).pack for t in (top, b)}  # type: ignore[union-attr]
    assert len(packs) == 1
