"""Hostile input corpus: pointers, index files, packs and trees crafted to break or escape.

Table-driven: each case builds one hostile input in a fresh repository, then runs a real `cas`
command on it. Every case must give exit code 1, exactly one error line naming the file, no
traceback, and leave everything outside the repository untouched (a sentinel folder beside
the repository, which several cases aim at, is compared byte for byte).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import git, run_cas

from casstore import Repo
from casstore.hashing import digest_bytes
from casstore.store.indexfile import encode_index
from casstore.store.objects import Codec, ObjectType
from casstore.store.packfile import ENTRY_DTYPE, encode_trailer
from casstore.tree import TreeEntry, encode_tree

from .helpers import snapshot

DATA = b"hostile-input test payload\n" * 2000  # 54 KB: one chunk... or a few, either works
DIGEST = digest_bytes(DATA).hex()


@dataclass
class Env:
    """A repository with one tracked file (x.bin) and a sentinel folder beside it."""

    root: Path
    outside: Path

    def pointer(self, name: str, text: str | bytes) -> str:
        p = self.root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text.encode() if isinstance(text, str) else text)
        return name

    def index_file(self) -> Path:
        files = sorted((self.root / ".cas" / "cache" / "index").glob("*.idx"))
        assert len(files) == 1
        return files[0]

    def pack(self) -> tuple[str, Path]:
        packs = sorted((self.root / ".cas" / "cache" / "packs").rglob("*.pack"))
        assert len(packs) == 1
        return packs[0].name[:-5], packs[0]

    def put_object(self, otype: ObjectType, data: bytes, oid: bytes | None = None) -> bytes:
        """Store raw bytes as an object (under their own hash unless ``oid`` is given)."""
        oid = oid or digest_bytes(data)
        with Repo(self.root) as r, r.cache.writer() as w:
            w.put_stored(oid, int(otype), int(Codec.NONE), len(data), data)
        return oid


def make_env(tmp_path: Path) -> Env:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    Repo.init(root)
    (root / "x.bin").write_bytes(DATA)
    with Repo(root) as r:
        r.add([root / "x.bin"])
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("must survive\n")
    return Env(root, outside)


def ptr_text(**over: object) -> str:
    """A valid file pointer for x.bin's content, with keys overridden (None drops a key)."""
    d: dict[str, object] = {"cas": 1, "path": "y.bin", "kind": "file", "size": len(DATA),
                            "xxh128": DIGEST}
    d.update(over)
    import yaml

    return yaml.safe_dump({k: v for k, v in d.items() if v is not None}, sort_keys=False)


# A case returns (cas arguments, the name the error must mention).
Case = Callable[[Env], tuple[list[str], str]]
CASES: dict[str, Case] = {}


def case(name: str) -> Callable[[Case], Case]:
    def deco(fn: Case) -> Case:
        assert name not in CASES
        CASES[name] = fn
        return fn
    return deco


def pointer_case(name: str, text: str | bytes, file: str = "evil.cas",
                 named: str | None = None) -> None:
    """A hostile pointer file, checked out; the error names the pointer (or ``named``, the
    data path, for pointers that parse but lie about the cache)."""
    CASES[name] = lambda env: (["checkout", env.pointer(file, text)], named or file)


# --- pointer files: paths --------------------------------------------------------------
pointer_case("path-absolute", ptr_text(path="/tmp/cas-hostile-abs"))
pointer_case("path-dotdot", ptr_text(path=".."))
pointer_case("path-dotdot-escape", ptr_text(path="../outside/victim.txt"))
pointer_case("path-nested-dotdot", ptr_text(path="a/../../outside/victim.txt"))
pointer_case("path-backslash", ptr_text(path="..\\outside\\victim.txt"))
pointer_case("path-dot", ptr_text(path="."))
pointer_case("path-empty", ptr_text(path=""))
pointer_case("path-nul-escaped", 'cas: 1\npath: "y\\0.bin"\nkind: file\nsize: 1\n'
             f"xxh128: {DIGEST}\n")
pointer_case("path-git-dir", ptr_text(path=".git", kind="dir"))
pointer_case("path-cas-dir", ptr_text(path=".cas", kind="dir"))
pointer_case("path-names-pointer", ptr_text(path="evil.cas"))
pointer_case("path-in-subfolder", ptr_text(path="sub/y.bin"), file="sub/evil.cas")


@case("pointer-in-linked-folder")
def _linked_folder(env: Env) -> tuple[list[str], str]:
    (env.outside / "x.cas").write_text(ptr_text(path="victim.txt"))
    os.symlink(env.outside, env.root / "lnk")
    return ["checkout", "lnk/x.cas"], "lnk/x.cas"


@case("data-is-link-out")
def _data_link(env: Env) -> tuple[list[str], str]:
    os.symlink(env.outside / "victim.txt", env.root / "y.bin")
    return ["checkout", env.pointer("y.bin.cas", ptr_text())], "y.bin"


@case("dir-data-is-link-out")
def _dir_link(env: Env) -> tuple[list[str], str]:
    tid = env.put_object(ObjectType.TREE, encode_tree(
        [TreeEntry("victim.txt", "f", len(DATA), bytes.fromhex(DIGEST))]))
    os.symlink(env.outside, env.root / "d")
    return ["checkout", env.pointer("d.cas", ptr_text(path="d", kind="dir", xxh128=tid.hex()))], \
        "d"


@case("dir-subfolder-is-link-out")
def _subdir_link(env: Env) -> tuple[list[str], str]:
    tid = env.put_object(ObjectType.TREE, encode_tree(
        [TreeEntry("sub/victim.txt", "f", len(DATA), bytes.fromhex(DIGEST))]))
    (env.root / "d").mkdir()
    os.symlink(env.outside, env.root / "d" / "sub")
    return ["checkout", env.pointer("d.cas", ptr_text(path="d", kind="dir", xxh128=tid.hex()))], \
        "d/sub"


# --- pointer files: encoding and structure ----------------------------------------------
pointer_case("nul-byte", ptr_text().replace("kind", "ki\0nd"))
pointer_case("binary-garbage", np.random.default_rng(7).integers(0, 256, 4096, np.uint8)
             .tobytes())
pointer_case("latin1-text", ptr_text().encode() + b"# caf\xe9\n")
pointer_case("empty-file", "")
pointer_case("only-comment", "# nothing here\n")
pointer_case("top-level-list", "- cas: 1\n- path: y.bin\n")
pointer_case("top-level-scalar", "just a string\n")
pointer_case("conflict-markers", "<<<<<<< HEAD\n" + ptr_text() + "=======\n"
             + ptr_text(size=3) + ">>>>>>> branch\n")
pointer_case("invalid-yaml", "cas: 1\npath: [unclosed\n")
pointer_case("python-tag", "cas: 1\npath: !!python/object/apply:os.system ['id']\n")
pointer_case("yaml-alias-bomb", "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a]\n"
             "c: &c [*b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c]\ncas: 1\n")
pointer_case("yaml-anchor-only", ptr_text().replace("kind: file", "kind: &k file"))
pointer_case("deep-flow-nesting", "cas: 1\nmeta: " + "[" * 20000 + "]" * 20000 + "\n")
pointer_case("deep-meta", ptr_text() + "meta: " + "{a: " * 60 + "1" + "}" * 60 + "\n")
pointer_case("over-1mib", ptr_text() + "meta: {pad: '" + "x" * (1 << 20) + "'}\n")

# --- pointer files: keys and types -----------------------------------------------------
pointer_case("no-format-key", ptr_text(cas=None))
pointer_case("format-version-2", ptr_text(cas=2))
pointer_case("format-version-0", ptr_text(cas=0))
pointer_case("format-version-string", ptr_text(cas="1"))
pointer_case("format-version-bool", ptr_text(cas=True))
pointer_case("path-wrong-type", ptr_text(path=5))
pointer_case("path-list", ptr_text(path=["a", "b"]))
pointer_case("kind-unknown", ptr_text(kind="symlink"))
pointer_case("kind-wrong-type", ptr_text(kind=3))
pointer_case("size-string", ptr_text(size="big"))
pointer_case("size-bool", ptr_text(size=True))
pointer_case("size-negative", ptr_text(size=-5))
pointer_case("size-huge", ptr_text(size=10 ** 30))
pointer_case("size-float", ptr_text(size=1.5))
pointer_case("size-missing", ptr_text(size=None))
pointer_case("chunks-negative", ptr_text(chunks=-1))
pointer_case("files-huge", ptr_text(kind="dir", files=2 ** 63))
pointer_case("executable-string", ptr_text(executable="yes"))
pointer_case("meta-list", ptr_text(meta=[1, 2]))
pointer_case("source-string", ptr_text(source="http://example.invalid/"))
pointer_case("entries-string", ptr_text(kind="dir", entries="all"))
pointer_case("digest-short", ptr_text(xxh128=DIGEST[:31]))
pointer_case("digest-long", ptr_text(xxh128=DIGEST + "00"))
pointer_case("digest-upper", ptr_text(xxh128=DIGEST.upper()))
pointer_case("digest-not-hex", ptr_text(xxh128="z" * 32))
pointer_case("digest-int", ptr_text(xxh128=12345))
pointer_case("digest-missing", ptr_text(xxh128=None))
pointer_case("sha256-short", ptr_text(sha256="ab" * 31))
pointer_case("sha256-upper", ptr_text(sha256="AB" * 32))


# --- pointers that parse but lie about the cache ------------------------------------------
pointer_case("size-mismatch", ptr_text(size=len(DATA) + 1), named="y.bin")
pointer_case("file-pointer-names-missing-object", ptr_text(xxh128="0" * 32), named="y.bin")


@case("dir-pointer-names-a-file")
def _dir_names_file(env: Env) -> tuple[list[str], str]:
    return ["checkout", env.pointer("d.cas", ptr_text(path="d", kind="dir"))], "d"


@case("file-pointer-names-a-tree")
def _file_names_tree(env: Env) -> tuple[list[str], str]:
    tid = env.put_object(ObjectType.TREE, encode_tree(
        [TreeEntry("a", "f", len(DATA), bytes.fromhex(DIGEST))]))
    return ["checkout", env.pointer("y.bin.cas", ptr_text(xxh128=tid.hex()))], "y.bin"


# --- trees ------------------------------------------------------------------------------
def tree_case(name: str, entries: list[TreeEntry] | bytes) -> None:
    def build(env: Env) -> tuple[list[str], str]:
        raw = entries if isinstance(entries, bytes) else encode_tree(entries)
        tid = env.put_object(ObjectType.TREE, raw)
        return ["checkout", env.pointer("d.cas", ptr_text(path="d", kind="dir",
                                                          xxh128=tid.hex()))], "d"
    CASES[name] = build


_D = bytes.fromhex(DIGEST)
tree_case("tree-path-dotdot", [TreeEntry("../outside/victim.txt", "f", len(DATA), _D)])
tree_case("tree-path-absolute", [TreeEntry("/tmp/cas-hostile-tree", "f", len(DATA), _D)])
tree_case("tree-path-inner-dotdot", [TreeEntry("a/../../b", "f", len(DATA), _D)])
tree_case("tree-path-dot", [TreeEntry("./a", "f", len(DATA), _D)])
tree_case("tree-path-empty-part", [TreeEntry("a//b", "f", len(DATA), _D)])
tree_case("tree-path-dotgit", [TreeEntry(".git/hooks/post-checkout", "x", len(DATA), _D)])
tree_case("tree-duplicate-entries", [TreeEntry("a", "f", len(DATA), _D),
                                     TreeEntry("a", "f", len(DATA), _D)])
tree_case("tree-file-and-folder", [TreeEntry("a", "f", len(DATA), _D),
                                   TreeEntry("a/b", "f", len(DATA), _D)])
tree_case("tree-out-of-order", b"cas-tree 1\n" + f"f 1 {DIGEST} b\nf 1 {DIGEST} a\n".encode())
tree_case("tree-negative-size", b"cas-tree 1\n" + f"f -1 {DIGEST} a\n".encode())
tree_case("tree-short-digest", b"cas-tree 1\n" + f"f 1 {DIGEST[:30]} a\n".encode())
tree_case("tree-no-header", f"f 1 {DIGEST} a\n".encode())
tree_case("tree-truncated", b"cas-tree 1\n" + f"f {len(DATA)} {DIGEST} a".encode())
tree_case("tree-size-lies", [TreeEntry("a", "f", len(DATA) - 1, _D)])


@case("tree-entry-names-a-tree")
def _tree_cycle(env: Env) -> tuple[list[str], str]:
    # The nearest thing to a cycle: a file entry whose content id is a tree (here: another
    # tree that in turn names the first tree's sibling), which must never be followed.
    inner = env.put_object(ObjectType.TREE, encode_tree([TreeEntry("a", "f", len(DATA), _D)]))
    outer = env.put_object(ObjectType.TREE, encode_tree([TreeEntry("loop", "f", 10, inner)]))
    return ["checkout", env.pointer("d.cas", ptr_text(path="d", kind="dir",
                                                      xxh128=outer.hex()))], "d"


@case("recipe-names-itself")
def _recipe_cycle(env: Env) -> tuple[list[str], str]:
    from casstore.recipe import encode_recipe

    fake = bytes(range(16))
    env.put_object(ObjectType.RECIPE, encode_recipe([fake, _D], [16, len(DATA)]), oid=fake)
    return ["checkout", env.pointer("y.bin.cas", ptr_text(xxh128=fake.hex(),
                                                          size=16 + len(DATA)))], "y.bin"


# --- cache index files and packs ------------------------------------------------------------
def index_case(name: str, mutate: Callable[[Env, str, np.ndarray], tuple[list[str], np.ndarray]]
               ) -> None:
    """Rewrite the cache's index (crafted with the real encoder) and check out x.bin."""
    def build(env: Env) -> tuple[list[str], str]:
        pack, _ = env.pack()
        with Repo(env.root) as r:
            entries = r.cache.read_trailer(pack)
        packs, ents = mutate(env, pack, entries.copy())
        rows = np.zeros(len(ents), np.uint32)
        env.index_file().write_bytes(encode_index(packs, rows, ents))
        (env.root / "x.bin").unlink()
        return ["checkout", "x.bin.cas"], "x.bin"
    CASES[name] = build


def _pack_size(env: Env) -> int:
    return env.pack()[1].stat().st_size


index_case("index-offset-past-end",
           lambda env, p, e: ([p], _set(e, offset=_pack_size(env) + 100)))
index_case("index-length-past-end", lambda env, p, e: ([p], _set(e, length=_pack_size(env))))
index_case("index-offset-huge", lambda env, p, e: ([p], _set(e, offset=2 ** 63)))
index_case("index-offset-shifted", lambda env, p, e: ([p], _set(e, offset=9)))
index_case("index-unknown-codec", lambda env, p, e: ([p], _set(e, codec=7)))
index_case("index-unknown-type", lambda env, p, e: ([p], _set(e, type=9)))
index_case("index-missing-pack", lambda env, p, e: (["f" * 32], e))
# A decompression bomb by index: 4 GiB claimed for a small zstd object.
index_case("index-raw-length-huge", lambda env, p, e: ([p], _set(e, codec=1,
                                                                 raw_length=2 ** 32 - 1)))


def _dup(env: Env, pack: str, e: np.ndarray) -> tuple[list[str], np.ndarray]:
    bad = _set(e.copy(), offset=8, length=1)
    return [pack], np.concatenate([bad, e])  # the bad duplicate sorts first


index_case("index-duplicate-entries", _dup)


def _set(entries: np.ndarray, **cols: int) -> np.ndarray:
    for k, v in cols.items():
        entries[k] = v
    return entries


@case("index-not-arrow")
def _index_garbage(env: Env) -> tuple[list[str], str]:
    env.index_file().write_bytes(b"ARROW1\x00\x00" + os.urandom(300))
    (env.root / "x.bin").unlink()
    return ["checkout", "x.bin.cas"], "x.bin"


@case("pack-trailer-out-of-range")
def _pack_trailer(env: Env) -> tuple[list[str], str]:
    name, path = env.pack()
    raw = path.read_bytes()
    ents = np.zeros(1, ENTRY_DTYPE)
    ents["id"] = np.frombuffer(_D, "V16")
    ents["offset"], ents["length"] = 8, len(raw) * 4
    path.write_bytes(raw + encode_trailer(ents))
    return ["fsck"], name


@case("pack-truncated")
def _pack_truncated(env: Env) -> tuple[list[str], str]:
    name, path = env.pack()
    path.write_bytes(path.read_bytes()[:-20])
    return ["fsck"], name


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_input(name: str, tmp_path: Path, figures) -> None:
    env = make_env(tmp_path)
    args, named = CASES[name](env)
    before = snapshot(tmp_path, skip=("repo",))
    res = run_cas(env.root, *args, check=False)
    after = snapshot(tmp_path, skip=("repo",))
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode == 1, (res.returncode, res.stdout, res.stderr)
    errors = [ln for ln in res.stderr.splitlines() if ln.strip()]
    if args[0] == "fsck":
        # fsck lists each damaged pack or object on its own line, then a summary.
        assert errors and all(ln.startswith("damaged:") for ln in errors), res.stderr
        assert any(named in ln for ln in errors), res.stderr
    else:
        assert len(errors) == 1, res.stderr
        assert errors[0].startswith("cas: error: ") and named in errors[0], errors[0]
    assert after == before, "something outside the repository changed"
    assert not Path("/tmp/cas-hostile-abs").exists()
    assert not Path("/tmp/cas-hostile-tree").exists()
    figures["hostile inputs refused"] += 1


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40


def test_force_replaces_a_link_in_a_tracked_folder_never_its_target(tmp_path: Path) -> None:
    """With --force, a link standing where the tree has a folder is replaced by that
    folder; what the link pointed to is left untouched."""
    env = make_env(tmp_path)
    args, _ = CASES["dir-subfolder-is-link-out"](env)
    before = snapshot(tmp_path, skip=("repo",))
    res = run_cas(env.root, *args, "--force", check=False)
    assert res.returncode == 0, res.stderr
    assert snapshot(tmp_path, skip=("repo",)) == before
    sub = env.root / "d" / "sub"
    assert sub.is_dir() and not sub.is_symlink() and (sub / "victim.txt").read_bytes() == DATA
