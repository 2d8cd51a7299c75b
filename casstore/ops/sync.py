"""cas push / fetch / pull / status --remote: the workspace's side of a transfer.

Gathers the roots (the workspace's pointers, plus named Git revisions), opens the remote,
and hands both to the store-to-store transfer (``casstore.remote.transfer``), which knows
nothing of workspaces or Git.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import PathError
from ..gitutil import NO_REVISIONS, RevSelection, head_info
from ..pointer import data_path_for
from ..reachability import Root, expand, history_roots, root_of, workspace_roots
from ..remote.config import resolve
from ..remote.parts import part_roots
from ..remote.results import FetchResult, PullResult, PushResult
from ..remote.store import RemoteStore
from ..remote.transfer import fetch_objects, push_objects
from ..results import StatusEntry
from ..store import records
from ..store.index import ids_array
from ..store.limits import Limits
from ..store.memory import trim
from .checkout import checkout
from .targets import resolve_targets

if TYPE_CHECKING:
    from ..project import Project

NOT_PUSHED = "not pushed"
NOT_ON_REMOTE = "not on remote"
CONDEMNED_ON_REMOTE = "on remote only in condemned packs"


def open_remote_store(repo: Project, remote: str | None, jobs: int | None = None) -> RemoteStore:
    """The named (or default) remote of ``repo``, ready to use."""
    spec = resolve(repo.config, remote)
    # Objects the remote serves are bounded by this repository's chunking (docs/security.md).
    return RemoteStore.open(spec, base=repo.root, cache_root=repo.cache.root, jobs=jobs,
                            reporter=repo.reporter,
                            limits=Limits.from_chunking(repo.config.get("chunking")))


def gather_roots(repo: Project, targets: Sequence[str] | None = None,
                 select: RevSelection = NO_REVISIONS) -> list[Root]:
    """Pointers named by ``targets`` (all in the workspace by default), plus those of the
    Git revisions ``select`` names."""
    roots = workspace_roots(repo, _pointers(repo, targets))
    if select:
        roots += history_roots(repo, select)
    return roots


def push(repo: Project, remote: str | None = None, targets: Sequence[str] | None = None, *,
         jobs: int | None = None, select: RevSelection = NO_REVISIONS) -> PushResult:
    """Upload what the pointers need (those of ``targets``, or all, plus those of the
    revisions ``select`` names) and the remote lacks, and a root record naming them."""
    roots = gather_roots(repo, targets, select)
    rs = open_remote_store(repo, remote, jobs)
    commit, branch = head_info(repo.root)
    return push_objects(repo.cache, rs, roots, commit=commit, branch=branch)


def fetch(repo: Project, remote: str | None = None, targets: Sequence[str] | None = None, *,
          jobs: int | None = None, select: RevSelection = NO_REVISIONS) -> FetchResult:
    """Download into the cache every object the pointers need (as for ``push``) that it
    lacks. A path inside a tracked folder (``data/sub``, ``data/f.bin``) fetches that part
    alone: the trees on its path, then its own objects."""
    named = resolve_targets(repo, targets) if targets else None
    parts = [t for t in named if t.sub] if named is not None else []
    whole = None if named is None else [str(t.pointer) for t in named if not t.sub]
    roots = workspace_roots(repo, whole) if whole is None or whole else []
    if select:
        roots += history_roots(repo, select)
    rs = open_remote_store(repo, remote, jobs)
    for t in parts:
        ptr = repo.load_pointer(t.pointer)
        data = data_path_for(t.pointer, ptr)
        if ptr.kind != "dir":
            raise PathError(f"{repo.rel(data)} is a tracked file, not a folder")
        roots += part_roots(repo.cache, rs, Root(ptr.digest, "dir", ptr.size, repo.rel(data)),
                            t.sub)
    return fetch_objects(repo.cache, rs, roots)


def _pointers(repo: Project, targets: Sequence[str] | None) -> list[str] | None:
    """The pointer files ``targets`` name; a path inside a tracked folder names its
    folder's (a push sends whole folders)."""
    if not targets:
        return None
    return sorted({str(t.pointer) for t in resolve_targets(repo, targets)})


def pull(repo: Project, remote: str | None = None, targets: Sequence[str] | None = None, *,
         jobs: int | None = None, force: bool = False) -> PullResult:
    """Fetch, then check out the pointers."""
    fres = fetch(repo, remote, targets, jobs=jobs)
    repo.cache.invalidate()
    trim()  # what the fetch freed goes back before the checkout loads the grown index
    cres = checkout(repo, list(targets) if targets else None, force=force)
    return PullResult(fres, cres)


def mark_remote_states(repo: Project, entries: list[StatusEntry], remote: str | None = None,
                       *, jobs: int | None = None) -> str:
    """Add 'not pushed' (the cache holds data the remote lacks), 'not on remote' (neither
    holds it) and 'on remote only in condemned packs' (a gc will delete it unless pushed
    again) to ``entries``; returns the remote's name.

    Costs a listing of the remote's index/ and records/condemned/ folders plus the index
    files not seen before.
    """
    rs = open_remote_store(repo, remote, jobs)
    condemned = records.condemned_packs(rs)
    full = rs.index()
    rindex = full.without_packs(condemned)
    cache = repo.cache
    for e in entries:
        ptr = repo.load_pointer(repo.root / e.pointer)
        need = expand(cache, [root_of(ptr, e.pointer)])
        arr = ids_array(sorted(need))
        if need and not bool(rindex.contains_many(arr).all()):
            e.states.append(CONDEMNED_ON_REMOTE if bool(full.contains_many(arr).all())
                            else NOT_PUSHED)
        elif ptr.digest not in rindex and not cache.has(ptr.digest):
            e.states.append(CONDEMNED_ON_REMOTE if ptr.digest in full else NOT_ON_REMOTE)
    return rs.name
