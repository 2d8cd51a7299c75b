"""The collector: deletes packs nothing needs, safely on storage shared by many writers.

One algorithm for the cache and every remote. The store knows nothing of workspaces or
Git: the caller hands over a function returning the roots its Git view keeps live
(``live_roots``), and the collector adds what the store's own root records keep live.

One run, step by step (the names C1..C9 are those of the protocol model in
tests/test_collector_model.py and of docs/remotes.md):
  C1  take the lease (one collector at a time; pushes never wait for it)
  C2  list and read the condemnation records
  C3  list the root records
  C4  ask the caller for the live roots of its Git view -- after C3, so a push whose root
      record expires between the two steps is already visible in the refs
  C5  list and read the index files
  C6  list the packs -- after C5, so a pack and index that land in between show up as an
      unindexed pack, which is re-indexed, never deleted
  C7  execute condemnations written by earlier runs at least the grace period ago: a
      condemned pack is deleted only if every object of it that is live -- now counting
      also every root record the condemning run had not seen -- has a copy in a pack that
      is not condemned. The index files naming deleted packs are rewritten first (only
      those listed in C5), then the packs go, then the condemnation record.
  C8  condemn: packs that hold no live object (or, when mostly dead, after their live
      objects were copied to a new pack) and are older than the grace period are named in
      one new condemnation record, with the root records listed in C3.
  C9  re-index unindexed packs, drop expired root records no pending condemnation still
      needs, remove old temp files, release the lease.

On the local cache the caller holds an exclusive lock that keeps every writer out, so the
two phases may run back to back (``immediate``): nothing can start relying on a pack
between its condemnation and its deletion.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import CasError, ObjectMissingError
from ..reporting import SILENT, Reporter
from ..results import GcResult
from . import lease as lease_mod
from . import records
from .backend import Entry
from .graph import Root, expand
from .index import IdSet, Index, Location
from .memory import return_large_frees
from .objects import decompress
from .store import PackInfo, Store
from .verify import verified

ORPHAN_MIN_AGE = 3600.0  # seconds a pack without index or a temp upload is left to its push
COMPACT_AFTER = 64  # index files; past this many the listed ones are merged into one
DAY = 86400.0


@dataclass(frozen=True)
class Policy:
    """What a collection may do. Times are seconds."""

    grace: float = 24 * 3600.0  # condemnation -> deletion; also the minimum age to condemn
    retention: float = 30 * DAY  # how long a root record keeps what it names live
    repack_below: float = 0.5  # a pack with less live data than this share is repacked
    dry_run: bool = False
    # The caller holds the store exclusively (the cache's lock keeps every writer and
    # collector out, and a killed holder's lock goes with it): delete in the same run, and
    # no lease is needed.
    immediate: bool = False
    lease_ttl: float = lease_mod.DEFAULT_TTL


class Snapshot:
    """An ObjectReader over the index the collector listed, reading through ``cache`` (the
    local cache, when collecting a remote) for objects it holds: same ids, same bytes."""

    def __init__(self, store: Store, index: Index, cache: Store | None = None) -> None:
        self.store = store
        self.index = index
        self.cache = cache

    def locate(self, oid: bytes) -> Location | None:
        return self.index.get(oid)

    def types_of(self, ids: np.ndarray) -> np.ndarray:
        return self.index.types_of(ids)

    def read(self, oid: bytes, *, verify: bool = True) -> tuple[int, bytes]:
        if self.cache is not None and self.cache.has(oid):
            return self.cache.read(oid, verify=verify)
        loc = self.index.get(oid)
        if loc is None:
            raise ObjectMissingError(f"object {oid.hex()} is not in {self.store.label}")
        raw = self.store.read_raw(loc)
        return loc.type, verified(oid, loc, raw, self.store.label) if verify else \
            decompress(raw, loc.codec, loc.raw_length)


def record_time(name: str) -> float:
    """A record's creation time, from its name (milliseconds since the epoch)."""
    return int(name[:15]) / 1000.0


def collect(store: Store, live_roots: Callable[[], list[Root]], policy: Policy, *,
            cache: Store | None = None, reporter: Reporter = SILENT) -> GcResult:
    """One collection of ``store``; see the module docstring."""
    res = GcResult(store=store.label, dry_run=policy.dry_run,
                   grace_hours=policy.grace / 3600, retention_days=policy.retention / DAY,
                   conditional_lease=store.backend.conditional_create)
    return_large_frees()
    lease = None if policy.dry_run or policy.immediate else \
        lease_mod.acquire(store, ttl=policy.lease_ttl)  # C1
    try:
        _Run(store, live_roots, policy, res, lease, cache, reporter).run()
    finally:
        if lease is not None:
            lease.release()
        store.invalidate()
    return res


class _Run:
    def __init__(self, store: Store, live_roots: Callable[[], list[Root]], policy: Policy,
                 res: GcResult, lease: lease_mod.Lease | None, cache: Store | None,
                 reporter: Reporter) -> None:
        self.store = store
        self.live_roots = live_roots
        self.policy = policy
        self.res = res
        self.lease = lease
        self.cache = cache
        self.reporter = reporter

    def run(self) -> None:
        store, res, policy = self.store, self.res, self.policy
        conds = records.read_condemnations(store)  # C2
        root_entries = records.list_root_records(store)  # C3
        # The clock is read here, before the refs: a record that passes its retention
        # after this instant was still live when the refs were read (protocol model).
        self.now = now = time.time()
        ref_roots = self.live_roots()  # C4
        names, parts = store.load_index()  # C5
        index = Index.merge(parts)
        listed = store.list_packs()  # C6
        self.index, self.names, self.parts, self.listed = index, names, parts, listed
        self.source = Snapshot(store, index, self.cache)
        self.record_roots: dict[str, tuple[Root, ...]] = {}

        in_retention = [n for n in root_entries if now - record_time(n) < policy.retention]
        res.root_records = len(root_entries)
        res.root_records_live = len(in_retention)
        base_roots = list(ref_roots) + self._roots_of(in_retention, root_entries)
        self.live = self._expand(base_roots)

        pending = [c for c in conds if now - c.time < policy.grace]
        due = [c for c in conds if now - c.time >= policy.grace]
        res.condemnations_pending = len(pending)
        self.condemned = {p for c in conds for p in c.packs}
        self._execute(due, root_entries)  # C7
        new = self._condemn({p for c in pending for p in c.packs}, set(root_entries))  # C8
        if new is not None and policy.immediate:
            self.condemned = set(new.packs) | {p for c in pending for p in c.packs}
            self._execute([new], root_entries)
        if len(self.names) > COMPACT_AFTER and not policy.dry_run:
            self._rewrite_index_files(set(), compact=True)
        self._tidy(root_entries, pending + ([new] if new and not policy.immediate else []))
        res.packs_kept = len(self.listed)
        res.bytes_kept = int(sum(i.size for i in self.listed.values()))

    # liveness --------------------------------------------------------------------------
    def _roots_of(self, names: list[str], entries: dict[str, Entry]) -> list[Root]:
        out: list[Root] = []
        for n in names:
            if n not in self.record_roots:
                rec = records.read_root_record(self.store, n, entries[n].size)
                self.record_roots[n] = rec.roots
            out.extend(self.record_roots[n])
        return out

    def _expand(self, roots: list[Root]) -> IdSet:
        missing: set[bytes] = set()
        live = expand(self.source, roots, missing=missing)
        unreadable = [m for m in missing if m in self.index]
        if unreadable:
            raise CasError(f"could not read {len(unreadable)} tree(s) or recipe(s) from "
                           f"{self.store.label}; nothing was deleted (run 'cas fsck"
                           f"{'' if self.policy.immediate else ' --remote'}')")
        return live

    # C7 --------------------------------------------------------------------------------
    def _execute(self, due: list[records.Condemnation], root_entries: dict[str, Entry]) -> None:
        """Delete what the due condemnations named and is still dead, then the records."""
        if not due:
            return
        index, res = self.index, self.res
        pos = {p: i for i, p in enumerate(index.packs)}
        # Objects count as safe elsewhere only in packs that are listed and not condemned.
        ok_pack = np.array([p in self.listed and p not in self.condemned for p in index.packs],
                           dtype=bool)
        safe = Index(*index.subset(ok_pack[index.pack])) if len(index) else index
        deleting: set[str] = set()
        drop_rows: set[str] = set()
        for c in due:
            unseen = [n for n in root_entries if n not in c.seen]
            live = self.live | self._expand(self._roots_of(unseen, root_entries)) \
                if unseen else self.live
            live_rows = index.mask_of(live)
            for p in c.packs:
                if p not in pos:
                    continue  # not indexed (or already gone): nothing to do here
                if p not in self.listed:
                    drop_rows.add(p)  # deleted by an earlier, interrupted run
                    continue
                rows = (index.pack == pos[p]) & live_rows
                if rows.any() and not bool(safe.contains_many(index.ids()[rows]).all()):
                    res.packs_rescued.append(p)
                    continue
                deleting.add(p)
        if self.policy.dry_run:
            res.packs_deleted += sorted(deleting)
            res.bytes_freed += sum(self.listed[p].size for p in deleting)
            return
        if deleting or drop_rows:
            if self.lease is not None:
                self.lease.check()
            self._rewrite_index_files(deleting | drop_rows)
            for p in sorted(deleting):
                self.store.delete_pack(p)
                res.packs_deleted.append(p)
                res.bytes_freed += self.listed[p].size
        for c in due:
            records.delete_condemnation(self.store, c.name)
        self.listed = {n: i for n, i in self.listed.items() if n not in deleting}

    def _rewrite_index_files(self, gone: set[str], *, compact: bool = False) -> None:
        """Replace the listed index files that name ``gone`` packs (all of them, when
        compacting) by one without those packs' rows. Index files this run did not list are
        never touched."""
        affected = [(n, part) for n, part in zip(self.names, self.parts, strict=True)
                    if compact or gone.intersection(part[0])]
        if not affected:
            return
        if self.lease is not None:
            self.lease.check()
        merged = Index.merge([part for _, part in affected])
        keep = np.array([p not in gone for p in merged.packs], dtype=bool)
        rows = keep[merged.pack] if len(merged) else np.zeros(0, bool)
        new = self.store.write_index(*merged.subset(rows)) if rows.any() else None
        for n, _ in affected:
            if n != new:
                self.store.delete_index_file(n)
        self.res.index_files_replaced += len(affected)
        replaced = {n for n, _ in affected}
        kept = [(n, p) for n, p in zip(self.names, self.parts, strict=True)
                if n not in replaced]
        if new is not None:
            kept.append((new, merged.subset(rows)))
        self.names = [n for n, _ in kept]
        self.parts = [p for _, p in kept]

    # C8 --------------------------------------------------------------------------------
    def _condemn(self, pending: set[str], seen: set[str]) -> records.Condemnation | None:
        index, res, policy = self.index, self.res, self.policy
        if not len(index.packs):
            return None
        npacks = len(index.packs)
        mask = index.mask_of(self.live)
        lengths = index.length.astype(np.float64)
        live_bytes = np.bincount(index.pack, weights=lengths * mask, minlength=npacks)
        all_bytes = np.bincount(index.pack, weights=lengths, minlength=npacks)
        live_n = np.bincount(index.pack, weights=mask.astype(float), minlength=npacks)
        res.objects_kept = int(mask.sum())
        res.objects_dead = int((~mask).sum())
        doomed: list[str] = []
        sparse: list[int] = []
        for i, name in enumerate(index.packs):
            info = self.listed.get(name)
            if info is None or name in pending or not self._old_enough(info):
                continue
            if live_n[i] == 0:
                doomed.append(name)
            elif live_bytes[i] < policy.repack_below * all_bytes[i]:
                sparse.append(i)
        if policy.dry_run:
            res.packs_condemned = doomed + [index.packs[i] for i in sparse]
            res.packs_repacked = [index.packs[i] for i in sparse]
            if policy.immediate:
                res.packs_deleted += res.packs_condemned
                res.bytes_freed += int(sum(self.listed[p].size for p in doomed)) + \
                    int(sum(all_bytes[i] - live_bytes[i] for i in sparse))
            return None
        if sparse:
            # The live objects are copied first; only then is the old pack condemned.
            rows = np.nonzero(np.isin(index.pack, np.array(sparse, np.uint32)) & mask)[0]
            wanted = [(index.id_at(int(r)), index.location_at(int(r))) for r in rows]
            self.store.copy_objects(wanted, self.reporter)
            res.packs_repacked = [index.packs[i] for i in sparse]
            doomed += res.packs_repacked
            if self.policy.immediate:
                # The copies must count as safe homes for the live objects in C7 (no
                # writer runs meanwhile: the caller holds the store exclusively).
                self.names, self.parts = self.store.load_index()
                self.index = Index.merge(self.parts)
                self.listed = self.store.list_packs()
        if not doomed:
            return None
        if self.lease is not None:
            self.lease.check()
        name = records.write_condemnation(self.store, doomed, seen)
        res.packs_condemned = sorted(doomed)
        return records.Condemnation(name, self.now, "", tuple(sorted(doomed)),
                                    frozenset(seen))

    def _old_enough(self, info: PackInfo) -> bool:
        if self.policy.immediate:
            return True
        return info.mtime is not None and self.now - info.mtime >= self.policy.grace

    # C9 --------------------------------------------------------------------------------
    def _tidy(self, root_entries: dict, pending: list[records.Condemnation]) -> None:
        store, res, policy = self.store, self.res, self.policy
        indexed = set(self.index.packs)
        orphans = [i for n, i in self.listed.items() if n not in indexed]
        old = [i for i in orphans if policy.immediate or
               (i.mtime is not None and self.now - i.mtime >= ORPHAN_MIN_AGE)]
        res.unindexed_packs = len(orphans)
        expired = [n for n in root_entries
                   if self.now - record_time(n) >= policy.retention
                   and all(n in c.seen for c in pending)]
        tmp_age = 0.0 if policy.immediate else max(policy.grace, ORPHAN_MIN_AGE)
        tmp = [e for e in store.list_tmp()
               if e.mtime is not None and self.now - e.mtime >= tmp_age]
        if policy.dry_run:
            res.root_records_deleted = len(expired)
            return
        for info in old:
            try:
                store.reindex_pack(info.name, info.size)
                res.unindexed_reindexed += 1
            except CasError as exc:
                res.warnings.append(f"pack {info.name} has no index and an unreadable "
                                    f"trailer ({exc}); kept. Run 'cas fsck'")
        for n in expired:
            records.delete_root_record(store, n)
            res.root_records_deleted += 1
        for e in tmp:
            store.backend.delete(e.key)
            res.temp_files_deleted += 1

