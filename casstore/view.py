"""A read-only view of the tracked content of a repository: at a Git revision, or as the
pointers in the working tree say.

Paths are repository-relative and '/'-separated. A path names tracked data (a file or
folder with its own pointer), a file or folder inside a tracked folder (resolved through
the folder's tree), or a plain folder that holds tracked data somewhere below it.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import CasError, CorruptObjectError, PathError, PointerError
from .gitutil import pointer_blobs, read_blobs, resolve_rev
from .pointer import SUFFIX, Pointer, parse_pointer_text
from .store.objects import ObjectType
from .tree import Loader, TreeEntry, check_rel_path, decode_nodes, find, tree_version, walk

if TYPE_CHECKING:
    from .project import Project
    from .reader import ChunkSource
    from .sources import ObjectSource


@dataclass(frozen=True)
class Entry:
    """One path in a view: ``kind`` is "file" or "directory"."""

    path: str
    kind: str
    size: int
    digest: bytes | None  # file content digest, or tree digest of tracked folders
    pointer: str | None  # the pointer file tracking it (or the folder holding it)
    executable: bool = False

    def info(self) -> dict[str, object]:
        """The entry as an fsspec-style info dict."""
        d: dict[str, object] = {"name": self.path, "size": self.size, "type": self.kind}
        if self.digest is not None:
            d["xxh128"] = self.digest.hex()
        if self.pointer is not None:
            d["pointer"] = self.pointer
        return d


def normalize(path: str) -> str:
    """'/'-separated repository-relative form of ``path`` ('' is the root)."""
    p = posixpath.normpath(path.replace("\\", "/").strip("/")) if path.strip("/") else ""
    if p in (".", ""):
        return ""
    if p.startswith("../") or p == "..":
        raise PathError(f"{path} is outside the repository")
    return p


class TrackedView:
    """The tracked data of ``repo`` at ``rev`` (a Git revision) or, with ``rev=None``, as the
    working tree's pointer files describe it. Trees are read from ``source`` (default: the
    cache), which may fetch what the cache lacks (see ``casstore.sources``).

    ``TrackedView.fixed`` makes a view of pointers read earlier, with no repository: what
    the workers of a job reading straight from a remote see (``casstore.fs``)."""

    def __init__(self, repo: Project | None, rev: str | None = None, *,
                 source: ObjectSource | ChunkSource | None = None) -> None:
        self.repo = repo
        self.rev = rev
        self.source = source
        self.commit = resolve_rev(repo.root, rev) if rev is not None and repo is not None \
            else None
        self._pointers: dict[str, tuple[str, Pointer]] | None = None
        self._trees: dict[bytes, list[TreeEntry]] = {}
        self._raw: dict[bytes, bytes] = {}  # the last trees read (see _loader)

    @classmethod
    def fixed(cls, pointers: dict[str, tuple[str, Pointer]], source: ChunkSource, *,
              rev: str | None = None, commit: str | None = None) -> TrackedView:
        """A view of ``pointers`` ({data path: (pointer path, pointer)}, as ``pointers()``
        returns them) whose trees come from ``source``; ``rev``/``commit`` only name where
        the pointers were read, for messages."""
        view = cls(None, rev, source=source)
        view.commit = commit
        view._pointers = dict(pointers)
        return view

    # pointers -----------------------------------------------------------------------
    def pointers(self) -> dict[str, tuple[str, Pointer]]:
        """{data path: (pointer path, pointer)} for every pointer in the view."""
        if self._pointers is None:
            self._pointers = self._load_pointers()
        return self._pointers

    def _load_pointers(self) -> dict[str, tuple[str, Pointer]]:
        out: dict[str, tuple[str, Pointer]] = {}
        if self.commit is None:
            for p in self.repo.pointer_files():
                try:
                    ptr = self.repo.load_pointer(p)
                except PointerError:
                    continue  # listing must not fail on one broken pointer; find() reports it
                _put(out, self.repo.rel(p), ptr)
            return out
        blobs = pointer_blobs(self.repo.root, self.commit)
        texts = read_blobs(self.repo.root, blobs.values())
        for ptr_path, blob in blobs.items():
            try:
                ptr = parse_pointer_text(texts[blob].decode("utf-8"),
                                         f"{ptr_path} at {self.rev}")
            except (KeyError, UnicodeDecodeError, PointerError):
                continue
            _put(out, ptr_path, ptr)
        return out

    # trees --------------------------------------------------------------------------
    def _loader(self, shown: str) -> Loader:
        """Tree bytes by digest, fetched if missing; the last few are kept (a folder is one
        tree per subfolder, and lookups walk down from the top one)."""
        store = self.source if self.source is not None else self.repo.cache
        source = self.source
        memo = self._raw

        def load(tid: bytes) -> bytes:
            held = memo.get(tid)
            if held is not None:
                return held
            if source is not None and not source.has(tid):
                source.fetch([tid])
            loc = store.locate(tid)
            if loc is None:
                raise CasError(f"{shown}: its folder listing is not in the cache; run "
                               "'cas pull' or 'cas fetch' to download it")
            if loc.type != ObjectType.TREE:
                raise CorruptObjectError(f"{shown}: the pointer names a file, not a folder "
                                         "tree")
            raw = bytes(store.read(tid)[1])
            if len(memo) >= 64:
                memo.pop(next(iter(memo)))
            memo[tid] = raw
            return raw

        return load

    def tree(self, digest: bytes, shown: str) -> list[TreeEntry]:
        """Every file and empty folder of tracked folder ``shown`` (tree ``digest``),
        fetched if missing (held in memory: ``find`` and ``listdir`` read less)."""
        got = self._trees.get(digest)
        if got is not None:
            return got
        entries = list(walk(self._loader(shown), digest))
        self._trees[digest] = entries
        return entries

    # lookup -------------------------------------------------------------------------
    def find(self, path: str) -> Entry:
        """The entry at ``path``; PathError if nothing tracked is there."""
        rel = normalize(path)
        if rel == "":
            return Entry("", "directory", 0, None, None)
        if self.commit is None and self._pointers is None:
            found = self._find_on_disk(rel)
            if found is not None:
                return found
        ptrs = self.pointers()
        hit = ptrs.get(rel)
        if hit is not None:
            return _top_entry(rel, *hit)
        # Inside a tracked folder?
        parent = rel
        while "/" in parent:
            parent = parent.rsplit("/", 1)[0]
            hit = ptrs.get(parent)
            if hit is not None:
                ptr_path, ptr = hit
                if ptr.kind != "dir":
                    break
                return self._inside(parent, ptr_path, ptr, rel[len(parent) + 1:])
        # A plain folder holding tracked data?
        prefix = rel + "/"
        if any(k.startswith(prefix) for k in ptrs):
            return Entry(rel, "directory", 0, None, None)
        where = f" at {self.rev}" if self.rev else ""
        raise PathError(f"{rel} is not tracked{where} (no {rel}{SUFFIX} and no tracked folder "
                        "holding it); check 'cas ls'")

    def _find_on_disk(self, rel: str) -> Entry | None:
        """Working tree fast path: the pointer beside ``rel`` or beside one of its folders,
        without listing every pointer of the repository."""
        cur = rel
        while True:
            ptr_file = self.repo.root / (cur + SUFFIX)
            if ptr_file.is_file():
                ptr = self.repo.load_pointer(ptr_file)
                if posixpath.basename(cur) == ptr.path:
                    if cur == rel:
                        return _top_entry(rel, cur + SUFFIX, ptr)
                    if ptr.kind == "dir":
                        return self._inside(cur, cur + SUFFIX, ptr, rel[len(cur) + 1:])
                    return None
            if "/" not in cur:
                return None
            cur = cur.rsplit("/", 1)[0]

    def _inside(self, top: str, ptr_path: str, ptr: Pointer, sub: str) -> Entry:
        try:
            check_rel_path(sub)
        except ValueError:
            raise PathError(f"{top}/{sub} is not a valid path") from None
        where = f" at {self.rev}" if self.rev else ""
        try:
            found = find(self._loader(top), ptr.digest, sub, top)
        except PathError:
            raise PathError(f"{top}/{sub} is not in tracked folder {top}{where}") from None
        if found.kind == "file":
            e = found.entry
            assert e is not None
            return Entry(f"{top}/{sub}", "file", e.size, e.digest, ptr_path, e.executable)
        return Entry(f"{top}/{sub}", "directory", 0, None, ptr_path)

    def listdir(self, path: str) -> list[Entry]:
        """The entries directly inside folder ``path``, sorted by name."""
        entry = self.find(path)
        rel = entry.path
        if entry.kind != "directory":
            return [entry]
        ptrs = self.pointers()
        # Inside (or at the top of) a tracked folder: list its tree.
        top = _tracked_top(rel, ptrs)
        if top is not None:
            ptr_path, ptr = ptrs[top]
            sub = rel[len(top) + 1:] if rel != top else ""
            return self._folder_children(top, ptr_path, ptr, sub)
        prefix = rel + "/" if rel else ""
        children: dict[str, Entry] = {}
        for data, (ptr_path, ptr) in ptrs.items():
            if not data.startswith(prefix):
                continue
            name = data[len(prefix):].split("/", 1)[0]
            child = prefix + name
            if child == data:
                children[child] = _top_entry(data, ptr_path, ptr)
            else:
                children.setdefault(child, Entry(child, "directory", 0, None, None))
        return [children[k] for k in sorted(children)]

    def _folder_children(self, top: str, ptr_path: str, ptr: Pointer, sub: str
                         ) -> list[Entry]:
        """One folder of a tracked folder, from its own tree (only the trees on the way
        down are read); a folder recorded as one old-format tree is listed from all of it."""
        load = self._loader(top)
        digest: bytes | None = ptr.digest
        if sub:
            digest = find(load, ptr.digest, sub, top).tree
        raw = load(digest) if digest is not None else b""
        if digest is None or tree_version(raw) == 1:
            return _tree_children(top, ptr_path, self.tree(ptr.digest, top), sub)
        base = f"{top}/{sub}/" if sub else f"{top}/"
        out = [Entry(base + n.name, "directory", 0, None, ptr_path) if n.is_tree else
               Entry(base + n.name, "file", n.size, n.digest, ptr_path, n.kind == "x")
               for n in decode_nodes(raw)]
        return sorted(out, key=lambda e: e.path)


def _put(out: dict[str, tuple[str, Pointer]], ptr_path: str, ptr: Pointer) -> None:
    folder = posixpath.dirname(ptr_path)
    out[posixpath.join(folder, ptr.path) if folder else ptr.path] = (ptr_path, ptr)


def _top_entry(rel: str, ptr_path: str, ptr: Pointer) -> Entry:
    if ptr.kind == "dir":
        return Entry(rel, "directory", ptr.size, ptr.digest, ptr_path)
    return Entry(rel, "file", ptr.size, ptr.digest, ptr_path, ptr.executable)


def _tracked_top(rel: str, ptrs: dict[str, tuple[str, Pointer]]) -> str | None:
    cur = rel
    while cur:
        hit = ptrs.get(cur)
        if hit is not None and hit[1].kind == "dir":
            return cur
        cur = cur.rsplit("/", 1)[0] if "/" in cur else ""
    return None


def _tree_children(top: str, ptr_path: str, entries: list[TreeEntry], sub: str
                   ) -> list[Entry]:
    prefix = sub + "/" if sub else ""
    base = f"{top}/{prefix}"
    children: dict[str, Entry] = {}
    for e in entries:
        if not e.path.startswith(prefix):
            continue
        rest = e.path[len(prefix):]
        name, _, deeper = rest.partition("/")
        if deeper or e.kind == "d":
            children.setdefault(name, Entry(base + name, "directory", 0, None, ptr_path))
        else:
            children[name] = Entry(base + name, "file", e.size, e.digest, ptr_path,
                                   e.executable)
    return [children[k] for k in sorted(children)]
