"""cas fsck [--remote]: verify the cache or a remote with the store's checker."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..results import FsckResult
from ..store.checker import check_store
from .sync import open_remote_store

if TYPE_CHECKING:
    from ..repo import Repo


def fsck(repo: Repo, *, remote: str | None = None, repair: bool = False,
         jobs: int | None = None) -> FsckResult:
    """Read and verify every pack, index file and record; ``remote`` ('' for the default
    remote) checks a remote instead of the cache (this downloads all of it)."""
    if remote is not None:
        rs = open_remote_store(repo, remote or None, jobs)
        return check_store(rs, repair=repair, reporter=repo.reporter,
                           fsck_command="cas fsck --remote")
    cache = repo.cache
    with cache.lock(shared=True):
        return check_store(cache, repair=repair, reporter=repo.reporter)
