"""Trees of trees (`cas-tree 2`): round trips, hostile trees refused, empty folders,
executable bits, one-file edits that store only the trees on their path, and folders
recorded by earlier versions (`cas-tree 1`) read everywhere."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import git, run_cas

from casstore import Repo
from casstore.errors import CasError, CorruptObjectError, PathError
from casstore.hashing import digest_bytes, digest_file
from casstore.store.objects import Codec, ObjectType
from casstore.tree import (
    EMPTY_TREE,
    HEADER,
    Node,
    TreeEntry,
    build_tree,
    decode_nodes,
    diff_trees,
    encode_nodes,
    encode_tree,
    find,
    tree_objects,
    walk,
)

D1, D2, D3 = b"\x01" * 16, b"\x02" * 16, b"\x03" * 16
HEX = "ab" * 16


def _built(entries: list[TreeEntry]) -> tuple[dict[bytes, bytes], bytes]:
    trees: dict[bytes, bytes] = {}

    def put(tid: bytes, data: bytes) -> None:
        assert digest_bytes(data) == tid
        trees[tid] = data

    return trees, build_tree(entries, put).digest


def test_round_trip_nested_empty_and_executable() -> None:
    entries = [TreeEntry("b/c/d.bin", "f", 3, D1), TreeEntry("a", "x", 1, D2),
               TreeEntry("e", "d", 0, None), TreeEntry("b/empty", "d", 0, None),
               TreeEntry("a.txt", "f", 5, D3), TreeEntry("a-b/z", "f", 7, D1)]
    trees, top = _built(entries)
    # One tree per folder: top, a-b, b, b/c, and the (shared) empty tree.
    assert len(trees) == 5 and EMPTY_TREE in trees
    got = list(walk(trees.__getitem__, top))
    assert got == sorted(entries, key=lambda e: e.path.encode())
    nodes = decode_nodes(trees[top])
    assert [n.name for n in nodes] == ["a", "a-b", "a.txt", "b", "e"]
    b = next(n for n in nodes if n.name == "b")
    assert (b.kind, b.size, b.files) == ("t", 3, 1)  # bytes and files below, from the top tree
    assert encode_nodes(list(reversed(nodes))) == trees[top]  # canonical whatever the order
    # Same content, any input order: same digest.
    assert _built(list(reversed(entries)))[1] == top
    found = find(trees.__getitem__, top, "b/c/d.bin", "data")
    assert found.kind == "file" and found.entry == TreeEntry("b/c/d.bin", "f", 3, D1)
    sub = find(trees.__getitem__, top, "b", "data")
    assert sub.kind == "dir" and sub.tree == b.digest and (sub.size, sub.files) == (3, 1)
    assert list(walk(trees.__getitem__, top, "b")) == [TreeEntry("b/c/d.bin", "f", 3, D1),
                                                       TreeEntry("b/empty", "d", 0, None)]
    with pytest.raises(PathError):
        find(trees.__getitem__, top, "b/nothing", "data")
    objs = list(tree_objects(trees.__getitem__, top))
    assert {d for d, k, _ in objs if k == "t"} == set(trees)
    assert sum(1 for _, k, _ in objs if k == "f") == 4


def test_a_subfolder_sorts_as_if_it_ended_in_a_slash() -> None:
    data = encode_nodes([Node("a", "t", 0, 0, EMPTY_TREE), Node("a.b", "f", 1, 1, D1),
                         Node("a0", "f", 1, 1, D2)])
    assert [n.name for n in decode_nodes(data)] == ["a.b", "a", "a0"]


@pytest.mark.parametrize("line", [
    f"f 1 {HEX} a/b",                 # a '/' inside a name
    f"f 1 {HEX} ..",
    f"f 1 {HEX} .",
    f"t 0 0 {HEX} .git",
    f"f 1 {HEX} .GIT",
    f"f 1 {HEX} ",
    f"f 01 {HEX} a",                  # not canonical
    f"f -1 {HEX} a",
    f"f {'9' * 30} {HEX} a",          # beyond any real size
    f"f 1 {HEX[:30]} a",
    f"f 1 {HEX.upper()} a",
    f"q 1 {HEX} a",
    f"t 1 {HEX} a",                   # a subfolder without its file count
    f"f 1 {HEX} a\\b",
])
def test_hostile_lines_are_refused(line: str) -> None:
    with pytest.raises(CorruptObjectError):
        decode_nodes(HEADER + line.encode() + b"\n")


def test_hostile_trees_are_refused() -> None:
    f = f"f 1 {HEX} a\n".encode()
    for data in (HEADER + f + f,                                   # duplicate
                 HEADER + f"f 1 {HEX} b\n".encode() + f,            # out of order
                 HEADER + f + f"t 0 0 {HEX} a\n".encode(),          # a file and a folder 'a'
                 HEADER + f[:-1],                                   # truncated
                 HEADER + b"f 1 " + HEX.encode() + b" \xff\n"):     # not UTF-8
        with pytest.raises(CorruptObjectError):
            decode_nodes(data)
    # A subfolder line whose tree does not hold what it claims: refused on descent.
    inner = encode_nodes([Node("x", "f", 10, 1, D1)])
    tid = digest_bytes(inner)
    outer = encode_nodes([Node("s", "t", 5, 1, tid)])
    trees = {tid: inner, digest_bytes(outer): outer}
    with pytest.raises(CorruptObjectError):
        list(walk(trees.__getitem__, digest_bytes(outer)))
    # A version 1 tree below a version 2 tree is refused.
    old = encode_tree([TreeEntry("x", "f", 10, D1)])
    outer = encode_nodes([Node("s", "t", 10, 1, digest_bytes(old))])
    trees = {digest_bytes(old): old, digest_bytes(outer): outer}
    with pytest.raises(CorruptObjectError):
        list(walk(trees.__getitem__, digest_bytes(outer)))


def test_hostile_subtree_in_the_cache_is_refused_at_checkout(repo: Path, cas) -> None:
    (repo / "data").mkdir()
    (repo / "data" / "ok.txt").write_bytes(b"fine")
    cas("add", "data")
    bad = HEADER + f"f 4 {digest_file(repo / 'data' / 'ok.txt').hex()} ..\n".encode()
    with Repo(repo) as r, r.cache.writer() as w:
        w.put_stored(digest_bytes(bad), int(ObjectType.TREE), int(Codec.NONE), len(bad), bad)
        top = encode_nodes([Node("sub", "t", 4, 1, digest_bytes(bad))])
        w.put_stored(digest_bytes(top), int(ObjectType.TREE), int(Codec.NONE), len(top), top)
    ptr = repo / "data.cas"
    text = ptr.read_text()
    old = next(line for line in text.splitlines() if line.startswith("xxh128:"))
    ptr.write_text(text.replace(old, f"xxh128: {digest_bytes(top).hex()}"))
    shutil.rmtree(repo / "data")
    res = cas("checkout", check=False)
    assert res.returncode == 1 and "unsafe path" in res.stderr
    assert not (repo / "..").joinpath("ok.txt").exists() and not (repo / "data").exists() \
        or not any((repo / "data").rglob("*"))


def _tree_dir(root: Path) -> None:
    (root / "a" / "deep" / "er").mkdir(parents=True)
    (root / "empty" / "inner").mkdir(parents=True)
    (root / "a" / "deep" / "er" / "f.bin").write_bytes(os.urandom(3000))
    (root / "a" / "g.txt").write_bytes(b"g" * 100)
    (root / "run.sh").write_bytes(b"#!/bin/sh\necho hi\n")
    os.chmod(root / "run.sh", 0o755)
    (root / "top.txt").write_bytes(b"top")


def test_folder_round_trips_through_the_cache(repo: Path, cas) -> None:
    d = repo / "data"
    _tree_dir(d)
    cas("add", "data")
    text = (repo / "data.cas").read_text()
    assert "files: 4" in text and "path: empty/inner/" in text
    before = {p.relative_to(d): (p.read_bytes() if p.is_file() else None, p.stat().st_mode & 0o100)
              for p in d.rglob("*")}
    shutil.rmtree(d)
    cas("checkout")
    after = {p.relative_to(d): (p.read_bytes() if p.is_file() else None, p.stat().st_mode & 0o100)
             for p in d.rglob("*")}
    assert after == before
    assert "Everything is up to date" in cas("status").stdout
    # The top tree alone gives the size and file count; nested trees are in the cache.
    with Repo(repo) as r:
        ptr = r.load_pointer(repo / "data.cas")
        nodes = decode_nodes(r.cache.read(ptr.digest)[1])
        assert sum(n.files for n in nodes) == ptr.files == 4
        assert sum(n.size for n in nodes) == ptr.size


def _edit_setup(repo: Path, folders: int, files: int) -> None:
    for i in range(folders):
        d = repo / "data" / f"part{i:02d}"
        d.mkdir(parents=True)
        for j in range(files):
            (d / f"f{j:03d}.bin").write_bytes(os.urandom(1024))


def test_one_file_edit_stores_the_file_and_the_trees_on_its_path(repo: Path, cas) -> None:
    _edit_setup(repo, 20, 50)
    first = json.loads(cas("add", "data", "--json").stdout)["items"][0]["new_bytes"]
    target = repo / "data" / "part07" / "f013.bin"
    target.write_bytes(os.urandom(1024))
    with Repo(repo) as r:
        trees_before = _tree_count(r)
    res = cas("add", "data", "--json")
    added = json.loads(res.stdout)["items"][0]["new_bytes"]
    with Repo(repo) as r:
        assert _tree_count(r) - trees_before == 2  # part07's tree and the top tree
    # 1 KiB of new data and two small trees; the whole folder's listing is ~70 KB.
    assert 1024 < added < 8 * 1024 < first
    st = cas("status", "--json")
    assert json.loads(st.stdout)["clean"]
    target.write_bytes(os.urandom(1024))
    entry = json.loads(cas("status", "--json").stdout)["entries"][0]
    assert entry["modified"] == ["part07/f013.bin"] and not entry["added"]


def _tree_count(r: Repo) -> int:
    idx = r.cache.index(refresh=True)
    return int((idx.type == int(ObjectType.TREE)).sum())


def _make_v1(repo: Path) -> tuple[bytes, bytes]:
    """Rewrite data.cas to name a version 1 tree of the same content, as casstore wrote
    before trees of trees; returns (v1 id, v2 id)."""
    d = repo / "data"
    entries = []
    for p in sorted(d.rglob("*")):
        rel = p.relative_to(d).as_posix()
        if p.is_file():
            entries.append(TreeEntry(rel, "x" if p.stat().st_mode & 0o100 else "f",
                                     p.stat().st_size, digest_file(p)))
        elif not any(p.iterdir()):
            entries.append(TreeEntry(rel, "d", 0, None))
    raw = encode_tree(entries)
    v1 = digest_bytes(raw)
    with Repo(repo) as r, r.cache.writer() as w:
        w.put_stored(v1, int(ObjectType.TREE), int(Codec.NONE), len(raw), raw)
    ptr = repo / "data.cas"
    text = ptr.read_text()
    old = next(line for line in text.splitlines() if line.startswith("xxh128:"))
    ptr.write_text(text.replace(old, f"xxh128: {v1.hex()}"))
    return v1, bytes.fromhex(old.split()[1])


def test_old_format_folder_is_read_everywhere(repo: Path, cas, tmp_path: Path) -> None:
    d = repo / "data"
    _tree_dir(d)
    cas("add", "data")
    v1, v2 = _make_v1(repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "old format")
    # Unchanged content under an old pointer is clean, not "modified".
    assert "Everything is up to date" in cas("status").stdout
    (d / "a" / "g.txt").write_bytes(b"changed")
    (d / "new.txt").write_bytes(b"new")
    entry = json.loads(cas("status", "--json").stdout)["entries"][0]
    assert "modified" in entry["states"]
    assert entry["modified"] == ["a/g.txt"] and entry["added"] == ["new.txt"]
    assert cas("checkout", "--force").returncode == 0
    assert (d / "a" / "g.txt").read_bytes() == b"g" * 100 and not (d / "new.txt").exists()
    shutil.rmtree(d)
    cas("checkout")
    assert (d / "a" / "deep" / "er" / "f.bin").is_file() and (d / "empty" / "inner").is_dir()
    assert os.access(d / "run.sh", os.X_OK)
    assert "Everything is up to date" in cas("status").stdout
    # Push and fetch an old pointer: a fresh cache gets what it needs.
    cas("remote", "add", "origin", str(tmp_path / "remote"), "--default")
    cas("push")
    shutil.rmtree(repo / ".cas" / "cache")
    shutil.rmtree(d)
    cas("pull")
    assert (d / "a" / "g.txt").read_bytes() == b"g" * 100
    # Re-adding writes the new format; the diff between the two commits shows no file change.
    (d / "a" / "g.txt").write_bytes(b"new content")
    cas("add", "data")
    text = (repo / "data.cas").read_text()
    assert v1.hex() not in text and v2.hex() not in text
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "new format")
    diff = cas("diff", "HEAD~1", "HEAD").stdout
    assert "a/g.txt" in diff
    with Repo(repo) as r:
        ptr = r.load_pointer(repo / "data.cas")
        assert r.cache.read(ptr.digest)[1].startswith(HEADER)


def test_walk_of_an_absent_subtree_names_it(repo: Path) -> None:
    with Repo(repo) as r:
        from casstore.store.trees import tree_loader

        top = encode_nodes([Node("s", "t", 1, 1, D3)])
        load = tree_loader(r.cache, "data")
        with pytest.raises(CasError):
            list(walk(lambda t: top if t == digest_bytes(top) else load(t), digest_bytes(top)))


def test_name_with_dot_git_is_refused_by_add(repo: Path) -> None:
    (repo / "data" / "x" / ".git").mkdir(parents=True)
    (repo / "data" / "x" / ".git" / "config").write_text("[core]\n")
    res = run_cas(repo, "add", "data", check=False)
    assert res.returncode == 1 and "'.git' folder" in res.stderr


def test_diff_opens_only_the_trees_that_differ() -> None:
    entries = [TreeEntry(f"p{i}/f{j}", "f", 1, digest_bytes(f"{i}/{j}".encode()))
               for i in range(5) for j in range(5)] + [TreeEntry("gone/x", "f", 2, D1)]
    old_trees, old = _built(entries)
    changed = [e if e.path != "p2/f3" else TreeEntry("p2/f3", "x", 1, D2) for e in entries
               if not e.path.startswith("gone/")] + [TreeEntry("new/y", "f", 3, D3)]
    new_trees, new = _built(changed)
    trees = {**old_trees, **new_trees}
    opened: list[bytes] = []

    def load(tid: bytes) -> bytes:
        opened.append(tid)
        return trees[tid]

    got = sorted(diff_trees(load, old, new), key=lambda d: d[0])
    assert [(p, a is not None, b is not None) for p, a, b in got] == [
        ("gone/x", True, False), ("new/y", False, True), ("p2/f3", True, True)]
    # The two tops, p2 on both sides, and the trees of the folders that came and went.
    assert len(opened) == 6
    # An old (version 1) tree against a new one: compared entry by entry.
    v1 = encode_tree(entries)
    trees[digest_bytes(v1)] = v1
    got = sorted(p for p, _, _ in diff_trees(trees.__getitem__, digest_bytes(v1), new))
    assert got == ["gone/x", "new/y", "p2/f3"]
    assert list(diff_trees(trees.__getitem__, digest_bytes(v1), old)) == []


def test_add_refuses_a_folder_holding_tracked_data(repo: Path, cas) -> None:
    (repo / "data" / "sub").mkdir(parents=True)
    (repo / "data" / "sub" / "m.bin").write_bytes(b"model")
    cas("add", "data/sub/m.bin")
    res = cas("add", "data", check=False)
    assert res.returncode == 1 and res.stderr.count("\n") == 1
    assert "data contains tracked data (data/sub/m.bin.cas)" in res.stderr
    assert not (repo / "data.cas").exists()
