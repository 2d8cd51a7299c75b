"""cas gc: delete cache data that no pointer references.

Kept: everything reachable from the workspace's pointers, plus, on request, from pointers
in Git branches, tags, all commits or named revisions. Packs with no live object are
deleted; packs whose live bytes fall under REPACK_BELOW are rewritten with only the live
objects. Order of writes: new packs and their index, then a merged index without the old
packs, then deletion; a kill at any point leaves a store that fsck accepts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..atomic import TMP_SUFFIX, is_tmp_name
from ..reachability import expand, history_roots, workspace_roots
from ..results import GcResult
from ..store import roots as root_markers
from ..store.index import Index
from ..store.local import LocalStore
from ..store.packfile import ENTRY_DTYPE

if TYPE_CHECKING:
    from ..repo import Repo

REPACK_BELOW = 0.5


def live_mask(index: Index, live: set[bytes]) -> np.ndarray:
    if not live:
        return np.zeros(len(index), dtype=bool)
    ents = np.empty(len(live), ENTRY_DTYPE)
    ents["id"] = np.frombuffer(b"".join(live), dtype="V16")
    ents["offset"] = 0
    ents["length"] = 0
    live_idx = Index([], np.zeros(len(live), np.uint32), ents)
    return live_idx.contains_many(index.ids())


def reindex_orphans(store: LocalStore) -> int:
    """Index packs whose index file was never written (a command killed in between)."""
    indexed = set(store.index().packs)
    n = 0
    for name in store.list_packs():
        if name not in indexed:
            entries = store.read_trailer(name)
            store.write_index([name], np.zeros(len(entries), np.uint32), entries, name)
            n += 1
    return n


def gc(repo: Repo, *, dry_run: bool = False, revs: Sequence[str] = (),
       all_branches: bool = False, all_tags: bool = False, all_commits: bool = False
       ) -> GcResult:
    store = repo.cache
    res = GcResult(dry_run=dry_run)
    with store.lock(shared=False):
        # Roots are read under the exclusive lock: read before it, they would miss the
        # pointers of an add that finishes while gc waits, and gc would delete its data.
        roots = workspace_roots(repo)
        if revs or all_branches or all_tags or all_commits:
            roots += history_roots(repo, revs=revs, all_branches=all_branches,
                                   all_tags=all_tags, all_commits=all_commits)
        if not dry_run:
            reindex_orphans(store)
        index = store.index()
        live = expand(store, roots)
        mask = live_mask(index, live)
        lengths = index.length.astype(np.int64)
        res.objects_kept = int(mask.sum())
        res.bytes_kept = int(lengths[mask].sum())
        res.objects_removed = int((~mask).sum())
        dead_packs: list[int] = []
        repack: list[int] = []
        for i in range(len(index.packs)):
            rows = index.pack == i
            total = int(lengths[rows].sum())
            keep = int(lengths[rows & mask].sum())
            if keep == 0:
                dead_packs.append(i)
                res.bytes_freed += total
            elif keep < REPACK_BELOW * total:
                repack.append(i)
                res.bytes_freed += total - keep
            else:
                # Dead objects in a mostly-live pack stay until the pack is sparse enough.
                res.objects_removed -= int((rows & ~mask).sum())
                res.objects_kept += int((rows & ~mask).sum())
        res.packs_deleted = len(dead_packs)
        res.packs_repacked = len(repack)
        if dry_run:
            return res
        with store.writer() as w:
            for i in repack:
                for r in np.nonzero((index.pack == i) & mask)[0]:
                    loc = index.location_at(int(r))
                    w.put_stored(index.id_at(int(r)), loc.type, loc.codec, loc.raw_length,
                                 store.read_raw(loc))
        gone = {index.packs[i] for i in dead_packs + repack}
        _rewrite_index(store, gone)
        root_markers.prune(store.root, store.has)
        for name in gone:
            with contextlib.suppress(FileNotFoundError):
                store.pack_path(name).unlink()
        # Under the exclusive lock no writer is running: every temp file is a leftover.
        leftovers = list(store.tmp_dir.glob("*")) + [
            p for p in store.index_dir.glob(f"*{TMP_SUFFIX}") if is_tmp_name(p.name)]
        for tmp in leftovers:
            with contextlib.suppress(OSError):
                tmp.unlink()
                res.temp_files_removed += 1
        store.close()
    return res


def _rewrite_index(store: LocalStore, gone: set[str]) -> None:
    """Replace all index files by one that omits the packs in ``gone``."""
    store.invalidate()
    old_files = store.list_index_files()
    index = store.index()
    keep_pos = np.array([p not in gone for p in index.packs], dtype=bool)
    rows = keep_pos[index.pack] if len(index) else np.zeros(0, bool)
    ents = np.empty(int(rows.sum()), ENTRY_DTYPE)
    ents["id"] = index.ids()[rows]
    for col in ("type", "codec", "raw_length", "offset", "length"):
        ents[col] = getattr(index, col)[rows]
    names = [p for p in index.packs if p not in gone]
    remap = np.cumsum(keep_pos, dtype=np.int64) - 1  # old pack position -> new position
    new_rows = remap[index.pack[rows]].astype(np.uint32)
    new = store.write_index(names, new_rows, ents) if len(ents) else None
    for f in old_files:
        if f != new:
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
    store.invalidate()
