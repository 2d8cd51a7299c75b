"""Trees: the canonical manifest of a tracked folder, one tree object per folder.

Version 2 (written since 2026-11; docs/format.md), canonical UTF-8 bytes whose XXH3-128 is
the folder's digest:
    cas-tree 2\n
    f <size> <digest> <name>\n                one line per file (x: executable file)
    t <size> <files> <digest> <name>\n        one line per subfolder: its tree's digest, and
                                              the bytes and files below it
Names are single path components. Lines are sorted by the name's UTF-8 bytes, a subfolder's
name compared as if it ended in '/' (Git's rule): a depth-first walk in this order visits
files in the order of their full paths' bytes, the order version 1 used. An empty folder is
a subfolder whose tree has no lines. A subfolder's size and file count let readers summarise
a folder from its top tree alone; every reader that opens a subtree checks them.

Version 1 (read everywhere, no longer written): one tree for the whole folder,
    cas-tree 1\n
    <kind> <size> <digest> <path>\n     one line per entry, sorted by path bytes
kind 'f', 'x' or 'd' (empty directory, size 0, digest '-'), paths relative and '/'-separated.

Readers go through ``walk`` (every file and empty folder below a tree, of either version),
``find`` (one sub-path) and ``subtree_nodes`` (one folder's lines), over a ``Loader`` that
returns a tree object's bytes by digest, so they hold only the trees on the open path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from .errors import CasError, CorruptObjectError, PathError
from .hashing import digest_bytes

HEADER = b"cas-tree 2\n"
HEADER_V1 = b"cas-tree 1\n"
KINDS = ("f", "x", "d")  # version 1 entry kinds
NODE_KINDS = ("f", "x", "t")
EMPTY_TREE = digest_bytes(HEADER)  # the tree of an empty folder
MAX_DEPTH = 4096  # folders below a tracked folder: deeper than any file system's PATH_MAX allows
_MAX_NUMBER = 20  # decimal digits of a size or count (< 2**64)

Loader = Callable[[bytes], bytes]  # tree digest -> its canonical bytes (raises CasError)


@dataclass(frozen=True, order=True, slots=True)  # slots: a large tree is many entries
class TreeEntry:
    """A file or empty folder, by its path relative to a tracked folder."""

    path: str
    kind: str  # f, x or d
    size: int
    digest: bytes | None  # None for empty directories

    @property
    def executable(self) -> bool:
        return self.kind == "x"


@dataclass(frozen=True, slots=True)
class Node:
    """One line of a version 2 tree: a file or a subfolder of one folder."""

    name: str
    kind: str  # f, x or t
    size: int  # bytes of the file, or of every file below the subfolder
    files: int  # 1 for a file, the files below a subfolder
    digest: bytes  # file digest, or the subfolder's tree digest

    @property
    def key(self) -> bytes:
        """The sort key: the name's bytes, a subfolder's followed by '/'."""
        return self.name.encode() + b"/" if self.kind == "t" else self.name.encode()

    @property
    def is_tree(self) -> bool:
        return self.kind == "t"


@dataclass(frozen=True, slots=True)
class Summary:
    """A folder's tree digest with the bytes and files below it."""

    digest: bytes
    size: int
    files: int


def check_rel_path(path: str) -> str:
    """Refuse paths that could escape the directory they are restored into."""
    if not path or path.startswith("/") or "\\" in path or "\x00" in path \
            or "\n" in path or "\r" in path:
        raise ValueError(f"unsafe path {path!r:.80}")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise ValueError(f"unsafe path {path!r:.80}")
        if part.lower() == ".git":
            # A restored .git folder is a repository whose config and hooks Git (and any
            # shell prompt calling it) would run: Git itself refuses such tree entries.
            raise ValueError(f"path {path!r:.80} has a '.git' component")
    return path


def check_name(name: str) -> str:
    """A version 2 entry name: one safe path component."""
    if "/" in name:
        raise ValueError(f"name {name!r:.80} has a '/'")
    return check_rel_path(name)


# version 2 ---------------------------------------------------------------------------

def encode_nodes(nodes: Iterable[Node]) -> bytes:
    """Canonical version 2 bytes of one folder's entries (sorted here)."""
    lines = [HEADER]
    for n in sorted(nodes, key=lambda n: n.key):
        if n.kind == "t":
            lines.append(f"t {n.size} {n.files} {n.digest.hex()} {n.name}\n".encode())
        else:
            lines.append(f"{n.kind} {n.size} {n.digest.hex()} {n.name}\n".encode())
    return b"".join(lines)


def nodes_digest(nodes: Iterable[Node]) -> tuple[bytes, bytes]:
    data = encode_nodes(nodes)
    return digest_bytes(data), data


def summarise(nodes: list[Node]) -> tuple[int, int]:
    """(bytes, files) below a folder with these entries."""
    return sum(n.size for n in nodes), sum(n.files for n in nodes)


def _number(text: str) -> int:
    if not text.isdigit() or len(text) > _MAX_NUMBER or text != str(int(text)):
        raise ValueError(f"bad number {text!r:.30}")
    return int(text)


def decode_nodes(data: bytes) -> list[Node]:
    """Parse version 2 tree bytes, rejecting anything unsafe, duplicated or out of order."""
    if not data.startswith(HEADER):
        raise CorruptObjectError("tree has no 'cas-tree 2' header")
    try:
        text = data[len(HEADER):].decode("utf-8")
    except UnicodeDecodeError:
        raise CorruptObjectError("tree is not UTF-8") from None
    if text and not text.endswith("\n"):
        raise CorruptObjectError("tree is truncated")
    out: list[Node] = []
    prev = b""
    names: set[str] = set()
    for line in text.split("\n")[:-1]:
        try:
            if line.startswith("t "):
                parts = line.split(" ", 4)
                if len(parts) != 5:
                    raise ValueError("too few fields")
                _, size_s, files_s, digest_s, name = parts
                files = _number(files_s)
            else:
                parts = line.split(" ", 3)
                if len(parts) != 4 or parts[0] not in ("f", "x"):
                    raise ValueError("unknown kind")
                _, size_s, digest_s, name = parts
                files = 1
            size = _number(size_s)
            digest = bytes.fromhex(digest_s)
            if len(digest) != 16 or digest.hex() != digest_s:
                raise ValueError("bad digest")
            check_name(name)
        except ValueError as exc:
            raise CorruptObjectError(f"tree line is invalid ({exc}): {line!r:.80}") from None
        node = Node(name, line[0], size, files, digest)
        key = node.key
        if key <= prev or name in names:
            raise CorruptObjectError("tree entries are duplicated or out of order")
        prev = key
        names.add(name)
        out.append(node)
    return out


def tree_version(data: bytes) -> int:
    if data.startswith(HEADER):
        return 2
    if data.startswith(HEADER_V1):
        return 1
    raise CorruptObjectError("tree has no 'cas-tree' header of a known version; a newer "
                             "casstore wrote it: upgrade casstore")


def check_tree(data: bytes) -> None:
    """Parse a tree of either version (for verification): CorruptObjectError if unsound."""
    if tree_version(data) == 2:
        decode_nodes(data)
    else:
        decode_tree(data)


# version 1 ---------------------------------------------------------------------------

def encode_tree(entries: list[TreeEntry]) -> bytes:
    """Version 1 bytes of a whole folder (no longer written by casstore: kept to derive
    the version 2 form of old folders and to build old trees in tests)."""
    lines = [HEADER_V1]
    for e in sorted(entries, key=lambda e: e.path.encode()):
        digest = e.digest.hex() if e.digest is not None else "-"
        lines.append(f"{e.kind} {e.size} {digest} {e.path}\n".encode())
    return b"".join(lines)


def tree_digest(entries: list[TreeEntry]) -> tuple[bytes, bytes]:
    """Id and bytes of a version 1 tree (see ``encode_tree``)."""
    data = encode_tree(entries)
    return digest_bytes(data), data


def decode_tree(data: bytes) -> list[TreeEntry]:
    """Parse version 1 tree bytes, rejecting anything unsafe or out of order."""
    if not data.startswith(HEADER_V1):
        raise CorruptObjectError("tree has no 'cas-tree 1' header")
    out: list[TreeEntry] = []
    prev = b""
    try:
        text = data[len(HEADER_V1):].decode("utf-8")
    except UnicodeDecodeError:
        raise CorruptObjectError("tree is not UTF-8") from None
    if text and not text.endswith("\n"):
        raise CorruptObjectError("tree is truncated")
    seen_dirs: set[str] = set()
    for line in text.splitlines():
        parts = line.split(" ", 3)
        if len(parts) != 4 or parts[0] not in KINDS:
            raise CorruptObjectError(f"tree line is malformed: {line!r:.80}")
        kind, size_s, digest_s, path = parts
        try:
            check_rel_path(path)
            size = int(size_s)
            if size < 0 or size_s != str(size):
                raise ValueError("bad size")
            digest = None if kind == "d" else bytes.fromhex(digest_s)
            if digest is not None and len(digest) != 16:
                raise ValueError("bad digest")
            if kind == "d" and (digest_s != "-" or size != 0):
                raise ValueError("bad directory entry")
        except ValueError as exc:
            raise CorruptObjectError(f"tree line is invalid ({exc}): {line!r:.80}") from None
        key = path.encode()
        if key <= prev:
            raise CorruptObjectError("tree entries are duplicated or out of order")
        prev = key
        # A file may not also be a directory prefix of another entry.
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        while parent:
            seen_dirs.add(parent)
            parent = parent.rsplit("/", 1)[0] if "/" in parent else ""
        out.append(TreeEntry(path, kind, size, digest))
    for e in out:
        if e.path in seen_dirs and e.kind != "d":
            raise CorruptObjectError(f"tree uses {e.path!r} as both file and folder")
        if e.kind == "d" and e.path in seen_dirs:
            raise CorruptObjectError(f"tree lists non-empty folder {e.path!r} as empty")
    return out


# building ----------------------------------------------------------------------------

class TreeBuilder:
    """Version 2 trees from files and empty folders given in the order of their full
    paths' bytes (the order ``walk`` yields): each folder's tree is encoded and handed to
    ``put(digest, bytes)`` as soon as the input has left it, so only the open path's
    folders are held."""

    def __init__(self, put: Callable[[bytes, bytes], None]) -> None:
        self._put = put
        self._stack: list[tuple[str, list[Node]]] = [("", [])]
        self._prev = b""
        self._closed: Summary | None = None

    def add(self, e: TreeEntry) -> None:
        if self._closed is not None:
            raise ValueError("tree already finished")
        key = e.path.encode()
        if key <= self._prev:
            raise ValueError(f"tree entries out of order at {e.path!r:.80}")
        self._prev = key
        parent, _, name = e.path.rpartition("/")
        self._enter(parent)
        if e.kind == "d":
            self._put(EMPTY_TREE, HEADER)
            self._stack[-1][1].append(Node(name, "t", 0, 0, EMPTY_TREE))
        else:
            assert e.digest is not None
            self._stack[-1][1].append(Node(name, e.kind, e.size, 1, e.digest))

    def _enter(self, folder: str) -> None:
        while True:
            top = self._stack[-1][0]
            if top == folder or folder.startswith(top + "/") or top == "":
                break
            self._close()
        top = self._stack[-1][0]
        while top != folder:
            rest = folder[len(top) + 1:] if top else folder
            name = rest.split("/", 1)[0]
            top = f"{top}/{name}" if top else name
            self._stack.append((top, []))

    def _close(self) -> None:
        path, nodes = self._stack.pop()
        digest, data = nodes_digest(nodes)
        self._put(digest, data)
        size, files = summarise(nodes)
        self._stack[-1][1].append(Node(path.rpartition("/")[2], "t", size, files, digest))

    def finish(self) -> Summary:
        if self._closed is None:
            while len(self._stack) > 1:
                self._close()
            nodes = self._stack[0][1]
            digest, data = nodes_digest(nodes)
            self._put(digest, data)
            size, files = summarise(nodes)
            self._closed = Summary(digest, size, files)
        return self._closed


def build_tree(entries: Iterable[TreeEntry], put: Callable[[bytes, bytes], None]) -> Summary:
    """Version 2 trees of a folder from its flat entries (any order)."""
    b = TreeBuilder(put)
    for e in sorted(entries, key=lambda e: e.path.encode()):
        b.add(e)
    return b.finish()


def v2_summary_of_v1(data: bytes) -> Summary:
    """The digest, size and file count the same folder has in version 2: an old pointer
    names the same content as a new one exactly when this digest is the new one's."""
    return build_tree(decode_tree(data), lambda _d, _b: None)


# reading -----------------------------------------------------------------------------

def _load_v2(load: Loader, digest: bytes, where: str, expect: Node | None = None
             ) -> list[Node]:
    data = load(digest)
    if not data.startswith(HEADER):
        raise CorruptObjectError(f"{where}: subtree {digest.hex()} is not a version 2 tree")
    nodes = decode_nodes(data)
    if expect is not None and summarise(nodes) != (expect.size, expect.files):
        # Checked on every descent, so the top tree's totals bound the whole walk (a tree
        # naming one subtree many times cannot claim to be small).
        raise CorruptObjectError(f"{where}: subtree {digest.hex()} does not hold the "
                                 "bytes and files its parent lists")
    return nodes


def subtree_nodes(load: Loader, digest: bytes, where: str = "tree",
                  expect: Node | None = None) -> list[Node]:
    """The entries of one version 2 folder (``expect``: its line in the parent, checked)."""
    return _load_v2(load, digest, where, expect)


def walk(load: Loader, digest: bytes, under: str = "") -> Iterator[TreeEntry]:
    """Every file and empty folder below tree ``digest`` (either version), paths relative
    to it, in the order of the paths' bytes; ``under`` limits the walk to one sub-path (a
    file or a folder). Only the trees on the open path are held."""
    data = load(digest)
    if tree_version(data) == 1:
        entries = decode_tree(data)
        if not under:
            yield from entries
            return
        prefix = under + "/"
        yield from (e for e in entries if e.path == under or e.path.startswith(prefix))
        return
    nodes = decode_nodes(data)
    base = ""
    if under:
        check_rel_path(under)
        parts = under.split("/")
        for i, name in enumerate(parts):
            hit = next((n for n in nodes if n.name == name), None)
            if hit is None:
                return
            if not hit.is_tree:
                if i == len(parts) - 1:
                    yield TreeEntry(under, hit.kind, hit.size, hit.digest)
                return
            nodes = _load_v2(load, hit.digest, under, hit)
        base = under
        if not nodes:
            yield TreeEntry(under, "d", 0, None)
            return
    yield from _walk_nodes(load, nodes, base)


def _walk_nodes(load: Loader, nodes: list[Node], base: str) -> Iterator[TreeEntry]:
    """``walk`` below one folder whose lines are ``nodes`` (at path ``base``)."""
    stack: list[tuple[str, Iterator[Node]]] = [(base, iter(nodes))]
    while stack:
        folder, it = stack[-1]
        n = next(it, None)
        if n is None:
            stack.pop()
            continue
        path = f"{folder}/{n.name}" if folder else n.name
        if not n.is_tree:
            yield TreeEntry(path, n.kind, n.size, n.digest)
            continue
        if len(stack) >= MAX_DEPTH:
            raise CorruptObjectError(f"tree is nested deeper than {MAX_DEPTH} folders")
        inner = _load_v2(load, n.digest, path, n)
        if not inner:
            yield TreeEntry(path, "d", 0, None)
            continue
        stack.append((path, iter(inner)))


@dataclass(frozen=True, slots=True)
class Found:
    """What a sub-path of a tracked folder names.

    ``kind`` is "file" (``entry`` set) or "dir"; a folder of a version 2 tree has its own
    ``tree`` digest, a folder of a version 1 tree has none (``tree`` is None: its files are
    those ``walk(load, top, under=path)`` yields)."""

    path: str
    kind: str
    size: int
    files: int
    tree: bytes | None = None
    entry: TreeEntry | None = None


def find(load: Loader, digest: bytes, sub: str, shown: str = "") -> Found:
    """The file or folder at ``sub`` (relative, '/'-separated) below tree ``digest``;
    PathError when the tree has nothing there."""
    try:
        check_rel_path(sub)
    except ValueError:
        raise PathError(f"{shown}/{sub} is not a valid path") from None
    missing = PathError(f"{shown}/{sub} is not in tracked folder {shown}")
    data = load(digest)
    if tree_version(data) == 1:
        size = files = 0
        folder = False
        prefix = sub + "/"
        for e in decode_tree(data):
            if e.path == sub:
                if e.kind == "d":
                    return Found(sub, "dir", 0, 0)
                return Found(sub, "file", e.size, 1, entry=e)
            if e.path.startswith(prefix):
                folder = True
                if e.kind != "d":
                    size += e.size
                    files += 1
        if not folder:
            raise missing
        return Found(sub, "dir", size, files)
    nodes = decode_nodes(data)
    parts = sub.split("/")
    for i, name in enumerate(parts):
        hit = next((n for n in nodes if n.name == name), None)
        if hit is None:
            raise missing
        if not hit.is_tree:
            if i != len(parts) - 1:
                raise missing
            return Found(sub, "file", hit.size, 1,
                         entry=TreeEntry(sub, hit.kind, hit.size, hit.digest))
        if i == len(parts) - 1:
            return Found(sub, "dir", hit.size, hit.files, tree=hit.digest)
        nodes = _load_v2(load, hit.digest, f"{shown}/{sub}", hit)
    raise missing  # unreachable: ``parts`` is never empty


def tree_objects(load: Loader, digest: bytes, skip: Callable[[bytes], bool] | None = None,
                 lacks: Callable[[bytes], None] | None = None
                 ) -> Iterator[tuple[bytes, str, int]]:
    """(digest, kind, size) of every object below tree ``digest``, each tree once it has
    been read (the top one first): kind 't' for trees, 'f' for files. Subtrees ``skip``
    accepts are not opened (a caller that has them already). A subtree that cannot be read
    is handed to ``lacks`` and left out (without ``lacks``, its error is raised)."""
    data = load(digest)
    yield digest, "t", 0
    if tree_version(data) == 1:
        for e in decode_tree(data):
            if e.digest is not None:
                yield e.digest, "f", e.size
        return
    stack: list[tuple[Iterator[Node], int]] = [(iter(decode_nodes(data)), 1)]
    while stack:
        it, depth = stack[-1]
        n = next(it, None)
        if n is None:
            stack.pop()
            continue
        if not n.is_tree:
            yield n.digest, "f", n.size
            continue
        if skip is not None and skip(n.digest):
            continue
        if depth >= MAX_DEPTH:
            raise CorruptObjectError(f"tree is nested deeper than {MAX_DEPTH} folders")
        try:
            inner = _load_v2(load, n.digest, "tree", n)
        except CasError:
            if lacks is None:
                raise
            lacks(n.digest)
            continue
        yield n.digest, "t", n.size
        stack.append((iter(inner), depth + 1))


def diff_trees(load: Loader, old: bytes, new: bytes
               ) -> Iterator[tuple[str, TreeEntry | None, TreeEntry | None]]:
    """(path, old entry, new entry) of every file or empty folder that differs between two
    trees (either version; None on the side that lacks it). When both are version 2, a
    subfolder whose digest is the same on both sides is not opened: a one-file change in a
    million-file folder reads the trees on its path."""
    if old == new:
        return
    a, b = load(old), load(new)
    if tree_version(a) != 2 or tree_version(b) != 2:
        yield from _merge_walks(walk(load, old), walk(load, new))
        return
    todo: list[tuple[str, list[Node], list[Node]]] = [("", decode_nodes(a), decode_nodes(b))]
    while todo:
        base, na, nb = todo.pop()
        left = {n.name: n for n in na}
        right = {n.name: n for n in nb}
        for name in sorted(left.keys() | right.keys()):
            x, y = left.get(name), right.get(name)
            path = base + name
            if x is not None and y is not None and x.is_tree and y.is_tree:
                if x.digest != y.digest:
                    if len(path.split("/")) >= MAX_DEPTH:
                        raise CorruptObjectError(f"tree is nested deeper than {MAX_DEPTH} "
                                                 "folders")
                    todo.append((path + "/", _load_v2(load, x.digest, path, x),
                                 _load_v2(load, y.digest, path, y)))
                continue
            if x is not None and y is not None and not x.is_tree and not y.is_tree:
                if (x.digest, x.kind) != (y.digest, y.kind):
                    yield (path, TreeEntry(path, x.kind, x.size, x.digest),
                           TreeEntry(path, y.kind, y.size, y.digest))
                continue
            if x is not None:
                if x.is_tree:
                    yield from ((e.path, e, None) for e in _walk_below(load, x, path))
                else:
                    yield path, TreeEntry(path, x.kind, x.size, x.digest), None
            if y is not None:
                if y.is_tree:
                    yield from ((e.path, None, e) for e in _walk_below(load, y, path))
                else:
                    yield path, None, TreeEntry(path, y.kind, y.size, y.digest)


def _walk_below(load: Loader, line: Node, path: str) -> Iterator[TreeEntry]:
    inner = _load_v2(load, line.digest, path, line)
    if not inner:
        yield TreeEntry(path, "d", 0, None)
        return
    yield from _walk_nodes(load, inner, path)


def _merge_walks(a: Iterator[TreeEntry], b: Iterator[TreeEntry]
                 ) -> Iterator[tuple[str, TreeEntry | None, TreeEntry | None]]:
    """Merge-join of two walks (each in path byte order)."""
    x, y = next(a, None), next(b, None)
    while x is not None or y is not None:
        kx = x.path.encode() if x is not None else None
        ky = y.path.encode() if y is not None else None
        if y is None or (x is not None and kx is not None and ky is not None and kx < ky):
            assert x is not None
            yield x.path, x, None
            x = next(a, None)
        elif x is None or (kx is not None and ky is not None and ky < kx):
            yield y.path, None, y
            y = next(b, None)
        else:
            if (x.kind, x.digest) != (y.kind, y.digest):
                yield x.path, x, y
            x, y = next(a, None), next(b, None)
