"""cas remove (alias untrack): stop tracking data, as ``dvc remove`` / ``git rm --cached``.

The pointer is deleted and the data's ``.gitignore`` line removed, so Git sees the data
as an ordinary untracked file again. The data stays in the workspace unless ``purge``:
then it is deleted too, but only when its current content is in the cache (recoverable by
re-adding the pointer from Git and 'cas checkout') or with ``force``. The cache is not
touched: 'cas gc' collects what no pointer uses any more.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import PathError
from ..lock import store_lock
from ..pointer import data_path_for
from ..results import _Jsonable
from .status import status

if TYPE_CHECKING:
    from ..project import Project


@dataclass
class RemovedItem(_Jsonable):
    path: str
    pointer: str
    purged: bool  # the data was deleted from the workspace too
    gitignore: bool  # a .gitignore line was removed


@dataclass
class RemoveResult(_Jsonable):
    items: list[RemovedItem] = field(default_factory=list)


def remove(repo: Project, paths: Sequence[str | os.PathLike[str]], *, purge: bool = False,
           force: bool = False) -> RemoveResult:
    if not paths:
        raise PathError("nothing to remove; name tracked files or folders, e.g. "
                        "'cas remove data/'")
    # Resolved (and every pointer read) before anything is changed: a typo in the third
    # path must not leave the first two untracked.
    todo: list[tuple[Path, Path]] = []
    for raw in paths:
        for ptr_path in repo.pointer_files([raw]):
            ptr = repo.load_pointer(ptr_path)
            todo.append((ptr_path, data_path_for(ptr_path, ptr)))
    if purge and not force:
        for ptr_path, data in todo:
            _check_recoverable(repo, ptr_path, data)
    result = RemoveResult()
    with store_lock(repo.cas_dir / "state" / "workspace.lock", shared=False,
                    notify=repo.reporter.note):
        for ptr_path, data in todo:
            shown = repo.rel(data)
            ptr_path.unlink()
            ignored = repo.remove_gitignore(data)
            purged = False
            if purge and (data.exists() or data.is_symlink()):
                if data.is_dir() and not data.is_symlink():
                    shutil.rmtree(data)
                else:
                    data.unlink()
                purged = True
            result.items.append(RemovedItem(path=shown, pointer=repo.rel(ptr_path),
                                            purged=purged, gitignore=ignored))
    return result


def _check_recoverable(repo: Project, ptr_path: Path, data: Path) -> None:
    """Refuse to purge data whose current content exists nowhere else."""
    if not (data.exists() or data.is_symlink()):
        return
    entry = status(repo, [ptr_path])[0]
    if entry.states:
        why = ", ".join(entry.states)
        raise PathError(f"{entry.path} is {why}: deleting it would lose data the cache does "
                        f"not hold; 'cas add {entry.path}' first, or 'cas remove --purge "
                        "--force' to delete it anyway")
