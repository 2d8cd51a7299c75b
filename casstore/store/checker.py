"""Verification of a whole store (``cas fsck``, ``cas fsck --remote``): one checker for the
cache and every remote.

Per pack: the name equals the XXH3-128 of its entry table, the trailer parses, every object
decodes and hashes to its id (chunks, trees) or parses with all its chunks present
(recipes), and every index row naming the pack matches its trailer. Indexed packs that are
missing are damage; packs without an index (a command killed between pack and index) are
warnings, re-indexed from their trailer with ``repair``. Root records and condemnation
records are read and validated; condemned packs are listed (gc deletes them later).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np

from ..errors import CasError
from ..reporting import SILENT, Reporter
from ..results import FsckResult
from . import records
from .collector import Snapshot
from .graph import Root, expand
from .index import IdSet, Index, find_rows, sort_order, split_ids
from .memory import return_large_frees
from .objects import ObjectType
from .packfile import pack_name
from .store import Store
from .verify import MISSING, object_problem

COLS = ("type", "codec", "raw_length", "offset", "length")


def check_store(store: Store, *, repair: bool = False, reporter: Reporter = SILENT,
                fsck_command: str = "cas fsck",
                live_roots: Callable[[], list[Root]] | None = None,
                cache: Store | None = None) -> FsckResult:
    """Read and verify every pack, index file and record of ``store``.

    A recipe whose chunks are gone is damage when something needs it: ``live_roots`` (the
    caller's pointers and refs) plus every root record of the store. An unused one is what
    gc leaves when it deletes a dead pack of chunks but keeps the mostly-live pack holding
    their dead recipe: garbage, reported as a warning. Without ``live_roots`` every such
    recipe is damage.
    """
    res = FsckResult(store=store.label)
    return_large_frees()
    names, parts = store.load_index()
    res.index_files = len(names)
    index = Index.merge(parts)
    del parts  # the decoded files: as big as the index again, and not needed past here
    live: IdSet | None = None
    if live_roots is not None:
        roots = list(live_roots())
        for n, e in records.list_root_records(store).items():
            with contextlib.suppress(CasError, FileNotFoundError):
                roots += records.read_root_record(store, n, e.size).roots
        live = expand(Snapshot(store, index, cache), roots)
    listed = store.list_packs()
    indexed = set(index.packs)
    for i, p in enumerate(index.packs):
        if p not in listed:
            n = int(np.count_nonzero(index.pack == i))
            if n:
                res.damaged.append(f"pack {p}: in the index but missing, {n} objects lost")
    # Objects of unindexed packs count as present for recipes: they exist, and a killed
    # add's or push's recipe sits in the same (not yet indexed) pack as its chunks.
    unindexed: set[bytes] = set()
    for name in sorted(set(listed) - indexed):
        try:
            unindexed.update(e.tobytes() for e in store.read_trailer(name, listed[name].size)
                             ["id"])
        except CasError:
            pass  # reported as damage below

    def present(ids: np.ndarray) -> np.ndarray:
        have = index.contains_many(ids)
        for k in np.nonzero(~have)[0]:
            have[k] = ids[k].tobytes() in unindexed
        return have

    def one(name: str) -> tuple[str, list[str], int, np.ndarray | None]:
        return (name, *_check_pack(store, name, listed[name].size, index, name in indexed,
                                   present, fsck_command, live))

    total = sum(i.size for i in listed.values())
    garbage = 0
    with reporter.progress(f"checking {store.label}", total) as bar:
        # Packs are read in spans of at most SPAN bytes, two packs in flight: fsck's memory
        # stays a fixed amount whatever the store holds.
        for name, problems, unused, entries in store.map(one, list(listed), window=2):
            res.packs_checked += 1
            res.bytes_checked += listed[name].size
            res.damaged.extend(problems)
            garbage += unused
            if entries is not None:
                res.objects_checked += len(entries)
                if name not in indexed:
                    if repair:
                        store.write_index([name], np.zeros(len(entries), np.uint32), entries,
                                          name)
                        res.repaired.append(f"pack {name}: index rebuilt from its trailer")
                    else:
                        res.warnings.append(f"pack {name}: not indexed (left by an interrupted "
                                            f"command); '{fsck_command} --repair' indexes it")
            bar.advance(listed[name].size)
    if garbage:
        res.warnings.append(f"{garbage} unused recipe(s) name chunks gc has already deleted "
                            "(garbage no pointer, ref or push record needs; gc drops them "
                            "when it repacks their pack)")
    _check_records(store, res, listed)
    leftovers = store.list_tmp()
    if leftovers:
        res.warnings.append(f"{len(leftovers)} temporary file(s) from interrupted commands; "
                            "'cas gc' removes them")
    return res


def _check_records(store: Store, res: FsckResult, listed: dict[str, object]) -> None:
    roots = records.list_root_records(store)
    res.root_records = len(roots)
    for n, e in roots.items():
        try:
            records.read_root_record(store, n, e.size)
        except CasError as exc:
            res.damaged.append(str(exc))
    conds = records.list_condemnations(store)
    res.condemnation_records = len(conds)
    for n, e in conds.items():
        try:
            c = records.read_condemnation(store, n, e.size)
        except CasError as exc:
            res.damaged.append(str(exc))
            continue
        res.condemned_packs += [p for p in c.packs if p in listed]
    res.condemned_packs.sort()
    if res.condemned_packs:
        res.warnings.append(f"{len(res.condemned_packs)} pack(s) are condemned by gc and will "
                            "be deleted by a later gc run unless something needs them again")


SPAN = 8 << 20  # bytes of a pack read at once


def _spans(entries: np.ndarray) -> Iterator[tuple[int, int, np.ndarray]]:
    """(start, end, entry positions) of reads covering every entry, in offset order, each
    at most SPAN bytes unless one object alone is larger."""
    order = np.argsort(entries["offset"], kind="stable")
    offsets = entries["offset"].astype(np.int64)
    ends = offsets + entries["length"].astype(np.int64)
    first = 0
    while first < len(order):
        start = int(offsets[order[first]])
        last = first
        end = int(ends[order[first]])
        while last + 1 < len(order) and int(ends[order[last + 1]]) - start <= SPAN:
            last += 1
            end = max(end, int(ends[order[last]]))
        yield start, end, order[first:last + 1]
        first = last + 1


def _check_pack(store: Store, name: str, size: int, index: Index, is_indexed: bool,
                present: object, fsck_command: str, live: IdSet | None
                ) -> tuple[list[str], int, np.ndarray | None]:
    """(problems, unused recipes missing chunks, entries) of one pack."""
    problems: list[str] = []
    unused = 0
    try:
        entries = store.read_trailer(name, size)
    except CasError as exc:
        return [f"pack {name}: {exc}"], 0, None
    if pack_name(entries) != name:
        problems.append(f"pack {name}: entry table does not match its name (corrupt)")
    if is_indexed:
        problems += _index_rows_problems(index, name, entries, fsck_command)
    own = {e.tobytes() for e in entries["id"]}

    def have(ids: np.ndarray) -> np.ndarray:
        got = present(ids)  # type: ignore[operator]
        if not bool(got.all()):
            # Chunks in this very pack count too (it may not be indexed yet).
            got |= np.array([x.tobytes() in own for x in ids], dtype=bool)
        return got

    for start, end, positions in _spans(entries):
        blob = store.read_range(name, start, end)
        for e in entries[positions]:
            oid = e["id"].tobytes()
            otype = int(e["type"])
            a = int(e["offset"]) - start
            raw = blob[a:a + int(e["length"])]
            problem = object_problem(oid, otype, int(e["codec"]), int(e["raw_length"]), raw,
                                     have)
            if problem is None:
                continue
            if otype == ObjectType.RECIPE and problem.endswith(MISSING) and live is not None \
                    and oid not in live:
                unused += 1
                continue
            problems.append(f"{ObjectType(otype).name.lower()} {oid.hex()} in pack {name}: "
                            f"{problem}")
    return problems, unused, entries


def _index_rows_problems(index: Index, name: str, entries: np.ndarray,
                         fsck_command: str) -> list[str]:
    """Every index row naming this pack must match an entry of the pack's own trailer, so a
    damaged or crafted index cannot send readers to the wrong bytes; and every object of
    the pack must be indexed."""
    rows = index.entries_for_pack(index.packs.index(name))
    bad = rows[~_rows_match(index, rows, entries)]
    out = []
    for r in bad[:20]:
        out.append(f"index entry for object {index.id_at(int(r)).hex()} in pack {name}: does "
                   "not match the pack's trailer (damaged index: move the index folder away, "
                   f"then '{fsck_command} --repair' rebuilds it)")
    if len(bad) > 20:
        out.append(f"pack {name}: {len(bad) - 20} more mismatched index entries")
    unindexed = int((~index.contains_many(np.ascontiguousarray(entries["id"]))).sum())
    if unindexed:
        out.append(f"pack {name}: {unindexed} of its objects are missing from the index "
                   "(damaged index file)")
    return out


def _rows_match(index: Index, rows: np.ndarray, entries: np.ndarray) -> np.ndarray:
    """For each index row ``rows``, whether the pack's trailer ``entries`` has an entry with
    the same id, type, codec, lengths and offset; vectorised (a pack holds ~65,000 objects
    of 1 KiB, and fsck checks every pack)."""
    ehi, elo = split_ids(entries["id"])
    order = sort_order(ehi, elo)
    ehi, elo = ehi[order], elo[order]
    if bool(((ehi[1:] == ehi[:-1]) & (elo[1:] == elo[:-1])).any()):
        # One id twice in the trailer (a crafted pack): a row may match either entry.
        truth = {(e["id"].tobytes(), *(int(e[c]) for c in COLS)) for e in entries}
        return np.array([(index.id_at(int(r)), *(int(getattr(index, c)[r]) for c in COLS))
                         in truth for r in rows], dtype=bool)
    pos = find_rows(ehi, elo, index.hi[rows], index.lo[rows])
    ok = pos >= 0
    at = order[np.where(ok, pos, 0)] if len(order) else np.zeros(len(rows), np.intp)
    for c in COLS:
        if len(entries):
            ok &= getattr(index, c)[rows].astype(np.int64) == entries[c][at].astype(np.int64)
    return ok
