"""What every remote operation starts with: the remote to talk to and the pointers in play."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..reachability import Root, history_roots, workspace_roots
from .config import resolve
from .store import RemoteStore

if TYPE_CHECKING:
    from ..repo import Repo


def open_store(repo: Repo, remote: str | None, jobs: int | None = None) -> RemoteStore:
    """The named (or default) remote of ``repo``, ready to use."""
    spec = resolve(repo.config, remote)
    return RemoteStore.open(spec, base=repo.root, cache_root=repo.cache.root, jobs=jobs,
                            reporter=repo.reporter)


def gather_roots(repo: Repo, targets: Sequence[str] | None = None, *,
                 revs: Sequence[str] = (), all_branches: bool = False,
                 all_tags: bool = False, all_commits: bool = False) -> list[Root]:
    """Pointers named by ``targets`` (all in the workspace by default), plus those of the
    named Git revisions."""
    roots = workspace_roots(repo, targets)
    if revs or all_branches or all_tags or all_commits:
        roots += history_roots(repo, revs=revs, all_branches=all_branches,
                               all_tags=all_tags, all_commits=all_commits)
    return roots
