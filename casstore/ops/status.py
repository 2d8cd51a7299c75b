"""cas status: compare the working tree with the pointers (and the cache)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..digests import DirNow, current_file_digest
from ..errors import CasError
from ..pointer import data_path_for
from ..results import StatusEntry
from ..store.objects import ObjectType
from ..tree import decode_tree

if TYPE_CHECKING:
    from ..repo import Repo


def status(repo: Repo, targets: Sequence[str | os.PathLike[str]] | None = None
           ) -> list[StatusEntry]:
    out: list[StatusEntry] = []
    try:
        for ptr_path in repo.pointer_files(targets):
            ptr = repo.load_pointer(ptr_path)
            data = data_path_for(ptr_path, ptr)
            entry = StatusEntry(path=repo.rel(data), pointer=repo.rel(ptr_path), kind=ptr.kind,
                                states=[])
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


def _dir_status(repo: Repo, data: os.PathLike[str], digest: bytes, entry: StatusEntry,
                follow_symlinks: bool = False) -> None:
    from pathlib import Path

    path = Path(data)
    if not path.is_dir() or path.is_symlink():
        entry.states.append("modified")
        return
    dir_now = DirNow(repo, path, follow_symlinks=follow_symlinks)
    if dir_now.digest == digest:
        return
    entry.states.append("modified")
    now = dir_now.entries()
    loc = repo.cache.locate(digest)
    if loc is None or loc.type != ObjectType.TREE:
        return  # without the recorded tree we can say only that the folder differs
    try:
        _, raw = repo.cache.read(digest)
        then = {e.path: e for e in decode_tree(raw)}
    except CasError:
        return
    cur = {e.path: e for e in now}
    entry.added = sorted(set(cur) - set(then))
    entry.removed = sorted(set(then) - set(cur))
    entry.modified = sorted(p for p in set(cur) & set(then)
                            if (cur[p].digest, cur[p].kind) != (then[p].digest, then[p].kind))
