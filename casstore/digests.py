"""Digests of what is in the working tree now, through the stat cache where possible.

``WorkTree`` builds a tracked folder's version 2 trees from disk depth-first, one folder at
a time: only the folders on the open path are held, so memory does not grow with the
number of files. Each folder's tree digest is remembered in the stat cache under a
fingerprint of its files' stat keys and its subfolders' digests: a folder nothing changed
in costs a listing and a stat per file, and its files are neither looked up nor read.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import xxhash

from .errors import CasError, CorruptObjectError, PathError
from .hashing import digest_file
from .ignore import IgnoreRules
from .pointer import SUFFIX
from .statcache import StatCache
from .store.objects import ObjectType
from .store.trees import tree_loader
from .tree import (
    Loader,
    Node,
    Summary,
    TreeEntry,
    build_tree,
    decode_nodes,
    decode_tree,
    nodes_digest,
    summarise,
    tree_version,
    walk,
)
from .workspace import HELPER_OK, Folder, FolderReader, ReadHelper

if TYPE_CHECKING:
    from .project import Project

StatRow = tuple[tuple[int, int, int, int], bytes, int]
# (stat-cache key, path on disk, stat, the stat cache's row or None) -> the file's digest
FileDigest = Callable[[str, str, os.stat_result, "StatRow | None"], bytes]
LOST = b"lost"  # a folder's recorded tree could not be read: no details below it
# A walk that has read this many files starts a ReadHelper (a second process, ~0.1 s of CPU
# to start) for the folders still ahead, and keeps up to HELPER_QUEUE of them asked.
HELPER_AFTER_FILES = 20_000
HELPER_QUEUE = 4


def _may_hold_refused(folder: Folder) -> bool:
    """Whether a folder may hold what 'cas add' refuses ('.git', a pointer): one test of
    all names together, where testing each name cost ~1 s of a re-add of a million files."""
    joined = "\0".join([n for n, _, _ in folder.files] + [n for n, _ in folder.dirs])
    joined = "\0" + joined.lower() + "\0"
    return "\0.git\0" in joined or SUFFIX + "\0" in joined


def _idle_core() -> bool:
    """Whether the machine has a core to spare for a ReadHelper (load average below the
    core count by one): on a busy machine a second process gets no more CPU time than
    the walk alone, and was measured slower (4.4 s against 5.3 s at a load of 4 on 2
    cores for a million files)."""
    try:
        return os.getloadavg()[0] <= (os.cpu_count() or 1) - 1
    except OSError:
        return False


def current_file_digest(repo: Project, path: Path, st: os.stat_result | None = None) -> bytes:
    st = st or path.stat()
    key = repo.rel(path)
    hit = repo.stat_cache.lookup(key, st)
    if hit is not None:
        return hit[0]
    digest = digest_file(path)
    # Chunk count is unknown without chunking; 0 means "not recorded" and add re-chunks
    # only if the cache lacks the content anyway.
    repo.stat_cache.record(key, st, digest, 0)
    return digest


def folder_reader(repo: Project, path: Path, *, follow_symlinks: bool = False,
                  warn: Callable[[str], None] | None = None) -> FolderReader:
    """Read a tracked folder the way 'cas add' reads it: ``.casignore`` applied, links
    skipped unless the folder was added with --follow-symlinks."""
    return FolderReader(path, repo.rel(path), rules=IgnoreRules.load(repo.root),
                        follow_symlinks=follow_symlinks, warn=warn)


def cached_digest(repo: Project) -> FileDigest:
    """Digest of a file from the stat cache, or by reading it (then recorded)."""
    cache = repo.stat_cache

    def digest(key: str, path: str, st: os.stat_result, row: StatRow | None) -> bytes:
        if row is not None and row[0] == StatCache._key(st):
            return row[1]
        d = digest_file(path)
        cache.record(key, st, d, 0)
        return d

    return digest


@dataclass
class _Frame:
    folder: Folder
    items: list[tuple[bytes, str, str, os.stat_result | None]]  # key, name, path, stat
    pos: int = 0
    files: list[Node] | None = None  # the files' lines, once computed
    subs: list[Node] = field(default_factory=list)
    then: bytes | None = None  # the recorded tree of this folder (details only)
    then_nodes: dict[str, Node] | None = None
    ahead: int = 0  # the items before this one were considered for the helper


class WorkTree:
    """A tracked folder's version 2 trees as the working tree has them now.

    ``file_digest`` gives each file's digest (default: stat cache, else read); ``add``
    passes one that stores the file. ``put`` receives each tree that was encoded;
    ``trust`` says whether a folder digest remembered in the stat cache may be used (add:
    only if the cache holds that tree). ``ordered`` files are digested in the order of
    their paths' bytes and each is handed to ``on_file`` (add --sha256 hashes them in that
    order); otherwise files are looked at only for folders whose fingerprint changed.
    ``adding`` refuses what 'cas add' must not store: a '.git' entry, or a pointer file
    (tracked data inside the folder).
    With ``then`` (a loader and the recorded tree's digest) the files added, removed and
    modified since are collected, relative to the folder, in ``added``/``removed``/
    ``modified``; ``known`` (every folder's summary from an earlier walk, by path) lets
    that walk skip the subfolders whose digest is the recorded one without reading them
    again. ``on_folder(rel, summary)`` hears every folder's digest, bytes and files.
    """

    def __init__(self, repo: Project, path: Path, *, follow_symlinks: bool = False,
                 warn: Callable[[str], None] | None = None,
                 file_digest: FileDigest | None = None,
                 put: Callable[[bytes, bytes], None] | None = None,
                 trust: Callable[[bytes], bool] | None = None,
                 ordered: bool = False, on_file: Callable[[TreeEntry], None] | None = None,
                 adding: bool = False,
                 then: tuple[Loader, bytes] | None = None,
                 known: dict[str, Summary] | None = None,
                 on_folder: Callable[[str, Summary], None] | None = None,
                 helper: bool = True) -> None:
        self.repo = repo
        self.path = path
        self.shown = repo.rel(path)
        self.reader = folder_reader(repo, path, follow_symlinks=follow_symlinks, warn=warn)
        self.file_digest = file_digest or cached_digest(repo)
        self.put = put
        self.trust = trust
        self.ordered = ordered
        self.on_file = on_file
        self.adding = adding
        self.then = then
        self.known = known
        self.on_folder = on_folder
        self.added: list[str] = []
        self.removed: list[str] = []
        self.modified: list[str] = []
        # A big walk reads every other folder in a helper process (two cores). Not when
        # following links (which of two links to one folder is read first decides which
        # is kept, so those are read in walk order), nor for ordered walks (each file is
        # digested as it is reached) or walks against a recorded tree (they read only the
        # folders that differ).
        self.can_help = HELPER_OK and helper and not follow_symlinks and not ordered \
            and then is None
        self.helper: ReadHelper | None = None
        self.files_read = 0
        self.turn = False

    def _read(self, path: str, rel: str) -> Folder:
        folder = self.helper.answer(path, rel) if self.helper is not None else None
        if folder is None:
            folder = self.reader.read(path, rel)
            self.files_read += len(folder.files)
        return folder

    def _ask_helper(self, stack: list[_Frame]) -> None:
        """Hand the helper every other folder the walk opens next (the deepest open
        folder's remaining subfolders first, then its parent's...), up to HELPER_QUEUE."""
        h = self.helper
        assert h is not None
        for f in reversed(stack):
            items, i = f.items, max(f.ahead, f.pos)
            while i < len(items) and len(h) < HELPER_QUEUE:
                _, name, path, st = items[i]
                i += 1
                if st is None:
                    self.turn = not self.turn
                    if self.turn:
                        h.ask(path, f"{f.folder.rel}/{name}" if f.folder.rel else name)
            f.ahead = i
            if len(h) >= HELPER_QUEUE:
                return

    def _open(self, path: str, rel: str, then: bytes | None) -> _Frame:
        folder = self._read(path, rel)
        if self.adding and _may_hold_refused(folder):
            for name in [n for n, _, _ in folder.files] + [n for n, _ in folder.dirs]:
                shown = f"{self.shown}/{rel}/{name}" if rel else f"{self.shown}/{name}"
                if name.lower() == ".git":
                    raise PathError(f"{shown} is inside a '.git' folder; casstore does not "
                                    "track Git repositories inside data (checkout would "
                                    "refuse to restore them): remove or move it")
            for name, _, _ in folder.files:
                # Checked here rather than by a walk of its own before the add (which cost
                # as much as reading a 100,000-file folder's stats).
                if name.endswith(SUFFIX) and name != SUFFIX:
                    shown = f"{self.shown}/{rel}/{name}" if rel else f"{self.shown}/{name}"
                    raise PathError(f"{self.shown} contains tracked data ({shown}); untrack "
                                    "it first (remove that pointer) or add a different "
                                    "folder")
        items: list[tuple[bytes, str, str, os.stat_result | None]] = \
            [(n.encode("utf-8", "surrogateescape") + b"/", n, p, None) for n, p in folder.dirs]
        if self.ordered:
            items += [(n.encode("utf-8", "surrogateescape"), n, p, st)
                      for n, p, st in folder.files]
            items.sort(key=lambda i: i[0])
        frame = _Frame(folder, items, then=then)
        if self.ordered:
            frame.files = []
        return frame

    def _key(self, rel: str, name: str) -> str:
        return f"{self.shown}/{rel}/{name}" if rel else f"{self.shown}/{name}"

    def _file_nodes(self, f: _Frame) -> list[Node]:
        if f.files is None:
            rel = f.folder.rel
            keys = [self._key(rel, n) for n, _, _ in f.folder.files]
            rows = self.repo.stat_cache.lookup_names(keys)
            f.files = [Node(n, "x" if st.st_mode & 0o100 else "f", st.st_size, 1,
                            self.file_digest(k, p, st, rows.get(k)))
                       for k, (n, p, st) in zip(keys, f.folder.files, strict=True)]
        return f.files

    def _child_then(self, f: _Frame, name: str) -> bytes | None:
        if self.then is None or f.then is None:
            return None
        if f.then == LOST:
            return LOST
        nodes = self._then_nodes(f)
        if nodes is None:
            return LOST
        n = nodes.get(name)
        return n.digest if n is not None and n.is_tree else None

    def _then_nodes(self, f: _Frame) -> dict[str, Node] | None:
        if f.then_nodes is None:
            assert self.then is not None and f.then is not None
            try:
                f.then_nodes = {n.name: n for n in decode_nodes(self.then[0](f.then))}
            except CasError:
                f.then = LOST
                return None
        return f.then_nodes

    def build(self) -> Summary:
        """Walk the folder; the top tree's digest, bytes and files."""
        try:
            return self._build()
        finally:
            if self.helper is not None:
                self.helper.close()
                self.helper = None

    def _build(self) -> Summary:
        top = self.then[1] if self.then is not None else None
        stack = [self._open(str(self.path), "", top)]
        while True:
            f = stack[-1]
            if self.can_help:
                if self.helper is None and self.files_read >= HELPER_AFTER_FILES:
                    if not _idle_core():
                        # Its work would only share our CPU time (and add ~15 % to it).
                        self.can_help = False
                        continue
                    self.helper = ReadHelper(self.path, self.shown, self.repo.root)
                if self.helper is not None and self.helper.alive \
                        and len(self.helper) < HELPER_QUEUE:
                    self._ask_helper(stack)
            if f.pos < len(f.items):
                key, name, path, st = f.items[f.pos]
                f.pos += 1
                rel = f"{f.folder.rel}/{name}" if f.folder.rel else name
                if st is None:
                    then = self._child_then(f, name)
                    seen = self.known.get(rel) if self.known is not None else None
                    if seen is not None and then is not None and seen.digest == then:
                        # Unchanged since the recorded tree, as an earlier walk found.
                        f.subs.append(Node(name, "t", seen.size, seen.files, seen.digest))
                        continue
                    stack.append(self._open(path, rel, then))
                    continue
                k = self._key(f.folder.rel, name)
                node = Node(name, "x" if st.st_mode & 0o100 else "f", st.st_size, 1,
                            self.file_digest(k, path, st, self.repo.stat_cache.lookup_names(
                                [k]).get(k)))
                assert f.files is not None
                f.files.append(node)
                if self.on_file is not None:
                    self.on_file(TreeEntry(rel, node.kind, node.size, node.digest))
                continue
            stack.pop()
            done = self._close(f)
            if self.on_folder is not None:
                self.on_folder(f.folder.rel, done)
            if not stack:
                return done
            name = f.folder.rel.rpartition("/")[2]
            stack[-1].subs.append(Node(name, "t", done.size, done.files, done.digest))

    @staticmethod
    def _fingerprint(f: _Frame) -> bytes:
        h = xxhash.xxh3_128(f.folder.fingerprint())
        for n in f.subs:
            h.update(f"{n.name}\0{n.size} {n.files} ".encode("utf-8", "surrogateescape"))
            h.update(n.digest)
        return h.digest()

    def _close(self, f: _Frame) -> Summary:
        fingerprint = self._fingerprint(f)
        where = f"{self.shown}/{f.folder.rel}" if f.folder.rel else self.shown
        row = None if self.ordered else self.repo.stat_cache.lookup_folder(where, fingerprint)
        if row is not None and (self.trust is None or self.trust(row[0])):
            done = Summary(*row)
        else:
            if f.folder.partial:
                # The helper gave only the folder's fingerprint: its files are read here,
                # and the digest is remembered under the fingerprint of this read.
                f.folder = self.reader.read(f.folder.path, f.folder.rel)
                fingerprint = self._fingerprint(f)
            nodes = self._file_nodes(f) + f.subs
            digest, data = nodes_digest(nodes)
            if self.put is not None:
                self.put(digest, data)
            done = Summary(digest, *summarise(nodes))
            # The fingerprint holds the stats of the listing: a file changed after it no
            # longer matches, so this digest is trusted only while nothing changed.
            self.repo.stat_cache.record_folder(where, fingerprint, done.digest, done.size,
                                               done.files)
        if self.then is not None and f.then != LOST and f.then != done.digest:
            self._details(f)
        return done

    def _details(self, f: _Frame) -> None:
        rel = f.folder.rel
        base = f"{rel}/" if rel else ""
        files = {n.name: n for n in self._file_nodes(f)}
        if f.then is None:
            self.added += [base + n for n in files]
            if not files and not f.subs:
                self.added.append(rel)
            return
        then = self._then_nodes(f)
        if then is None:
            return
        now_dirs = {n.name for n in f.subs}
        for name, n in files.items():
            old = then.get(name)
            if old is None or old.is_tree:
                self.added.append(base + name)
            elif (old.digest, old.kind) != (n.digest, n.kind):
                self.modified.append(base + name)
        for name, old in then.items():
            if not old.is_tree:
                if name not in files:
                    self.removed.append(base + name)
            elif name not in now_dirs:
                assert self.then is not None
                try:
                    gone = [f"{base}{name}/{e.path}" for e in walk(self.then[0], old.digest)]
                except CasError:
                    gone = [f"{base}{name}/"]  # its tree is not in the cache
                self.removed += gone or [base + name]


def recorded_tree(repo: Project, digest: bytes, shown: str) -> tuple[Loader, bytes]:
    """A loader of the cache's trees and the version 2 digest of the folder tree
    ``digest``: for a version 1 tree (written by casstore before trees of trees), its
    version 2 form is built in memory. CasError if the cache lacks it."""
    load = tree_loader(repo.cache, shown)
    raw = load(digest)
    if tree_version(raw) == 2:
        return load, digest
    trees: dict[bytes, bytes] = {}

    def put(tid: bytes, data: bytes) -> None:
        trees[tid] = data

    top = build_tree(decode_tree(raw), put)
    repo.stat_cache.record_v1(digest, top.digest, top.size, top.files)

    def load_built(tid: bytes) -> bytes:
        held = trees.get(tid)
        return held if held is not None else load(tid)

    return load_built, top.digest


def v2_digest(repo: Project, digest: bytes, shown: str) -> bytes | None:
    """The version 2 digest of the folder a pointer names (``digest`` itself unless the
    cache holds it as a version 1 tree); None when the cache lacks the tree."""
    loc = repo.cache.locate(digest)
    if loc is None or loc.type != ObjectType.TREE:
        return None
    known = repo.stat_cache.lookup_v1(digest)
    if known is not None:
        return known[0]
    try:
        head = bytes(repo.cache.read(digest)[1][:16])
    except CorruptObjectError:
        return None
    if tree_version(head) == 2:
        return digest
    return recorded_tree(repo, digest, shown)[1]


class DirNow:
    """A folder's tree digest now. Given the digest a pointer records (``recorded``),
    ``digest`` is that digest when the folder holds the same content, also when the
    pointer names a version 1 tree."""

    def __init__(self, repo: Project, path: Path, *, follow_symlinks: bool = False,
                 recorded: bytes | None = None) -> None:
        self._repo, self._path, self._follow = repo, path, follow_symlinks
        self.now = WorkTree(repo, path, follow_symlinks=follow_symlinks).build()
        self.digest = self.now.digest
        if recorded is not None and recorded != self.digest \
                and v2_digest(repo, recorded, repo.rel(path)) == self.digest:
            self.digest = recorded

    def entries(self) -> list[TreeEntry]:
        """Every file and empty folder (held in memory: for small folders)."""
        trees: dict[bytes, bytes] = {}
        top = WorkTree(self._repo, self._path, follow_symlinks=self._follow,
                       put=trees.__setitem__, trust=lambda _d: False, helper=False).build()
        return list(walk(trees.__getitem__, top.digest))
