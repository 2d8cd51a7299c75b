"""cas status --remote: which tracked data the remote lacks, and which it could provide."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..reachability import expand, root_of
from ..results import StatusEntry
from ..store.index import ids_array
from .session import open_store

if TYPE_CHECKING:
    from ..repo import Repo

NOT_PUSHED = "not pushed"
NOT_ON_REMOTE = "not on remote"


def mark_remote_states(repo: Repo, entries: list[StatusEntry], remote: str | None = None,
                       *, jobs: int | None = None) -> str:
    """Add 'not pushed' (the cache holds data the remote lacks) and 'not on remote' (neither
    the cache nor the remote holds it) to ``entries``; returns the remote's name.

    Costs one listing of the remote's index/ folder plus the index files not seen before.
    """
    rs = open_store(repo, remote, jobs)
    rindex = rs.index()
    cache = repo.cache
    for e in entries:
        ptr = repo.load_pointer(repo.root / e.pointer)
        root = root_of(ptr, e.pointer)
        need = expand(cache, [root])
        if need and not bool(rindex.contains_many(ids_array(sorted(need))).all()):
            e.states.append(NOT_PUSHED)
        elif ptr.digest not in rindex and not cache.has(ptr.digest):
            e.states.append(NOT_ON_REMOTE)
    return rs.name
