"""cas fsck: verify every pack and object of a store.

Checks, per pack: the name equals the XXH3-128 of its entry table; the trailer parses; every
object decodes and hashes to its id (chunks, trees) or parses with all its chunks present
(recipes); every index entry matches its pack. Packs lacking an index file (left by a
killed command) are reported, and re-indexed from their trailer with repair=True.
"""

from __future__ import annotations

import numpy as np

from ..errors import CasError
from ..reporting import SILENT, Reporter
from ..results import FsckResult
from ..store.index import Index
from ..store.local import LocalStore
from ..store.objects import ObjectType
from ..store.packfile import pack_name
from ..store.verify import object_problem


def fsck(store: LocalStore, *, repair: bool = False, reporter: Reporter = SILENT) -> FsckResult:
    res = FsckResult()
    with store.lock(shared=True):
        index = store.index()
        packs = store.list_packs()
        on_disk = set(packs)
        indexed = set(index.packs)
        for p in sorted(indexed - on_disk):
            n = int(np.count_nonzero(index.pack == index.packs.index(p)))
            res.damaged.append(f"pack {p}: missing, {n} indexed objects lost")
        # Objects of unindexed packs count as present for recipes: they are on disk, and a
        # killed add's recipe sits in the same (not yet indexed) pack as its chunks.
        unindexed: set[bytes] = set()
        for name in sorted(on_disk - indexed):
            try:
                unindexed.update(e.tobytes() for e in store.read_trailer(name)["id"])
            except CasError:
                pass  # reported as damage below
        total = sum(store.pack_path(p).stat().st_size for p in packs)
        with reporter.progress("checking cache", total) as bar:
            for name in packs:
                path = store.pack_path(name)
                size = path.stat().st_size
                res.packs_checked += 1
                try:
                    entries = store.read_trailer(name)
                except CasError as exc:
                    res.damaged.append(f"pack {name}: {exc}")
                    bar.advance(size)
                    continue
                if pack_name(entries) != name:
                    res.damaged.append(f"pack {name}: entry table does not match its name "
                                       "(corrupt)")
                if name not in indexed:
                    if repair:
                        store.write_index([name], np.zeros(len(entries), np.uint32), entries,
                                          name)
                        res.repaired.append(f"pack {name}: index rebuilt from its trailer")
                    else:
                        res.warnings.append(f"pack {name}: not indexed (left by an interrupted "
                                            "command); 'cas fsck --repair' re-indexes it")
                else:
                    _check_index_rows(index, name, entries, res)
                _check_objects(store, name, entries, res, index, unindexed)
                bar.advance(size)
        leftovers = list(store.tmp_dir.glob("*")) if store.tmp_dir.is_dir() else []
        if leftovers:
            res.warnings.append(f"{len(leftovers)} temporary file(s) from interrupted commands "
                                "in the cache; 'cas gc' removes them")
    return res


def _check_index_rows(index: Index, name: str, entries: np.ndarray, res: FsckResult) -> None:
    """Every index row naming this pack must match an entry of the pack's own trailer, so a
    damaged or crafted index cannot send readers to the wrong bytes."""
    cols = ("type", "codec", "raw_length", "offset", "length")
    truth = {(e["id"].tobytes(), *(int(e[c]) for c in cols)) for e in entries}
    rows = index.entries_for_pack(index.packs.index(name))
    ids = index.ids()
    bad = [r for r in rows
           if (ids[r].tobytes(), *(int(getattr(index, c)[r]) for c in cols)) not in truth]
    for r in bad[:20]:
        res.damaged.append(f"index entry for object {ids[r].tobytes().hex()} in pack {name}: "
                           "does not match the pack's trailer (damaged index: move the "
                           "index folder away, then 'cas fsck --repair' rebuilds it)")
    if len(bad) > 20:
        res.damaged.append(f"pack {name}: {len(bad) - 20} more mismatched index entries")


def _check_objects(store: LocalStore, name: str, entries: np.ndarray, res: FsckResult,
                   index: Index, unindexed: set[bytes]) -> None:
    def present(ids: np.ndarray) -> np.ndarray:
        # Chunks of unindexed packs (left by a killed add) count as present.
        have = index.contains_many(ids)
        for k in np.nonzero(~have)[0]:
            have[k] = ids[k].tobytes() in unindexed
        return have

    with open(store.pack_path(name), "rb") as f:
        for e in entries:
            oid = e["id"].tobytes()
            otype = int(e["type"])
            res.objects_checked += 1
            f.seek(int(e["offset"]))
            raw = f.read(int(e["length"]))
            res.bytes_checked += len(raw)
            problem = object_problem(oid, otype, int(e["codec"]), int(e["raw_length"]), raw,
                                     present)
            if problem is not None:
                res.damaged.append(f"{ObjectType(otype).name.lower()} {oid.hex()} in pack "
                                   f"{name}: {problem}")
