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
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..digests import current_dir_entries, current_file_digest
from ..errors import CasError, CorruptObjectError, ObjectMissingError
from ..files import restore_file
from ..ignore import IgnoreRules
from ..pointer import Pointer, data_path_for
from ..results import CheckoutResult
from ..store.objects import ObjectType
from ..tree import TreeEntry, decode_tree

if TYPE_CHECKING:
    from ..repo import Repo


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


def write_file(repo: Repo, dest: Path, digest: bytes, size: int, *, executable: bool,
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


def _safe_to_replace(repo: Repo, digest: bytes | None, force: bool) -> bool:
    return force or digest is None or repo.cache.has(digest)


def checkout(repo: Repo, targets: Sequence[str | os.PathLike[str]] | None = None, *,
             force: bool = False) -> CheckoutResult:
    res = CheckoutResult()
    # Partial files of a killed checkout (possibly gigabytes) are removed at the next one.
    repo.work_tmp.remove_stale()
    with repo.cache.lock(shared=True):
        try:
            for ptr_path in repo.pointer_files(targets):
                shown = repo.rel(ptr_path)
                try:
                    ptr = repo.load_pointer(ptr_path)
                    data = data_path_for(ptr_path, ptr)
                    shown = repo.rel(data)
                    if ptr.kind == "file":
                        _checkout_file(repo, ptr, data, force, res)
                    else:
                        _checkout_dir(repo, ptr, data, force, res)
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


def _checkout_file(repo: Repo, ptr: Pointer, data: Path, force: bool,
                   res: CheckoutResult) -> None:
    shown = repo.rel(data)
    if data.is_symlink() or data.is_dir():
        if not force:
            res.failed.append(f"{shown} is a {'link' if data.is_symlink() else 'folder'} "
                              "where a file is tracked; move it away or use --force")
            return
    elif data.is_file():
        cur = current_file_digest(repo, data)
        if cur == ptr.digest:
            _fix_mode(data, ptr.executable, private=ptr.mode is not None)
            res.unchanged.append(shown)
            return
        if not _safe_to_replace(repo, cur, force):
            res.failed.append(f"{shown} has changes that are not in the cache; 'cas add "
                              f"{shown}' to keep them, or 'cas checkout --force {shown}' to "
                              "discard them")
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


def tree_sha256(repo: Repo, tree: list[TreeEntry]) -> str:
    """A folder's SHA-256 as 'cas add --sha256' records it (over each file's SHA-256, in
    tree order), computed from the cache's verified content."""
    h = hashlib.sha256()
    for e in sorted(tree, key=lambda e: e.path.encode()):
        if e.digest is None:
            continue
        sink = _HashSink()
        restore_file(repo.cache, e.digest, e.size, sink)  # type: ignore[arg-type]
        h.update(f"{e.path}\0{sink.h.hexdigest()}\n".encode())
    return h.hexdigest()


def load_tree(repo: Repo, digest: bytes, shown: str) -> list[TreeEntry]:
    loc = repo.cache.locate(digest)
    if loc is None:
        raise ObjectMissingError(_missing_msg(shown))
    if loc.type != ObjectType.TREE:
        raise CorruptObjectError(f"{shown}: the pointer names a file, not a folder tree")
    _, raw = repo.cache.read(digest)
    try:
        return decode_tree(raw)
    except CorruptObjectError as exc:
        raise CorruptObjectError(f"{shown}: {exc}") from None


def _checkout_dir(repo: Repo, ptr: Pointer, data: Path, force: bool,
                  res: CheckoutResult) -> None:
    shown = repo.rel(data)
    tree = load_tree(repo, ptr.digest, shown)
    if data.is_symlink() or (data.exists() and not data.is_dir()):
        if not force:
            res.failed.append(f"{shown} is not a folder but a folder is tracked there; move "
                              "it away or use --force")
            return
        data.unlink()
    cur = {e.path: e for e in current_dir_entries(
        repo, data, follow_symlinks=ptr.follow_symlinks)} if data.is_dir() else {}
    want = {e.path: e for e in tree}
    if ptr.sha256 and cur != want:
        # Verified before anything is written or removed, so a refused folder stays as it was.
        if tree_sha256(repo, tree) != ptr.sha256:
            raise CorruptObjectError(
                f"{shown}: content does not match the pointer's sha256; the pointer or the "
                "cache has been tampered with")
    blocked: set[str] = set()
    # Remove what the tree does not have, deepest first, if it is recoverable.
    for rel in sorted(set(cur) - set(want), reverse=True):
        e = cur[rel]
        if e.kind == "d":
            with contextlib.suppress(OSError):
                (data / rel).rmdir()
            continue
        if not _safe_to_replace(repo, e.digest, force):
            res.failed.append(f"{shown}/{rel} is not in the tracked folder and not in the "
                              f"cache; 'cas add {shown}' to keep it, or --force to delete it")
            blocked.add(rel)
            continue
        (data / rel).unlink()
        res.removed.append(f"{shown}/{rel}")
        _prune_empty(data / rel, data)
    todo: list[TreeEntry] = []
    linked = _LinkGuard(repo, data, force, res)
    rules = IgnoreRules.load(repo.root)
    for rel, e in want.items():
        have = cur.get(rel)
        if e.kind == "d":
            if linked.clear(data / rel):
                makedirs(data / rel)
            continue
        if have is None and rules and rules.matches(f"{shown}/{rel}"):
            # The tree has a file that .casignore now hides from the scan: one that is
            # there is looked at like any other before it is replaced.
            have = _present(repo, data / rel, e)
            if have is not None and have.digest != e.digest:
                cur[rel] = have
        if have is not None and have.digest == e.digest:
            if have.kind != e.kind:
                _fix_mode(data / rel, e.executable)
            res.unchanged.append(f"{shown}/{rel}")
            continue
        if have is not None and not _safe_to_replace(repo, have.digest, force):
            res.failed.append(f"{shown}/{rel} has changes that are not in the cache; 'cas add "
                              f"{shown}' to keep them, or --force to discard them")
            continue
        if any(b.startswith(rel + "/") for b in blocked):
            continue
        todo.append(e)
    makedirs(data)
    unusable: set[Path] = set()
    for folder in {(data / e.path).parent for e in todo}:
        if not linked.clear(folder):
            unusable.add(folder)
            continue
        try:
            makedirs(folder)
        except OSError as exc:  # e.g. a kept, untracked file stands where a folder goes
            unusable.add(folder)
            res.failed.append(f"{repo.rel(folder)}: cannot create this folder "
                              f"({exc.strerror}); move what is there away")
    todo = [e for e in todo if (data / e.path).parent not in unusable]
    total = sum(e.size for e in todo)
    with repo.reporter.progress(f"checking out {shown}/", total) as bar:
        for e in todo:
            assert e.digest is not None
            dest = data / e.path
            try:
                write_file(repo, dest, e.digest, e.size, executable=e.executable,
                           advance=bar.advance, fresh=e.path not in cur,
                           key=f"{shown}/{e.path}")
            except CasError as exc:
                res.failed.append(f"{shown}/{e.path}: {exc}")
                continue
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
                    raise  # every other file would fail the same way: stop with one line
                res.failed.append(f"{shown}/{e.path}: cannot write ({exc.strerror})")
                continue
            res.restored.append(f"{shown}/{e.path}")
            res.bytes_written += e.size


def _present(repo: Repo, path: Path, e: TreeEntry) -> TreeEntry | None:
    """The tree entry of a regular file at ``path`` as it is now, or None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return TreeEntry(e.path, "x" if st.st_mode & 0o100 else "f", st.st_size,
                     current_file_digest(repo, path, st))


class _LinkGuard:
    """Checkout never writes through a symbolic link inside a tracked folder: a link there
    (which add skips) may lead outside the work tree, or into .git. A link in the way is
    reported, or with --force replaced by a real folder (the link alone is removed, never
    what it points to)."""

    def __init__(self, repo: Repo, data: Path, force: bool, res: CheckoutResult) -> None:
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
