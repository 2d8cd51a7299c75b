"""cas fsck --remote: verify every pack and index of a remote.

Per pack: the name equals the XXH3-128 of its bytes, the trailer parses, every object
decodes and hashes to its id (chunks, trees) or parses with all its chunks present on the
remote (recipes), and the index entries agree with the trailer. Indexed packs that are
missing are damage; packs without an index (a push killed between pack and index) are
warnings, re-indexed from their trailer with repair=True.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import CasError
from ..store.index import Index
from ..store.objects import ObjectType
from ..store.packfile import decode_trailer, pack_name
from ..store.verify import object_problem
from .results import RemoteFsckResult
from .session import open_store

if TYPE_CHECKING:
    from ..repo import Repo


def remote_fsck(repo: Repo, remote: str | None = None, *, repair: bool = False,
                jobs: int | None = None) -> RemoteFsckResult:
    """Download and check every pack of a remote (this reads the whole remote)."""
    rs = open_store(repo, remote, jobs)
    res = RemoteFsckResult(remote=rs.name)
    rindex = rs.index(refresh=True)
    res.index_files = len(rs.index_names)
    listed = rs.list_packs()
    indexed = set(rindex.packs)
    for i, p in enumerate(rindex.packs):
        if p not in listed:
            n = int(np.count_nonzero(rindex.pack == i))
            if n:
                res.damaged.append(f"pack {p}: in the index but missing, {n} objects lost")
    names = sorted(listed)
    total = sum(listed[n].size for n in names)

    def check(name: str) -> tuple[str, int, list[str], np.ndarray | None]:
        size = listed[name].size
        blob = rs.read_range(name, 0, size) if size else b""
        return name, size, *_check_pack(blob, name, rindex, name in indexed)

    with rs.reporter.progress(f"checking remote {rs.name}", total) as bar:
        for name, size, problems, entries in rs.map(check, names, window=min(rs.jobs, 4)):
            res.packs_checked += 1
            res.bytes_checked += size
            res.damaged.extend(problems)
            if entries is not None:
                res.objects_checked += len(entries)
                if name not in indexed:
                    if repair:
                        rs.write_index([name], np.zeros(len(entries), np.uint32), entries,
                                       name=name)
                        res.repaired.append(f"pack {name}: index rebuilt from its trailer")
                    else:
                        res.warnings.append(f"pack {name}: not indexed (left by an interrupted "
                                            "push); 'cas fsck --remote --repair' indexes it")
            bar.advance(size)
    leftovers = rs.list_tmp()
    if leftovers:
        res.warnings.append(f"{len(leftovers)} temporary upload(s) in tmp/; 'cas gc --remote' "
                            "removes them after the grace period")
    return res


def _check_pack(blob: bytes, name: str, rindex: Index, is_indexed: bool
                ) -> tuple[list[str], np.ndarray | None]:
    problems: list[str] = []
    try:
        entries = decode_trailer(blob, len(blob))
    except CasError as exc:
        return [*problems, f"pack {name}: {exc}"], None
    if pack_name(entries) != name:
        problems.append(f"pack {name}: entry table does not match its name (corrupt)")
    if is_indexed:
        rows = rindex.rows_of(np.ascontiguousarray(entries["id"]))
        pos = rindex.packs.index(name)
        mine = rindex.pack == pos
        n_indexed = int(mine.sum())
        ok = (rows >= 0)
        if ok.any():
            r = rows[ok]
            same = (rindex.offset[r] == entries["offset"][ok]) & \
                (rindex.length[r] == entries["length"][ok])
            # An id may be indexed in another pack too (duplicates); only rows of this pack
            # must agree with the trailer.
            bad = int((~same & (rindex.pack[r] == pos)).sum())
            if bad:
                problems.append(f"pack {name}: {bad} index entries disagree with its trailer")
        if n_indexed > len(entries):
            problems.append(f"pack {name}: the index lists more objects than the pack holds")
        # A damaged id in an index row leaves the real object unindexed: unreachable.
        unindexed = int((rows < 0).sum())
        if unindexed:
            problems.append(f"pack {name}: {unindexed} of its objects are missing from the "
                            "index (damaged index file)")
    own: set[bytes] | None = None

    def present(ids: np.ndarray) -> np.ndarray:
        nonlocal own
        have = rindex.contains_many(ids)
        if not bool(have.all()):
            # Chunks in this very pack count too (it may not be indexed yet).
            own = own if own is not None else set(entries["id"].tolist())
            have |= np.array([x in own for x in ids.tolist()], dtype=bool)
        return have

    for e in entries:
        oid = e["id"].tobytes()
        otype = int(e["type"])
        raw = blob[int(e["offset"]):int(e["offset"]) + int(e["length"])]
        kind = ObjectType(otype).name.lower()
        problem = object_problem(oid, otype, int(e["codec"]), int(e["raw_length"]), raw,
                                 present, " on the remote")
        if problem is not None:
            problems.append(f"{kind} {oid.hex()} in pack {name}: {problem}")
    return problems, entries

