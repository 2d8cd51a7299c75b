"""cas gc --remote: delete remote packs that nothing references, conservatively.

Reachability is the local gc's (workspace pointers, plus the named Git revisions), expanded
over the remote's own index. Only packs with no live object at all are deleted, and only
when older than the grace period (default 24 h), so packs a concurrent push has just written
(and whose pointers this clone has not seen yet) survive. Packs holding some live objects are
kept whole. A failure to read any tree or recipe aborts before anything is deleted.

Order of writes: a merged index without the dead packs is uploaded first, then the index
files it replaces are deleted, then the packs; a kill at any point leaves a remote whose
index names only packs that exist.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import RemoteError
from ..ops.gc import REPACK_BELOW, live_mask
from ..store.index import Index, Location
from ..store.indexfile import decode_index
from ..store.local import LocalStore
from ..store.packfile import ENTRY_DTYPE
from .fetch import Downloader, _verified
from .results import FetchResult, RemoteGcResult
from .session import gather_roots, open_store
from .store import RemoteStore

if TYPE_CHECKING:
    from ..repo import Repo

DEFAULT_GRACE_HOURS = 24.0
COMPACT_AFTER = 64  # index files; past this many gc merges them into one
ORPHAN_MIN_AGE = 3600.0  # seconds an unindexed pack or temp upload is left to its push


class RemoteSource:
    """An ObjectSource for reachability: the remote's index, bytes from the cache when it
    has them (no request), else from the remote, verified."""

    def __init__(self, rs: RemoteStore, index: Index, cache: LocalStore) -> None:
        self.rs = rs
        self._index = index
        self.cache = cache

    def locate(self, oid: bytes) -> Location | None:
        return self._index.get(oid)

    def read(self, oid: bytes, *, verify: bool = True) -> tuple[int, bytes]:
        if self.cache.has(oid):
            return self.cache.read(oid, verify=verify)
        loc = self._index.get(oid)
        if loc is None:
            raise RemoteError(f"object {oid.hex()} is not on remote '{self.rs.name}'")
        stored = self.rs.read_range(loc.pack, loc.offset, loc.offset + loc.length)
        return loc.type, _verified(oid, loc, stored)


def remote_gc(repo: Repo, remote: str | None = None, *, dry_run: bool = False,
              grace_hours: float = DEFAULT_GRACE_HOURS, revs: Sequence[str] = (),
              all_branches: bool = False, all_tags: bool = False, all_commits: bool = False,
              jobs: int | None = None) -> RemoteGcResult:
    """Delete unreferenced packs older than ``grace_hours`` from a remote."""
    from ..reachability import expand

    if grace_hours < 0:
        raise RemoteError("the grace period cannot be negative")
    roots = gather_roots(repo, None, revs=revs, all_branches=all_branches, all_tags=all_tags,
                         all_commits=all_commits)
    rs = open_store(repo, remote, jobs)
    res = RemoteGcResult(remote=rs.name, dry_run=dry_run, grace_hours=grace_hours)
    # Packs are listed before the index: a pack that a concurrent push indexes in between is
    # then seen as indexed rather than as an orphan.
    listed = rs.list_packs()
    rindex = rs.index(refresh=True)
    missing: set[bytes] = set()
    live = expand(RemoteSource(rs, rindex, repo.cache), roots, missing=missing)
    unreadable = [m for m in missing if m in rindex]
    if unreadable:
        raise RemoteError(f"could not read {len(unreadable)} tree(s) or recipe(s) from remote "
                          f"'{rs.name}'; nothing was deleted (run 'cas fsck --remote')")
    mask = live_mask(rindex, live)
    now = time.time()
    grace = grace_hours * 3600

    def old_enough(name: str, at_least: float = 0.0) -> bool:
        info = listed.get(name)
        return info is not None and info.mtime is not None \
            and now - info.mtime >= max(grace, at_least)

    npacks = len(rindex.packs)
    lengths = rindex.length.astype(np.float64)
    live_per_pack = np.bincount(rindex.pack, weights=mask.astype(float), minlength=npacks)
    live_bytes = np.bincount(rindex.pack, weights=lengths * mask, minlength=npacks)
    all_bytes = np.bincount(rindex.pack, weights=lengths, minlength=npacks)
    dead: set[str] = set()
    sparse: list[int] = []
    for i, name in enumerate(rindex.packs):
        size = listed[name].size if name in listed else 0
        if live_per_pack[i] > 0 and name in listed and old_enough(name) \
                and live_bytes[i] < REPACK_BELOW * all_bytes[i]:
            # Mostly garbage, as the local gc judges it: its live objects move to a new pack.
            sparse.append(i)
            res.packs_repacked.append(name)
            res.bytes_freed += size - int(live_bytes[i])
            res.bytes_kept += int(live_bytes[i])
        elif live_per_pack[i] > 0:
            res.packs_kept += 1
            res.bytes_kept += size
        elif name not in listed:
            dead.add(name)  # indexed but gone: its index entries are dropped
        elif old_enough(name):
            dead.add(name)
            res.packs_deleted.append(name)
            res.bytes_freed += size
        else:
            res.packs_too_young += 1
            res.packs_kept += 1
            res.bytes_kept += size
    indexed = set(rindex.packs)
    # An unindexed pack may be a push between its pack and its index: whatever the grace
    # period, it is given ORPHAN_MIN_AGE to finish.
    orphans = [n for n in listed if n not in indexed and old_enough(n, ORPHAN_MIN_AGE)]
    res.unindexed_deleted = len(orphans)
    res.bytes_freed += sum(listed[n].size for n in orphans)
    tmp = [k for k, i in rs.list_tmp().items()
           if i.mtime is not None and now - i.mtime >= max(grace, ORPHAN_MIN_AGE)]
    res.temp_files_deleted = len(tmp)
    names = rs.index_names
    if dry_run:
        return res
    if sparse:
        _repack(rs, rindex, mask, sparse)
        dead.update(rindex.packs[i] for i in sparse)
    res.index_files_replaced = _rewrite_indexes(rs, names, dead,
                                                compact=len(names) > COMPACT_AFTER)
    rs.delete([rs.pack_key(n) for n in sorted(dead & set(listed)) + orphans], "deleting a pack")
    rs.delete(tmp, "deleting a temporary file")
    rs.forget_index()
    return res


def _repack(rs: RemoteStore, rindex: Index, mask: np.ndarray, sparse: list[int]) -> None:
    """Copy the live objects of ``sparse`` packs into new packs and publish them (pack, then
    index), verified on the way; the old packs go afterwards with the dead ones."""
    rows = np.nonzero(np.isin(rindex.pack, np.array(sparse, dtype=np.uint32)) & mask)[0]
    wanted = [(rindex.id_at(int(r)), rindex.location_at(int(r))) for r in rows]
    stage = rs.staging()
    try:
        staged = LocalStore(stage, fsync=False)
        with staged.writer() as w:
            Downloader(rs, FetchResult(remote=rs.name)).fetch(wanted, "repacking", writer=w)
        for name in w.packs:
            idx = (staged.index_dir / f"{name}.idx").read_bytes()
            rs.upload_pack(staged.pack_path(name), name, idx)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _rewrite_indexes(rs: RemoteStore, names: list[str], dead: set[str], *,
                     compact: bool) -> int:
    """Upload one index for the live rows of every index file touching a dead pack (or of
    every file, when compacting), then delete the files it replaces."""
    affected: list[str] = []
    parts = []
    for n in names:
        packs, rows, ents = decode_index((rs.index_cache / f"{n}.idx").read_bytes(),
                                         name=f"cached index {n}")
        if compact or dead.intersection(packs):
            affected.append(n)
            parts.append((packs, rows, ents))
    if not affected:
        return 0
    merged = Index.merge(parts)
    keep = np.array([p not in dead for p in merged.packs], dtype=bool)
    rows = keep[merged.pack] if len(merged) else np.zeros(0, bool)
    new = None
    if rows.any():
        # Name only the packs that still have rows, so no index mentions a deleted pack.
        used = np.unique(merged.pack[rows])
        remap = np.zeros(len(merged.packs), np.uint32)
        remap[used] = np.arange(len(used), dtype=np.uint32)
        ents = np.empty(int(rows.sum()), ENTRY_DTYPE)
        ents["id"] = merged.ids()[rows]
        for col in ("type", "codec", "raw_length", "offset", "length"):
            ents[col] = getattr(merged, col)[rows]
        new = rs.write_index([merged.packs[int(i)] for i in used], remap[merged.pack[rows]],
                             ents)
    rs.delete([rs.index_key(n) for n in affected if n != new], "deleting an index file")
    return len(affected)
