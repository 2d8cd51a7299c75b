"""cas checkout: make the working tree match the pointers, from the cache.

A workspace file is only replaced when its current content is itself in the cache (so
nothing is lost) or with --force. Files are rebuilt under a temporary name, verified
chunk by chunk and as a whole, and renamed into place.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..digests import (
    WorkTree,
    cached_digest,
    current_file_digest,
    folder_reader,
    recorded_tree,
)
from ..errors import CasError, CorruptObjectError, ObjectMissingError, PathError
from ..files import restore_file
from ..ignore import IgnoreRules
from ..pointer import Pointer, data_path_for
from ..results import CheckoutResult
from ..store.objects import ObjectType
from ..tree import Loader, Node, TreeEntry, find, subtree_nodes, walk
from .targets import resolve_targets

if TYPE_CHECKING:
    from ..project import Project


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class _Sha256Writer:
    """Passes writes through while computing SHA-256 for pointers that record one."""

    def __init__(self, f: object) -> None:
        self.f = f
        self.h = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.h.update(data)
        return self.f.write(data)  # type: ignore[attr-defined,no-any-return]


def write_file(repo: Project, dest: Path, digest: bytes, size: int, *, executable: bool,
               sha256: str | None = None, advance: object = None, fresh: bool = False,
               key: str | None = None, private: bool = False) -> None:
    """Rebuild one file at ``dest`` atomically, verified against digest (and sha256).

    ``fresh`` says the caller knows ``dest`` is absent and its folder exists, which saves
    three system calls per file when checking out folders of many small files.
    """
    if not fresh:
        makedirs(dest.parent)
    tmp, f = repo.work_tmp.open(dest)
    try:
        with f:
            out = _Sha256Writer(f) if sha256 else f
            restore_file(repo.cache, digest, size, out,  # type: ignore[arg-type]
                         advance=advance if callable(advance) else None)
        if sha256 and out.h.hexdigest() != sha256:  # type: ignore[union-attr]
            raise CorruptObjectError(
                f"{repo.rel(dest)}: content does not match the pointer's sha256; the pointer "
                "or the cache has been tampered with")
        if private:
            # Set before the rename: the content is never visible with wider permissions.
            os.chmod(tmp, 0o700 if executable else 0o600)
        elif executable:
            os.chmod(tmp, 0o777 & ~_umask())
        if not fresh and dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)  # a file or link is swapped atomically by os.replace
        repo.work_tmp.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # Stat after the rename: renaming changes the inode's ctime, which the stat cache keys on.
    repo.stat_cache.record(key or repo.rel(dest), os.stat(dest), digest, 0)


def makedirs(path: Path) -> None:
    """``mkdir -p`` without recursion: Path.mkdir(parents=True) recurses once per missing
    level, and a tracked tree 1,200 folders deep hit Python's recursion limit."""
    missing: list[Path] = []
    p = path
    while not p.is_dir():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        d.mkdir(exist_ok=True)


def _safe_to_replace(repo: Project, digest: bytes | None, force: bool) -> bool:
    return force or digest is None or repo.cache.has(digest)


def checkout(repo: Project, targets: Sequence[str | os.PathLike[str]] | None = None, *,
             force: bool = False) -> CheckoutResult:
    res = CheckoutResult()
    # Partial files of a killed checkout (possibly gigabytes) are removed at the next one.
    repo.work_tmp.remove_stale()
    with repo.cache.lock(shared=True):
        try:
            for t in resolve_targets(repo, targets):
                shown = repo.rel(t.pointer)
                try:
                    ptr = repo.load_pointer(t.pointer)
                    data = data_path_for(t.pointer, ptr)
                    shown = repo.rel(data / t.sub if t.sub else data)
                    if t.sub and ptr.kind != "dir":
                        raise PathError(f"{repo.rel(data)} is a tracked file, not a folder")
                    if ptr.kind == "file":
                        _checkout_file(repo, ptr, data, force, res)
                    else:
                        _checkout_dir(repo, ptr, data, force, res, t.sub)
                except CasError as exc:
                    res.failed.append(_naming(shown, str(exc)))
        finally:
            repo.stat_cache.flush()
    return res


def _naming(shown: str, msg: str) -> str:
    """Errors from deep inside (a damaged chunk, an unreadable index) name the tracked path."""
    return msg if shown in msg else f"{shown}: {msg}"


def _missing_msg(shown: str) -> str:
    return (f"{shown}: its data is not in the cache; run 'cas pull' (or 'cas fetch') to "
            "download it")


def _needs_writing(repo: Project, dest: Path, digest: bytes, *, executable: bool,
                   private: bool, force: bool, added_as: str, res: CheckoutResult) -> bool:
    """Whether a tracked file must be written at ``dest``: not when it is already there
    (its mode is fixed and it is reported unchanged), nor when a link, a folder or changes
    the cache does not hold stand there without --force (reported as failed; ``added_as``
    is what 'cas add' keeps them under)."""
    shown = repo.rel(dest)
    if dest.is_symlink() or dest.is_dir():
        if not force:
            res.failed.append(f"{shown} is a {'link' if dest.is_symlink() else 'folder'} "
                              "where a file is tracked; move it away or use --force")
            return False
    elif dest.is_file():
        cur = current_file_digest(repo, dest)
        if cur == digest:
            _fix_mode(dest, executable, private=private)
            res.unchanged.append(shown)
            return False
        if not _safe_to_replace(repo, cur, force):
            res.failed.append(f"{shown} has changes that are not in the cache; 'cas add "
                              f"{added_as}' to keep them, or 'cas checkout --force {shown}' "
                              "to discard them")
            return False
    return True


def _checkout_file(repo: Project, ptr: Pointer, data: Path, force: bool,
                   res: CheckoutResult) -> None:
    shown = repo.rel(data)
    if not _needs_writing(repo, data, ptr.digest, executable=ptr.executable,
                          private=ptr.mode is not None, force=force, added_as=shown, res=res):
        return
    if not repo.cache.has(ptr.digest):
        res.failed.append(_missing_msg(shown))
        return
    with repo.reporter.progress(f"checking out {shown}", ptr.size) as bar:
        write_file(repo, data, ptr.digest, ptr.size, executable=ptr.executable,
                   sha256=ptr.sha256, advance=bar.advance, private=ptr.mode is not None)
    res.restored.append(shown)
    res.bytes_written += ptr.size


def _fix_mode(path: Path, executable: bool, *, private: bool = False) -> None:
    mode = old = path.stat().st_mode
    if executable and not mode & 0o100:
        mode |= 0o111 & ~_umask()
    elif not executable and mode & 0o111:
        mode &= ~0o111
    if private:
        # Only ever narrowed: a file the owner made private locally is not widened.
        mode &= ~0o077
    if mode != old:
        os.chmod(path, mode)


class _HashSink:
    """A write-only file that only computes SHA-256."""

    def __init__(self) -> None:
        self.h = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.h.update(data)
        return len(data)


def tree_sha256(repo: Project, tree: Iterable[TreeEntry]) -> str:
    """A folder's SHA-256 as 'cas add --sha256' records it (over each file's SHA-256, in
    path order), computed from the cache's verified content."""
    h = hashlib.sha256()
    for e in sorted(tree, key=lambda e: e.path.encode()):
        if e.digest is None:
            continue
        sink = _HashSink()
        restore_file(repo.cache, e.digest, e.size, sink)  # type: ignore[arg-type]
        h.update(f"{e.path}\0{sink.h.hexdigest()}\n".encode())
    return h.hexdigest()


def _recorded(repo: Project, ptr: Pointer, shown: str) -> tuple[Loader, bytes]:
    loc = repo.cache.locate(ptr.digest)
    if loc is None:
        raise ObjectMissingError(_missing_msg(shown))
    if loc.type != ObjectType.TREE:
        raise CorruptObjectError(f"{shown}: the pointer names a file, not a folder tree")
    try:
        return recorded_tree(repo, ptr.digest, shown)
    except CorruptObjectError as exc:
        raise CorruptObjectError(_naming(shown, str(exc))) from None


def _checkout_dir(repo: Project, ptr: Pointer, data: Path, force: bool,
                  res: CheckoutResult, sub: str = "") -> None:
    """Make folder ``data`` (or its part ``sub``) match the pointer's tree, one folder at a
    time: folders whose digest already matches are skipped whole."""
    shown = repo.rel(data)
    load, top = _recorded(repo, ptr, shown)
    want, line = top, None
    if sub:
        found = find(load, top, sub, shown)
        if found.kind == "file":
            assert found.entry is not None
            _checkout_part_file(repo, data, found.entry, force, res)
            return
        assert found.tree is not None
        want = found.tree
        line = Node(sub.rpartition("/")[2], "t", found.size, found.files, found.tree)
    if data.is_symlink() or (data.exists() and not data.is_dir()):
        if not force:
            res.failed.append(f"{shown} is not a folder but a folder is tracked there; move "
                              "it away or use --force")
            return
        data.unlink()
    part = data / sub if sub else data
    linked = _LinkGuard(repo, data, force, res)
    if sub and not linked.clear(part.parent):
        return
    current: dict[str, bytes] = {}
    if part.is_dir() and not part.is_symlink():
        now = WorkTree(repo, part, follow_symlinks=ptr.follow_symlinks,
                       on_folder=lambda rel, done: current.__setitem__(rel, done.digest)
                       ).build()
        if now.digest == want:
            res.unchanged.append(f"{repo.rel(part)}/")
            return
    if ptr.sha256:
        # Verified before anything is written or removed, so a refused folder stays as it
        # was (the value covers the whole folder, so all of it must be in the cache).
        if tree_sha256(repo, walk(load, top)) != ptr.sha256:
            raise CorruptObjectError(
                f"{shown}: content does not match the pointer's sha256; the pointer or the "
                "cache has been tampered with")
    prefix = f"{sub}/" if sub else ""
    current = {prefix + k if k else sub: v for k, v in current.items()}
    merge = _FolderMerge(repo, ptr, data, force, res, load, current, linked)
    with repo.reporter.progress(f"checking out {repo.rel(part)}/",
                                line.size if line is not None else ptr.size) as bar:
        merge.advance = bar.advance
        merge.run(sub, want, line)


def _checkout_part_file(repo: Project, data: Path, e: TreeEntry, force: bool,
                        res: CheckoutResult) -> None:
    """``cas checkout data/f.bin``: one file of a tracked folder."""
    dest = data / e.path
    shown = repo.rel(dest)
    assert e.digest is not None
    if not _LinkGuard(repo, data, force, res).clear(dest.parent):
        return
    if not _needs_writing(repo, dest, e.digest, executable=e.executable, private=False,
                          force=force, added_as=repo.rel(data), res=res):
        return
    if not repo.cache.has(e.digest):
        res.failed.append(_missing_msg(shown))
        return
    write_file(repo, dest, e.digest, e.size, executable=e.executable)
    res.restored.append(shown)
    res.bytes_written += e.size


class _FolderMerge:
    """Compares each folder of the tree with the same folder on disk and writes, replaces
    or removes what differs; a workspace file is replaced or removed only when its content
    is in the cache (or with --force)."""

    def __init__(self, repo: Project, ptr: Pointer, data: Path, force: bool,
                 res: CheckoutResult, load: Loader, current: dict[str, bytes],
                 linked: _LinkGuard) -> None:
        self.repo = repo
        self.data = data
        self.shown = repo.rel(data)
        self.force = force
        self.res = res
        self.load = load
        self.current = current
        self.linked = linked
        self.reader = folder_reader(repo, data, follow_symlinks=ptr.follow_symlinks)
        self.rules = IgnoreRules.load(repo.root)
        self.digest = cached_digest(repo)
        self.advance: Callable[[int], None] = lambda n: None

    def _name(self, rel: str) -> str:
        return f"{self.shown}/{rel}" if rel else self.shown

    def _digest(self, rel: str, path: str, st: os.stat_result) -> bytes:
        key = self._name(rel)
        return self.digest(key, path, st, self.repo.stat_cache.lookup_names([key]).get(key))

    def run(self, rel: str, want: bytes, line: Node | None) -> None:
        todo: list[tuple[str, bytes, Node | None]] = [(rel, want, line)]
        while todo:
            rel, want, line = todo.pop()
            try:
                nodes = subtree_nodes(self.load, want, self._name(rel), line)
            except CasError as exc:
                self.res.failed.append(_naming(self._name(rel), str(exc)))
                continue
            todo.extend(reversed(self._folder(rel, nodes)))

    def _folder(self, rel: str, nodes: list[Node]) -> list[tuple[str, bytes, Node]]:
        """Bring one folder in line with ``nodes``; returns the subfolders to visit."""
        dest = self.data / rel if rel else self.data
        base = f"{rel}/" if rel else ""
        if not self.linked.clear(dest):
            return []
        listing = self.reader.read(str(dest), rel) if dest.is_dir() else None
        if listing is None:
            try:
                makedirs(dest)
            except OSError as exc:  # e.g. a kept, untracked file stands where a folder goes
                self.res.failed.append(f"{self._name(rel)}: cannot create this folder "
                                       f"({exc.strerror}); move what is there away")
                return []
        files = {n: (p, st) for n, p, st in listing.files} if listing else {}
        dirs = {n: p for n, p in listing.dirs} if listing else {}
        wanted = {n.name: n for n in nodes}
        keys = [self._name(base + n) for n in files if n in wanted]
        rows = self.repo.stat_cache.lookup_names(keys) if keys else {}
        cur: dict[str, bytes] = {}

        def now(name: str) -> bytes:
            if name not in cur:
                p, st = files[name]
                key = self._name(base + name)
                cur[name] = self.digest(key, p, st, rows.get(key))
            return cur[name]

        # Remove what the tree does not have first, if it is recoverable.
        for name in files:
            w = wanted.get(name)
            if w is None or w.is_tree:
                if not self._remove_file(base + name, now(name)):
                    wanted.pop(name, None)  # kept: nothing can be written there
        for name in dirs:
            w = wanted.get(name)
            if (w is None or not w.is_tree) and not self._remove_tree(base + name) \
                    and w is not None:
                wanted.pop(name)
                self.res.failed.append(f"{self._name(base + name)}: a folder with files not in "
                                       "the cache stands where a file is tracked")
        visit: list[tuple[str, bytes, Node]] = []
        for name, n in wanted.items():
            r = base + name
            if n.is_tree:
                if self.current.get(r) == n.digest:
                    self.res.unchanged.append(f"{self._name(r)}/")
                    continue
                visit.append((r, n.digest, n))
                continue
            have: bytes | None = None
            if name in files:
                have = now(name)
            elif self.rules and self.rules.matches(self._name(r)):
                # The tree has a file that .casignore now hides from the listing: one that
                # is there is looked at like any other before it is replaced.
                have = self._present(r)
            if have == n.digest:
                if name in files and bool(files[name][1].st_mode & 0o100) != (n.kind == "x"):
                    _fix_mode(self.data / r, n.kind == "x")
                self.res.unchanged.append(self._name(r))
                continue
            if have is not None and not _safe_to_replace(self.repo, have, self.force):
                self.res.failed.append(f"{self._name(r)} has changes that are not in the cache; "
                                       f"'cas add {self.shown}' to keep them, or --force to "
                                       "discard them")
                continue
            self._write(r, n, fresh=listing is None)
        return visit

    def _present(self, rel: str) -> bytes | None:
        path = self.data / rel
        try:
            st = os.lstat(path)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        return self._digest(rel, str(path), st)

    def _write(self, rel: str, n: Node, *, fresh: bool) -> None:
        name = self._name(rel)
        try:
            write_file(self.repo, self.data / rel, n.digest, n.size, executable=n.kind == "x",
                       advance=self.advance, fresh=fresh, key=name)
        except CasError as exc:
            self.res.failed.append(_naming(name, str(exc)))
            return
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
                raise  # every other file would fail the same way: stop with one line
            self.res.failed.append(f"{name}: cannot write ({exc.strerror})")
            return
        self.res.restored.append(name)
        self.res.bytes_written += n.size

    def _remove_file(self, rel: str, digest: bytes) -> bool:
        if not _safe_to_replace(self.repo, digest, self.force):
            self.res.failed.append(f"{self._name(rel)} is not in the tracked folder and not in "
                                   f"the cache; 'cas add {self.shown}' to keep it, or --force "
                                   "to delete it")
            return False
        (self.data / rel).unlink()
        self.res.removed.append(self._name(rel))
        return True

    def _remove_tree(self, rel: str) -> bool:
        """Remove a folder the tree does not have, with the files in it that are in the
        cache; whether it is gone."""
        kept = False
        stack = [(rel, False)]
        while stack:
            r, done = stack.pop()
            path = self.data / r
            if done:
                try:
                    path.rmdir()
                except OSError:
                    kept = True  # kept files, or what .casignore hides, stay
                continue
            if path.is_symlink():
                continue
            listing = self.reader.read(str(path), r)
            stack.append((r, True))
            for name, p, st in listing.files:
                if not self._remove_file(f"{r}/{name}", self._digest(f"{r}/{name}", p, st)):
                    kept = True
            stack.extend((f"{r}/{name}", False) for name, _ in listing.dirs)
        return not kept


class _LinkGuard:
    """Checkout never writes through a symbolic link inside a tracked folder: a link there
    (which add skips) may lead outside the work tree, or into .git. A link in the way is
    reported, or with --force replaced by a real folder (the link alone is removed, never
    what it points to)."""

    def __init__(self, repo: Project, data: Path, force: bool, res: CheckoutResult) -> None:
        self.repo = repo
        self.data = data
        self.force = force
        self.res = res
        self.checked: set[Path] = set()

    def clear(self, folder: Path) -> bool:
        """Whether ``folder`` (below ``data``) can be written into: no link on the way."""
        chain = []
        p = folder
        while p != self.data and p not in self.checked and p != p.parent:
            chain.append(p)
            p = p.parent
        for q in reversed(chain):
            if q.is_symlink():
                if not self.force:
                    self.res.failed.append(
                        f"{self.repo.rel(q)} is a link inside a tracked folder, and checkout "
                        "never writes through links; remove it, or use --force to replace it "
                        "with the tracked folder")
                    return False
                q.unlink()
            self.checked.add(q)
        return True


def _prune_empty(path: Path, stop: Path) -> None:
    d = path.parent
    while d != stop and stop in d.parents:
        try:
            d.rmdir()
        except OSError:
            return
        d = d.parent
