"""cas status: compare the working tree with the pointers (and the cache)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..digests import WorkTree, current_file_digest, recorded_tree, v2_digest
from ..errors import CasError
from ..pointer import Pointer, data_path_for
from ..results import StatusEntry
from ..tree import Loader, Summary
from .targets import Target, find_part, resolve_targets

if TYPE_CHECKING:
    from ..project import Project


def status(repo: Project, targets: Sequence[str | os.PathLike[str]] | None = None
           ) -> list[StatusEntry]:
    out: list[StatusEntry] = []
    try:
        for t in resolve_targets(repo, targets):
            ptr = repo.load_pointer(t.pointer)
            data = data_path_for(t.pointer, ptr)
            if t.sub:
                out.append(_part_status(repo, t, ptr, data))
                continue
            entry = StatusEntry(path=repo.rel(data), pointer=repo.rel(t.pointer),
                                kind=ptr.kind, states=[])
            if not data.exists() and not data.is_symlink():
                entry.states.append("missing")
            elif ptr.kind == "file":
                if not data.is_file() or data.is_symlink() \
                        or current_file_digest(repo, data) != ptr.digest:
                    entry.states.append("modified")
            else:
                _dir_status(repo, data, ptr.digest, entry, ptr.follow_symlinks)
            if not repo.in_cache(ptr.digest):
                entry.states.append("not in cache")
            out.append(entry)
    finally:
        repo.stat_cache.flush()
    return out


def _part_status(repo: Project, t: Target, ptr: Pointer, data: Path) -> StatusEntry:
    """``cas status data/sub``: only that part of the folder is looked at."""
    top = repo.rel(data)
    path = data / t.sub
    entry = StatusEntry(path=repo.rel(path), pointer=repo.rel(t.pointer), kind="dir",
                        states=[])
    try:
        load, found = find_part(repo, ptr, t.sub, top)
    except CasError as exc:
        if not repo.cache.has(ptr.digest):
            # Without the folder's tree nothing says what the part should hold.
            if not path.exists():
                entry.states.append("missing")
            entry.states.append("not in cache")
            return entry
        raise exc
    if found.kind == "file":
        assert found.entry is not None and found.entry.digest is not None
        entry.kind = "file"
        if not path.exists() and not path.is_symlink():
            entry.states.append("missing")
        elif not path.is_file() or path.is_symlink() \
                or current_file_digest(repo, path) != found.entry.digest:
            entry.states.append("modified")
        if not repo.cache.has(found.entry.digest):
            entry.states.append("not in cache")
        return entry
    assert found.tree is not None
    if not path.exists() and not path.is_symlink():
        entry.states.append("missing")
    else:
        _compare(repo, path, entry, ptr.follow_symlinks, load, found.tree)
    if not repo.cache.has(found.tree):
        entry.states.append("not in cache")
    return entry


def _dir_status(repo: Project, data: os.PathLike[str], digest: bytes, entry: StatusEntry,
                follow_symlinks: bool = False) -> None:
    path = Path(data)
    if not path.is_dir() or path.is_symlink():
        entry.states.append("modified")
        return
    # The folder as it is now costs a listing and a stat per file (folder digests are
    # remembered): a clean folder is answered without reading the cache's index.
    known: dict[str, Summary] = {}
    now = WorkTree(repo, path, follow_symlinks=follow_symlinks,
                   on_folder=known.__setitem__).build()
    if now.digest == digest:
        return
    want = v2_digest(repo, digest, entry.path)
    if want == now.digest:
        return  # a version 1 tree of the same content
    entry.states.append("modified")
    if want is None:
        return  # without the recorded tree we can say only that the folder differs
    try:
        load, top = recorded_tree(repo, digest, entry.path)
    except CasError:
        return
    _details(repo, path, entry, follow_symlinks, load, top, known)


def _compare(repo: Project, path: Path, entry: StatusEntry, follow_symlinks: bool,
             load: Loader, want: bytes) -> None:
    if not path.is_dir() or path.is_symlink():
        entry.states.append("modified")
        return
    known: dict[str, Summary] = {}
    if WorkTree(repo, path, follow_symlinks=follow_symlinks,
                on_folder=known.__setitem__).build().digest == want:
        return
    entry.states.append("modified")
    _details(repo, path, entry, follow_symlinks, load, want, known)


def _details(repo: Project, path: Path, entry: StatusEntry, follow_symlinks: bool,
             load: Loader, want: bytes, known: dict[str, Summary]) -> None:
    """Files added, removed and modified since tree ``want``: folders whose digest (found
    by the walk that gave ``known``) is the recorded one are not read again."""
    wt = WorkTree(repo, path, follow_symlinks=follow_symlinks, then=(load, want),
                  known=known)
    wt.build()
    entry.added = sorted(wt.added)
    entry.removed = sorted(wt.removed)
    entry.modified = sorted(wt.modified)
