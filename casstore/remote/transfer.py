"""Transfers between the cache and a remote: push and fetch, store to store.

**push** sends what the roots need and the remote lacks, pack by pack. Plan: expand the
roots over the cache, look every needed id up in the remote's index *without the packs a
collector has condemned* (they may be deleted: a push never relies on them), and for each
local pack holding something to send decide:
  * whole: the remote has none of the pack's objects and what must go is at least half of
    it, so the local pack file is uploaded as it is;
  * repack: otherwise only the missing objects are copied into new packs in a staging
    folder.
A pack whose name a condemnation record holds is never re-published under that name (the
collector may be about to delete that very key): it gets a new trailer entry, so a new
name. Each pack is uploaded first and its index after. Then the push writes its root
record (what it made reachable, the Git commit and branch), and re-checks (P5): it lists
the condemnation records and the index again, and uploads again whatever it relied on that
is now condemned or gone, so dedup can never lean on data that is about to be deleted,
however long the push took (docs/remotes.md, tests/test_collector_model.py).

**fetch** downloads what the roots need into the cache, verified, in stages:
  1. trees of tracked folders that the cache lacks (verified by hash);
  2. recipes of files that the cache lacks (parsed and size-checked, held in memory);
  3. chunks (verified by hash, written to local packs as they arrive);
  4. recipes are then verified by rebuilding their file digest from the cached chunks, and
     written with the trees, so the cache never holds a recipe whose data is absent or wrong.
"""

from __future__ import annotations

import shutil
import tempfile
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import xxhash

from ..errors import CasError, CorruptObjectError, PackGoneError, RemoteError
from ..files import chunk_list
from ..recipe import decode_recipe
from ..reporting import Reporter
from ..store import records
from ..store.graph import Root, expand
from ..store.index import Index, Location, ids_array, sort_order, split_ids
from ..store.indexfile import encode_index
from ..store.local import LocalStore
from ..store.memory import return_large_frees, trim
from ..store.objects import Codec, ObjectType
from ..store.packfile import salted_copy
from ..store.verify import verified
from ..tree import Node, decode_tree, subtree_nodes, tree_version
from .ranges import Downloader
from .results import FetchResult, PushResult
from .store import RemoteStore

WHOLE_PACK_SHARE = 0.5
MAX_ROUNDS = 4  # uploads of the same objects before a push gives up on a racing collector


@dataclass(frozen=True)
class Upload:
    """One pack file to send, with the index that publishes it."""

    path: Path
    name: str
    index_bytes: bytes
    objects: int


def push_objects(cache: LocalStore, rs: RemoteStore, roots: list[Root], *,
                 commit: str | None = None, branch: str | None = None) -> PushResult:
    """Upload what ``roots`` need and the remote lacks, then the push's root record."""
    res = PushResult(remote=rs.name)
    return_large_frees()
    with cache.lock(shared=True):
        missing: set[bytes] = set()
        need = expand(cache, roots, missing=missing)
        condemned = records.condemned_packs(rs)  # P1
        full = rs.index(refresh=True)  # P2
        rindex = full.without_packs(condemned)
        if missing:
            _report_missing(res, rs, roots, missing, full, rindex)
        need_arr = need.array()  # sorted, unique: 16 bytes per object
        res.objects_needed = len(need_arr)
        res.objects_present = int(rindex.contains_many(need_arr).sum())
        published: set[str] = set()
        for attempt in range(MAX_ROUNDS):
            send = need_arr[~rindex.contains_many(need_arr)]
            if len(send):
                published |= _upload(cache, rs, rindex, send, condemned, res)
            if attempt == 0:
                res.root_record = records.write_root_record(  # P4
                    rs, roots, commit=commit, branch=branch)
            condemned, rindex = _recheck(rs, published)  # P5
            if bool(rindex.contains_many(need_arr).all()):
                return res
            res.resent_after_gc += int((~rindex.contains_many(need_arr)).sum())
        raise RemoteError(f"push to '{rs.name}': a collector keeps condemning what this push "
                          f"uploads ({MAX_ROUNDS} rounds); run 'cas push' again once "
                          "'cas gc --remote' has finished")


def _recheck(rs: RemoteStore, published: set[str]) -> tuple[set[str], Index]:
    """(P5) The condemned packs, and the remote's index without them and without the packs
    this push published that are gone.

    Listed in this order: a collector deletes a pack's index rows before the pack and the
    condemnation record last, so either the record or the missing rows show what went. The
    packs this push published are checked one by one besides: it may have put a pack (or
    found it there) under the name of a pack being deleted, and put its index file back
    after the collector removed it, and then only the pack's absence tells (found by the
    protocol model, tests/test_collector_model.py)."""
    condemned = records.condemned_packs(rs)
    index = rs.index(refresh=True).without_packs(condemned)
    gone = [n for n, size in rs.map(lambda n: (n, rs.pack_size(n)), sorted(published))
            if size is None]
    return condemned, index.without_packs(gone)


def _report_missing(res: PushResult, rs: RemoteStore, roots: list[Root], missing: set[bytes],
                    full: Index, live: Index) -> None:
    arr = ids_array(sorted(missing))
    absent = {bytes(x) for x in arr[~live.contains_many(arr)].tolist()}
    doomed = {bytes(x) for x in arr[full.contains_many(arr) & ~live.contains_many(arr)]
              .tolist()}
    for r in roots:
        if r.digest in absent - doomed:
            res.missing.append(f"{r.name}: data is neither in the cache nor on remote "
                               f"'{rs.name}'")
    inner = absent - doomed - {r.digest for r in roots}
    if inner:
        res.missing.append(f"{len(inner)} object(s) referenced by recipes or trees are "
                           "missing from the cache; run 'cas fsck'")
    if doomed:
        res.warnings.append(f"{len(doomed)} object(s) this push needs are on remote "
                            f"'{rs.name}' only in packs a gc has condemned, and not in the "
                            "cache to send again: fetch them ('cas fetch') and push again "
                            "before the grace period ends")


def _upload(cache: LocalStore, rs: RemoteStore, rindex: Index, send: np.ndarray,
            condemned: set[str], res: PushResult) -> set[str]:
    """Send the objects ``send`` (P3); returns the names of the packs published."""
    lindex = cache.index()
    rows = lindex.rows_of(send)
    rows = rows[rows >= 0]
    whole, loose = _plan(lindex, rindex, rows, condemned)
    stage = rs.staging()
    try:
        uploads = [_whole_upload(cache, lindex, p) for p in whole]
        res.packs_uploaded += len(uploads)
        repacked = _repack(cache, lindex, loose, stage, rs.reporter)
        res.packs_built += len(repacked)
        uploads += repacked
        uploads = [_fresh_name(u, condemned, stage) for u in uploads]
        _send(rs, uploads, res)
        return {u.name for u in uploads}
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _fresh_name(u: Upload, condemned: set[str], stage: Path) -> Upload:
    """``u`` under a name no condemnation record holds (see the module docstring)."""
    path, name, n = u.path, u.name, u.objects
    while name in condemned:
        path, name, ents = salted_copy(path, stage)
        n = len(ents)
    if name == u.name:
        return u
    return Upload(path, name, encode_index([name], np.zeros(n, np.uint32), ents), n)


def _plan(lindex: Index, rindex: Index, rows: np.ndarray, condemned: set[str]
          ) -> tuple[list[int], np.ndarray]:
    """(local pack positions to send whole, other rows to repack)."""
    npacks = len(lindex.packs)
    lengths = lindex.length.astype(np.float64)
    total = np.bincount(lindex.pack, weights=lengths, minlength=npacks)
    held = np.bincount(lindex.pack, weights=rindex.holds(lindex).astype(float),
                       minlength=npacks)
    pack_of = lindex.pack[rows]
    sending = np.bincount(pack_of, weights=lengths[rows], minlength=npacks)
    is_whole = (sending > 0) & (held == 0) & (sending >= WHOLE_PACK_SHARE * total)
    is_whole &= np.array([p not in condemned for p in lindex.packs], dtype=bool)
    whole = [int(p) for p in np.nonzero(is_whole)[0]]
    loose = rows[~is_whole[pack_of]]
    return whole, loose


def _whole_upload(cache: LocalStore, lindex: Index, pos: int) -> Upload:
    name = lindex.packs[pos]
    rows = np.nonzero(lindex.pack == pos)[0]
    ents = lindex.entries_at(rows)
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
            try:
                verified(oid, loc, raw, "the cache")
            except CorruptObjectError:
                raise CorruptObjectError(f"object {oid.hex()} in local pack {loc.pack} is "
                                         "corrupt; run 'cas fsck' before pushing") from None
            w.put_stored(oid, loc.type, loc.codec, loc.raw_length, raw)
            bar.advance(loc.length)
    out = []
    for name in w.packs:
        idx = staged.backend.read(staged.index_key(name))
        out.append(Upload(staged.pack_path(name), name, idx, len(staged.read_trailer(name))))
    return out


def _send(rs: RemoteStore, uploads: list[Upload], res: PushResult) -> None:
    total = sum(u.path.stat().st_size + len(u.index_bytes) for u in uploads)

    def one(u: Upload) -> tuple[Upload, int]:
        return u, rs.publish_pack(u.path, u.name, u.index_bytes)

    # An upload holds parts of its pack in memory (s3fs reads ~50 MiB parts), so the packs
    # in flight are bounded by bytes, not by threads: 8 threads of 64 MiB packs took a push
    # of a million small files to 435 MB of RSS.
    with rs.reporter.progress(f"pushing to {rs.name}", total) as bar:
        for u, sent in rs.map(one, uploads, weight=lambda u: u.path.stat().st_size,
                              budget=rs.limits.in_flight):
            res.bytes_uploaded += sent
            res.objects_sent += u.objects
            bar.advance(u.path.stat().st_size + len(u.index_bytes))
    rs.invalidate()


def _locate_remote(rindex: Index, oid: bytes, name: str, missing: dict[str, int]
                   ) -> Location | None:
    loc = rindex.get(oid)
    if loc is None:
        missing[name] = missing.get(name, 0) + 1
    return loc


def fetch_objects(cache: LocalStore, rs: RemoteStore, roots: list[Root]) -> FetchResult:
    """Download into the cache every object ``roots`` need that it lacks."""
    res = FetchResult(remote=rs.name)
    return_large_frees()
    with cache.lock(shared=True):
        try:
            _fetch(rs, cache, roots, res)
        except PackGoneError:
            # A collector may have deleted a pack after we read the index (its live objects
            # then have copies elsewhere): read the index again, once. What arrived stays.
            rs.index(refresh=True)
            cache.invalidate()
            res.missing.clear()
            _fetch(rs, cache, roots, res)
    return res


def _fetch(rs: RemoteStore, cache: LocalStore, roots: list[Root], res: FetchResult) -> None:
    rindex = rs.index()
    dl = Downloader(rs)
    need = _Needs(cache, rindex, rs.name)
    for r in roots:
        if r.kind != "dir":
            need.add(r.digest, r.size, r.name)
    # The trees the cache lacks wait in an unnamed temp file (gone with the process, even
    # killed) as they were stored on the remote, until their files are in: a million-file
    # folder's trees are ~65 MB, which the download of its chunks need not hold.
    with tempfile.TemporaryFile(dir=cache.tmp_dir, prefix="fetch-trees-") as f:
        trees = _TreeSpill(f)
        _walk_trees(rs, cache, rindex, dl, roots, need, trees)
        need.flush()
        _fetch_rest(rs, cache, rindex, dl, need, trees, res)


def _walk_trees(rs: RemoteStore, cache: LocalStore, rindex: Index, dl: Downloader,
                roots: list[Root], need: _Needs, trees: _TreeSpill) -> None:
    """1. Trees of tracked folders, level by level: a folder is one tree per subfolder,
    and each level's trees name the next level's. Those the cache lacks are downloaded and
    spilled; every tree's files go to ``need`` as the tree is read, in batches, so no list
    of every file of the fetch is held."""
    level: list[tuple[bytes, str, Node | None]] = [
        (r.digest, r.name, None) for r in roots if r.kind == "dir"]
    seen: set[bytes] = set()
    while level:
        names: dict[bytes, tuple[str, Node | None]] = {}
        want: list[tuple[bytes, Location]] = []
        nxt: list[tuple[bytes, str, Node | None]] = []

        def visit(tid: bytes, raw: bytes, remote: bool, nxt: list[tuple[bytes, str, Node | None]]
                  = nxt, names: dict[bytes, tuple[str, Node | None]] = names) -> None:
            name, line = names[tid]
            try:
                if line is None and tree_version(raw) == 1:
                    for e in decode_tree(raw):
                        if e.digest is not None:
                            need.add(e.digest, e.size, name)
                    return
                for n in subtree_nodes(lambda _d, raw=raw: raw, tid, name, line):
                    if n.is_tree:
                        nxt.append((n.digest, f"{name}/{n.name}", n))
                    else:
                        need.add(n.digest, n.size, name)
            except CorruptObjectError as exc:
                where = f"remote '{rs.name}'" if remote else "the cache"
                fix = "'cas fsck --remote'" if remote else "'cas fsck'"
                raise CorruptObjectError(f"{name}: the folder tree {tid.hex()} from {where} "
                                         f"is refused ({exc}); run {fix}") from None

        for tid, name, line in level:
            if tid in seen:
                continue
            seen.add(tid)
            names[tid] = (name, line)
            if cache.has(tid):
                try:
                    raw = bytes(cache.read(tid)[1])
                except CasError:
                    pass
                else:
                    visit(tid, raw, False)
                    continue
            loc = _locate_remote(rindex, tid, name, need.missing)
            if loc is not None:
                if loc.type != ObjectType.TREE:
                    raise CorruptObjectError(f"{name}: remote object {tid.hex()} is not a "
                                             "folder tree")
                want.append((tid, loc))

        def arrived(tid: bytes, loc: Location, stored: memoryview, raw: bytes,
                    visit: Callable[[bytes, bytes, bool], None] = visit) -> None:
            trees.add(tid, loc, stored)
            visit(tid, raw, True)

        dl.fetch(want, "fetching folder lists", sink=arrived)
        level = nxt


def _fetch_rest(rs: RemoteStore, cache: LocalStore, rindex: Index, dl: Downloader,
                need: _Needs, trees: _TreeSpill, res: FetchResult) -> None:
    """2-4: recipes, chunks, then the recipes (verified) and the spilled trees."""
    # A recipe can be no larger than its file needs: bounded before it is downloaded, and
    # its rows before anything iterates over them.
    limits = rs.limits
    recipe_files = need.recipe_files
    recipes = dl.fetch(need.recipes_wanted, "fetching recipes",
                       max_raw={d: limits.recipe_max(recipe_files[d][0])
                                for d, _ in need.recipes_wanted})
    need.recipes_wanted = []
    recipe_rows = {}
    for digest, raw in recipes.items():
        size, name = recipe_files[digest]
        try:
            rows = decode_recipe(raw, expect_size=size, max_rows=limits.recipe_rows(size),
                                 max_chunk=limits.chunk_max)
        except CorruptObjectError as exc:
            raise CorruptObjectError(f"{name}: the recipe {digest.hex()} on remote "
                                     f"'{rs.name}' is refused ({exc}); run 'cas fsck "
                                     "--remote' there") from None
        recipe_rows[digest] = rows
        need.chunks(np.ascontiguousarray(rows["id"]), name)
    # 3. chunks, straight into the cache, in pack order. The plan is made as the downloads
    #    go (``fetch_rows``): what is held is one index row (8 bytes) per chunk.
    rows = need.chunk_rows()
    rows = rows[np.lexsort((rindex.offset[rows], rindex.pack[rows]))]
    trim()  # what the tree walk and the plan freed, before the downloads take their share
    res.objects_needed = len(rows) + len(recipes) + len(trees)
    # Downloads arrive as fast as the pack writer's thread can take them: a short queue
    # (16 MiB) keeps it busy without holding 64 MiB of copies. Each chunk comes once and
    # the cache lacks it, so the writer need not note the ids it writes.
    with cache.writer(queue_items=16, remember=False) as w:
        dl.fetch_rows(rindex, rows, f"fetching from {rs.name}", w)
    del rows
    # 4. recipes (once their file rebuilds to its digest) and trees, after the chunks: a
    #    tree in the cache promises its files.
    total = sum(recipe_files[d][0] for d in recipes)
    with cache.writer() as w, rs.reporter.progress("verifying files", total) as bar:
        for digest, raw in recipes.items():
            size, name = recipe_files[digest]
            ok = _rebuilds(cache, recipe_rows[digest], digest, size)
            bar.advance(size)
            if ok is None:
                continue  # some chunks are not on the remote: reported below
            if not ok:
                raise CorruptObjectError(f"{name}: the recipe on remote '{rs.name}' does "
                                         "not rebuild the file; run 'cas fsck --remote'")
            w.put(digest, ObjectType.RECIPE, raw, Codec.ZSTD, check_store=False)
        for tid, loc, stored in trees.items(limits.tree_max):
            w.put_stored(tid, ObjectType.TREE, loc.codec, loc.raw_length, stored)
    res.objects_fetched = dl.counts.objects
    res.bytes_downloaded = dl.counts.bytes
    res.ranges = dl.counts.ranges
    for name, n in sorted(need.missing.items()):
        res.missing.append(f"{name}: {n} object(s) are not on remote '{rs.name}'; push them "
                           "from a clone that has them")


def _rebuilds(cache: LocalStore, rows: object, digest: bytes, size: int) -> bool | None:
    """Whether the cached chunks listed by a recipe hash to the file digest (None when
    some chunk is not in the cache)."""
    h = xxhash.xxh3_128()
    n = 0
    for r in rows:  # type: ignore[attr-defined]
        cid = r["id"].tobytes()
        if not cache.has(cid):
            return None
        _, data = cache.read(cid)
        if len(data) != int(r["length"]):
            return False
        h.update(data)
        n += len(data)
    return n == size and h.digest() == digest


BATCH = 1 << 16  # files looked up at a time


class _TreeSpill:
    """Trees downloaded by a fetch, as the remote stored them, in a temp file until they
    may enter the cache; read back verified, like anything read from disk."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.rows: list[tuple[bytes, int, int, int, int]] = []  # id, codec, raw, at, length
        self.end = 0

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, tid: bytes, loc: Location, stored: memoryview) -> None:
        self.f.write(stored)
        self.rows.append((tid, loc.codec, loc.raw_length, self.end, len(stored)))
        self.end += len(stored)

    def items(self, tree_max: int) -> Iterator[tuple[bytes, Location, bytes]]:
        """(id, location, stored bytes) of each tree, checked against its id again."""
        self.f.flush()
        for tid, codec, raw_length, at, length in self.rows:
            self.f.seek(at)
            stored = self.f.read(length)
            loc = Location("(fetch spill)", ObjectType.TREE, codec, raw_length, at, length)
            if len(stored) != length:
                raise CorruptObjectError(f"folder tree {tid.hex()}: the fetch's temp file "
                                         "was cut short; run 'cas fetch' again")
            verified(tid, loc, stored, "the fetch's temp file", tree_max)
            yield tid, loc, stored


class _Needs:
    """What a fetch needs besides trees, gathered a batch of files at a time: the index
    rows (on the remote) of the chunks the cache lacks, 8 bytes each, and the recipes to
    download. Files come from the tree walk with the name that messages use (the tracked
    file, or the folder holding it); they are held only until their batch is looked up."""

    def __init__(self, cache: LocalStore, rindex: Index, remote: str) -> None:
        self.cache = cache
        self.rindex = rindex
        self.remote = remote
        self.missing: dict[str, int] = {}
        self.recipe_files: dict[bytes, tuple[int, str]] = {}  # one per multi-chunk file
        self.recipes_wanted: list[tuple[bytes, Location]] = []
        self._rows = array("q")
        self._lost: set[bytes] = set()  # files reported missing (once each)
        self._ids = bytearray()
        self._sizes = array("q")
        self._where = array("I")
        self._names: dict[str, int] = {}
        self._name_list: list[str] = []

    def add(self, digest: bytes, size: int, name: str) -> None:
        pos = self._names.get(name)
        if pos is None:
            pos = self._names[name] = len(self._name_list)
            self._name_list.append(name)
        self._ids += digest
        self._sizes.append(size)
        self._where.append(pos)
        if len(self._sizes) >= BATCH:
            self.flush()

    def name(self, pos: int) -> str:
        return self._name_list[int(pos)]

    def chunk_rows(self) -> np.ndarray:
        """The remote index rows of every chunk to download, each once."""
        self.flush()
        rows = np.unique(np.frombuffer(self._rows, dtype=np.int64))
        self._rows = array("q")
        return rows

    def chunks(self, ids: np.ndarray, name: str) -> None:
        """Chunks of one file (or of many one-chunk files): those the cache lacks."""
        ids = ids[~self.cache.index().contains_many(ids)]
        rows = self.rindex.rows_of(ids)
        types = np.full(len(ids), -1, dtype=np.int16)
        types[rows >= 0] = self.rindex.type[rows[rows >= 0]]
        lost = int((types < 0).sum())
        if lost:
            self.missing[name] = self.missing.get(name, 0) + lost
        wrong = np.nonzero((types >= 0) & (types != ObjectType.CHUNK))[0]
        if len(wrong):
            # A recipe's id is not the hash of its bytes: accepting one here would let a bad
            # index slip unverified bytes into the cache.
            raise CorruptObjectError(f"{name}: remote object {ids[wrong[0]].tobytes().hex()} "
                                     f"should be a chunk; run 'cas fsck --remote'")
        self._rows.frombytes(rows[types == ObjectType.CHUNK].astype(np.int64).tobytes())

    def flush(self) -> None:
        """Look the collected files up: in the cache, then on the remote."""
        if not len(self._sizes):
            return
        part, sizes, where = self._table()
        self._ids = bytearray()
        self._sizes = array("q")
        self._where = array("I")
        cache, rindex = self.cache, self.rindex
        local = cache.types_of(part)
        remote = local < 0
        for k in np.nonzero((local >= 0) & (local != ObjectType.CHUNK))[0]:
            digest, size, name = part[k].tobytes(), int(sizes[k]), self.name(where[k])
            try:
                ids = ids_array(cid for cid, _ in chunk_list(cache, digest, size))
            except CasError:
                remote[k] = True  # an unreadable recipe in the cache: fetch it again
                continue
            self.chunks(ids, name)
        rows = rindex.rows_of(part)
        types = np.full(len(part), -1, dtype=np.int16)
        types[rows >= 0] = rindex.type[rows[rows >= 0]]
        for k in np.nonzero(remote & (types < 0))[0]:
            digest = part[k].tobytes()
            if digest not in self._lost:
                self._lost.add(digest)
                name = self.name(where[k])
                self.missing[name] = self.missing.get(name, 0) + 1
        bad = np.nonzero(remote & (types >= 0) & (types != ObjectType.CHUNK)
                         & (types != ObjectType.RECIPE))[0]
        if len(bad):
            raise CorruptObjectError(f"{self.name(where[bad[0]])}: remote object "
                                     f"{part[bad[0]].tobytes().hex()} is a tree where a file "
                                     "was expected")
        self._rows.frombytes(rows[remote & (types == ObjectType.CHUNK)].tobytes())
        for k in np.nonzero(remote & (types == ObjectType.RECIPE))[0]:
            digest = part[k].tobytes()
            if digest not in self.recipe_files:
                self.recipe_files[digest] = (int(sizes[k]), self.name(where[k]))
                self.recipes_wanted.append((digest, rindex.location_at(int(rows[k]))))

    def _table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(digests, sizes, name positions) of the batch, one row per distinct digest (its
        first)."""
        ids = np.frombuffer(self._ids, dtype="V16")
        sizes = np.frombuffer(self._sizes, dtype=np.int64)
        where = np.frombuffer(self._where, dtype=np.uint32)
        if len(ids) < 2:
            return ids.copy(), sizes.copy(), where.copy()
        hi, lo = split_ids(ids)
        order = sort_order(hi, lo)  # stable: the first of equal ids comes first
        hi, lo = hi[order], lo[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
        keep = order[first]
        return ids[keep], sizes[keep], where[keep]
