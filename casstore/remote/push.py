"""cas push: send the objects the pointers need and the remote lacks, pack by pack.

Plan: expand the pointers over the cache, look every needed id up in the remote's merged
index (vectorised), and for each local pack holding something to send decide:
  * whole: the remote has none of the pack's objects and what must go is at least half of
    it, so the local pack file is uploaded as it is (no copy, no re-encoding);
  * repack: otherwise (a colleague already pushed part of it, or most of the pack is
    unneeded) only the missing objects are copied into new packs in a staging folder.
Each pack is uploaded first and its index after, so a pack becomes visible only when whole;
packs run concurrently. A push killed half way resumes: finished packs are in the remote's
index and are not planned again, and a pack uploaded without its index is found by size and
only gets its index.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..atomic import atomic_write_bytes
from ..errors import CorruptObjectError
from ..hashing import digest_bytes
from ..reporting import Reporter
from ..store.index import Index, ids_array
from ..store.indexfile import encode_index
from ..store.local import LocalStore
from ..store.objects import ObjectType, decompress
from ..store.packfile import ENTRY_DTYPE
from .results import PushResult
from .session import gather_roots, open_store
from .store import RemoteStore

if TYPE_CHECKING:
    from ..repo import Repo

WHOLE_PACK_SHARE = 0.5


@dataclass(frozen=True)
class Upload:
    """One pack file to send, with the index that publishes it."""

    path: Path
    name: str
    index_bytes: bytes
    objects: int


def pack_entries(index: Index, rows: np.ndarray) -> np.ndarray:
    """ENTRY_DTYPE rows (id, type, codec, lengths, offset) for index rows ``rows``."""
    ents = np.empty(len(rows), ENTRY_DTYPE)
    ents["id"] = index.ids()[rows]
    for col in ("type", "codec", "raw_length", "offset", "length"):
        ents[col] = getattr(index, col)[rows]
    return ents


def push(repo: Repo, remote: str | None = None, targets: Sequence[str] | None = None, *,
         jobs: int | None = None, revs: Sequence[str] = (), all_branches: bool = False,
         all_tags: bool = False, all_commits: bool = False) -> PushResult:
    """Upload what the pointers need and the remote lacks; see the module docstring."""
    roots = gather_roots(repo, targets, revs=revs, all_branches=all_branches,
                         all_tags=all_tags, all_commits=all_commits)
    rs = open_store(repo, remote, jobs)
    res = PushResult(remote=rs.name)
    cache = repo.cache
    from ..reachability import expand

    with cache.lock(shared=True):
        missing: set[bytes] = set()
        need = expand(cache, roots, missing=missing)
        rindex = rs.index()
        if missing:
            absent = _absent(rindex, missing)
            for r in roots:
                if r.digest in absent:
                    res.missing.append(f"{r.name}: data is neither in the cache nor on "
                                       f"remote '{rs.name}'")
            inner = absent - {r.digest for r in roots}
            if inner:
                res.missing.append(f"{len(inner)} object(s) referenced by recipes or trees "
                                   "are missing from the cache; run 'cas fsck'")
        need_arr = ids_array(sorted(need))
        on_remote = rindex.contains_many(need_arr)
        res.objects_needed = len(need_arr)
        res.objects_present = int(on_remote.sum())
        send = need_arr[~on_remote]
        if len(send) == 0:
            return res
        lindex = cache.index()
        rows = lindex.rows_of(send)
        rows = rows[rows >= 0]
        whole, loose = _plan(lindex, rindex, rows)
        stage = rs.staging()
        try:
            uploads = [_whole_upload(cache, lindex, p) for p in whole]
            res.packs_uploaded = len(uploads)
            repacked = _repack(cache, lindex, loose, stage, rs.reporter)
            res.packs_repacked = len(repacked)
            uploads += repacked
            _send(rs, uploads, res)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    return res


def _absent(rindex: Index, ids: set[bytes]) -> set[bytes]:
    arr = ids_array(sorted(ids))
    on = rindex.contains_many(arr)
    return {bytes(x) for x in arr[~on].tolist()}


def _plan(lindex: Index, rindex: Index, rows: np.ndarray) -> tuple[list[int], np.ndarray]:
    """(local pack positions to send whole, other rows to repack)."""
    npacks = len(lindex.packs)
    lengths = lindex.length.astype(np.float64)
    total = np.bincount(lindex.pack, weights=lengths, minlength=npacks)
    held = np.bincount(lindex.pack, weights=rindex.contains_many(lindex.ids()).astype(float),
                       minlength=npacks)
    pack_of = lindex.pack[rows]
    sending = np.bincount(pack_of, weights=lengths[rows], minlength=npacks)
    is_whole = (sending > 0) & (held == 0) & (sending >= WHOLE_PACK_SHARE * total)
    whole = [int(p) for p in np.nonzero(is_whole)[0]]
    loose = rows[~is_whole[pack_of]]
    return whole, loose


def _whole_upload(cache: LocalStore, lindex: Index, pos: int) -> Upload:
    name = lindex.packs[pos]
    rows = np.nonzero(lindex.pack == pos)[0]
    ents = pack_entries(lindex, rows)
    ents = ents[np.argsort(ents["offset"], kind="stable")]
    return Upload(cache.pack_path(name), name,
                  encode_index([name], np.zeros(len(ents), np.uint32), ents), len(ents))


def _repack(cache: LocalStore, lindex: Index, rows: np.ndarray, stage: Path,
            reporter: Reporter) -> list[Upload]:
    """Copy the objects at ``rows`` into new packs under ``stage``, verified on the way."""
    if len(rows) == 0:
        return []
    order = np.lexsort((lindex.offset[rows], lindex.pack[rows]))
    staged = LocalStore(stage, fsync=False)
    total = int(lindex.length[rows].sum(dtype=np.int64))
    with staged.writer() as w, reporter.progress("packing objects to send", total) as bar:
        for r in rows[order]:
            r = int(r)
            oid = lindex.id_at(r)
            loc = lindex.location_at(r)
            raw = cache.read_raw(loc)
            if loc.type != ObjectType.RECIPE:
                data = decompress(raw, loc.codec, loc.raw_length)
                if digest_bytes(data) != oid:
                    raise CorruptObjectError(f"object {oid.hex()} in local pack {loc.pack} is "
                                             "corrupt; run 'cas fsck' before pushing")
            w.put_stored(oid, loc.type, loc.codec, loc.raw_length, raw)
            bar.advance(loc.length)
    out = []
    for name in w.packs:
        idx = (staged.index_dir / f"{name}.idx").read_bytes()
        out.append(Upload(staged.pack_path(name), name, idx, len(staged.read_trailer(name))))
    return out


def _send(rs: RemoteStore, uploads: list[Upload], res: PushResult) -> None:
    total = sum(u.path.stat().st_size + len(u.index_bytes) for u in uploads)

    def one(u: Upload) -> tuple[Upload, int]:
        return u, rs.upload_pack(u.path, u.name, u.index_bytes)

    rs.index_cache.mkdir(parents=True, exist_ok=True)
    with rs.reporter.progress(f"pushing to {rs.name}", total) as bar:
        for u, sent in rs.map(one, uploads):
            res.bytes_uploaded += sent
            res.objects_sent += u.objects
            # Keep a copy of what we published so the next push need not download it.
            with contextlib.suppress(OSError):
                atomic_write_bytes(rs.index_cache / f"{u.name}.idx", u.index_bytes)
            bar.advance(u.path.stat().st_size + len(u.index_bytes))
    rs.forget_index()
