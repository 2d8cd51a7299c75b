"""cas fsck [--remote]: verify the cache or a remote with the store's checker."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..gitutil import EVERY_REF, NO_REVISIONS, is_git_repo
from ..results import FsckResult
from ..store.checker import check_store
from .gc import CacheUsers
from .sync import gather_roots, open_remote_store

if TYPE_CHECKING:
    from ..project import Project


def fsck(repo: Project, *, remote: str | None = None, repair: bool = False,
         jobs: int | None = None) -> FsckResult:
    """Read and verify every pack, index file and record; ``remote`` ('' for the default
    remote) checks a remote instead of the cache (this downloads all of it)."""
    # What counts as needed when a recipe's chunks are gone: the pointers and every branch
    # and tag this clone knows (and, on a shared cache, the other clones'); push records
    # are added by the checker.
    every = EVERY_REF if is_git_repo(repo.root) else NO_REVISIONS
    if remote is not None:
        rs = open_remote_store(repo, remote or None, jobs)
        return check_store(rs, repair=repair, reporter=repo.reporter,
                           fsck_command="cas fsck --remote", cache=repo.cache,
                           live_roots=lambda: gather_roots(repo, None, every))
    cache = repo.cache
    with cache.lock(shared=True):
        return check_store(cache, repair=repair, reporter=repo.reporter,
                           live_roots=lambda: CacheUsers().roots(repo, every))
