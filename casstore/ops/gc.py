"""cas gc [--remote NAME]: the workspace's side of a collection.

Decides which roots are live from where this clone stands -- its pointers, the named Git
revisions (``--all-branches`` includes remote-tracking branches), and, on a shared cache,
the pointers of every registered clone -- and hands them to the store's collector
(``casstore.store.collector``), which adds what root records keep live and deletes in two
phases. The roots are gathered when the collector asks (after it listed the root records).

The local cache is collected under its exclusive lock, which keeps every other ``cas``
command on this machine out, so the two phases run back to back. A remote is shared with
writers we cannot lock out: a run condemns, and a later run, the grace period after,
deletes what is still dead.
"""

from __future__ import annotations

import os

from .. import clones
from ..errors import CasError, ConfigError
from ..gitutil import NO_REVISIONS, RevSelection
from ..project import Project
from ..reachability import Root
from ..results import GcResult
from ..store import roots as root_markers
from ..store.collector import DAY, Policy, collect
from .sync import gather_roots, open_remote_store

DEFAULT_GRACE_HOURS = 24.0
DEFAULT_KEEP_PUSHED_DAYS = 30.0


def _number(repo: Project, key: str, given: float | None, default: float) -> float:
    value = given if given is not None else repo.config.get(key, default)
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number, not {value!r}; fix it with "
                          f"'cas config {key} NUMBER'") from None
    if value < 0:
        raise ConfigError(f"{key} cannot be negative")
    return value


def gc(repo: Project, *, dry_run: bool = False, select: RevSelection = NO_REVISIONS,
       remote: str | None = None, grace_hours: float | None = None,
       keep_pushed_days: float | None = None, jobs: int | None = None) -> GcResult:
    """Collect the cache (default) or a remote; the pointers of the Git revisions
    ``select`` names are kept too (see the module docstring)."""
    if remote is not None:
        grace = _number(repo, "gc.grace_hours", grace_hours, DEFAULT_GRACE_HOURS)
        keep = _number(repo, "gc.keep_pushed_days", keep_pushed_days,
                       DEFAULT_KEEP_PUSHED_DAYS)
        rs = open_remote_store(repo, remote or None, jobs)
        policy = Policy(grace=grace * 3600, retention=keep * DAY, dry_run=dry_run)
        return collect(rs, lambda: gather_roots(repo, None, select), policy,
                       cache=repo.cache, reporter=repo.reporter)
    return _gc_cache(repo, dry_run, select)


def _gc_cache(repo: Project, dry_run: bool, select: RevSelection) -> GcResult:
    store = repo.cache
    seen = CacheUsers()
    with store.lock(shared=False):
        # Roots are read under the exclusive lock: read before it, they would miss the
        # pointers of an add that finishes while gc waits, and gc would delete its data.
        res = collect(store, lambda: seen.roots(repo, select),
                      Policy(grace=0.0, retention=0.0, immediate=True, dry_run=dry_run),
                      reporter=repo.reporter)
        res.clones = seen.considered
        res.clones_dropped = [str(g.root) for g in seen.gone]
        if not dry_run:
            for g in seen.gone:
                clones.forget(g)
            root_markers.prune(store.root, store.has)
        store.close()
    return res


class CacheUsers:
    """The clones using ``repo``'s cache, and the roots they keep live."""

    def __init__(self) -> None:
        self.considered: list[str] = []
        self.gone: list[clones.Registration] = []

    def roots(self, repo: Project, select: RevSelection) -> list[Root]:
        """This clone's roots, plus those of every registered clone still using the cache
        (the same revisions selected in each); registrations of clones that are gone, or
        use another cache now, are set aside in ``gone``."""
        store_root = repo.cache_root
        roots = gather_roots(repo, None, select)
        self.considered.append(str(repo.root))
        for reg in clones.registered(store_root):
            if reg.root == repo.root:
                continue
            try:
                other = Project(reg.root)
            except CasError:
                self.gone.append(reg)  # the clone (or its .cas folder) no longer exists
                continue
            with other:
                if os.path.realpath(other.cache_root) != os.path.realpath(store_root):
                    self.gone.append(reg)  # it points at another cache now
                    continue
                roots += gather_roots(other, None, select)
            self.considered.append(str(reg.root))
        return roots

