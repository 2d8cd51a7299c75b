"""cas fetch / cas pull: download what the pointers need into the cache, verified.

Stages, each one batch of concurrent range reads:
  1. trees of tracked folders that the cache lacks (verified by hash);
  2. recipes of files that the cache lacks (parsed and size-checked, held in memory);
  3. chunks (verified by hash, written to local packs as they arrive);
  4. recipes are then verified by rebuilding their file digest from the cached chunks, and
     written with the trees, so the cache never holds a recipe whose data is absent or wrong.
Byte ranges: the objects wanted from one remote pack are sorted by offset and neighbours
less than GAP apart are read in one request (up to SPAN bytes), so a pack that is mostly
needed is read almost whole and a pack that is barely needed costs a few small requests.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import xxhash

from ..errors import CasError, CorruptObjectError
from ..files import chunk_list
from ..hashing import digest_bytes
from ..reachability import Root
from ..recipe import decode_recipe
from ..store.index import Index, Location
from ..store.local import LocalStore, PackWriter
from ..store.objects import Codec, ObjectType, decompress
from ..tree import decode_tree
from .results import FetchResult, PullResult
from .session import gather_roots, open_store
from .store import RemoteStore

if TYPE_CHECKING:
    from ..repo import Repo

GAP = 1 << 20  # read through holes smaller than this rather than start a new request
SPAN = 8 << 20  # largest single range request


@dataclass(frozen=True)
class Span:
    """One range request: objects [(id, location)] inside pack bytes [start, end)."""

    pack: str
    start: int
    end: int
    objects: tuple[tuple[bytes, Location], ...]


def plan_spans(wanted: Iterable[tuple[bytes, Location]], *, gap: int = GAP,
               span: int = SPAN) -> list[Span]:
    """Group objects into few range requests per pack."""
    by_pack: dict[str, list[tuple[bytes, Location]]] = {}
    for oid, loc in wanted:
        by_pack.setdefault(loc.pack, []).append((oid, loc))
    out: list[Span] = []
    for pack, objs in sorted(by_pack.items()):
        objs.sort(key=lambda o: o[1].offset)
        cur: list[tuple[bytes, Location]] = []
        start = end = 0
        for oid, loc in objs:
            o_end = loc.offset + loc.length
            if cur and loc.offset - end <= gap and o_end - start <= span:
                cur.append((oid, loc))
                end = max(end, o_end)
                continue
            if cur:
                out.append(Span(pack, start, end, tuple(cur)))
            cur, start, end = [(oid, loc)], loc.offset, o_end
        if cur:
            out.append(Span(pack, start, end, tuple(cur)))
    return out


def _verified(oid: bytes, loc: Location, stored: bytes) -> bytes:
    """Decoded bytes of one downloaded object, checked against its id where it is a hash."""
    data = decompress(stored, loc.codec, loc.raw_length)
    if loc.type != ObjectType.RECIPE and digest_bytes(data) != oid:
        raise CorruptObjectError(f"object {oid.hex()} from remote pack {loc.pack} does not "
                                 "match its id")
    return data


class Downloader:
    """Runs span reads on the remote's thread pool and verifies every object."""

    def __init__(self, rs: RemoteStore, res: FetchResult) -> None:
        self.rs = rs
        self.res = res

    def _read(self, sp: Span) -> list[tuple[bytes, Location, bytes, bytes]]:
        """(id, location, stored bytes, decoded bytes) per object; one retry on bad data
        (a corrupted transfer), then the damage is reported."""
        for attempt in (0, 1):
            blob = self.rs.read_range(sp.pack, sp.start, sp.end)
            try:
                out = []
                for oid, loc in sp.objects:
                    a = loc.offset - sp.start
                    stored = blob[a:a + loc.length]
                    out.append((oid, loc, stored, _verified(oid, loc, stored)))
                return out
            except CorruptObjectError:
                if attempt:
                    raise CorruptObjectError(
                        f"remote '{self.rs.name}' pack {sp.pack} holds damaged objects; run "
                        "'cas fsck --remote' there") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def fetch(self, wanted: list[tuple[bytes, Location]], label: str,
              writer: PackWriter | None = None) -> dict[bytes, bytes]:
        """Download ``wanted``; with a writer, objects go to the cache and the result is
        empty, without one the decoded bytes are returned (trees, recipes)."""
        if not wanted:
            return {}
        spans = plan_spans(wanted)
        total = sum(s.end - s.start for s in spans)
        out: dict[bytes, bytes] = {}
        with self.rs.reporter.progress(label, total) as bar:
            for sp, objs in self.rs.map(lambda s: (s, self._read(s)), spans):
                self.res.ranges += 1
                self.res.bytes_downloaded += sp.end - sp.start
                for oid, loc, stored, data in objs:
                    self.res.objects_fetched += 1
                    if writer is not None:
                        if not writer.has(oid):
                            writer.put_stored(oid, loc.type, loc.codec, loc.raw_length, stored)
                    else:
                        out[oid] = data
                bar.advance(sp.end - sp.start)
        return out


def fetch(repo: Repo, remote: str | None = None, targets: Sequence[str] | None = None, *,
          jobs: int | None = None, revs: Sequence[str] = (), all_branches: bool = False,
          all_tags: bool = False, all_commits: bool = False) -> FetchResult:
    """Download into the cache every object the pointers need that it lacks."""
    roots = gather_roots(repo, targets, revs=revs, all_branches=all_branches,
                         all_tags=all_tags, all_commits=all_commits)
    rs = open_store(repo, remote, jobs)
    res = FetchResult(remote=rs.name)
    cache = repo.cache
    with cache.lock(shared=True):
        _fetch(rs, cache, roots, res)
    return res


def _locate_remote(rindex: Index, oid: bytes, name: str, missing: dict[str, int]
                   ) -> Location | None:
    loc = rindex.get(oid)
    if loc is None:
        missing[name] = missing.get(name, 0) + 1
    return loc


def _fetch(rs: RemoteStore, cache: LocalStore, roots: list[Root], res: FetchResult) -> None:
    rindex = rs.index()
    dl = Downloader(rs, res)
    missing: dict[str, int] = {}
    # 1. trees
    trees: dict[bytes, bytes] = {}
    files: dict[bytes, tuple[int, str]] = {}
    want: list[tuple[bytes, Location]] = []
    for r in roots:
        if r.kind == "dir":
            if cache.has(r.digest):
                try:
                    trees[r.digest] = cache.read(r.digest)[1]
                except CasError:
                    loc = _locate_remote(rindex, r.digest, r.name, missing)
                    if loc is not None:
                        want.append((r.digest, loc))
                continue
            loc = _locate_remote(rindex, r.digest, r.name, missing)
            if loc is not None:
                if loc.type != ObjectType.TREE:
                    raise CorruptObjectError(f"{r.name}: remote object {r.digest.hex()} is not "
                                             "a folder tree")
                want.append((r.digest, loc))
        else:
            files.setdefault(r.digest, (r.size, r.name))
    new_trees = dl.fetch(want, "fetching folder lists")
    dir_names = {r.digest: r.name for r in roots if r.kind == "dir"}
    for tid, raw in [*trees.items(), *new_trees.items()]:
        for e in decode_tree(raw):
            if e.digest is not None:
                files.setdefault(e.digest, (e.size, f"{dir_names.get(tid, '?')}/{e.path}"))
    # 2. recipes and the chunk ids they name
    chunks: dict[bytes, str] = {}
    want = []
    for digest, (size, name) in files.items():
        loc = cache.locate(digest)
        if loc is not None:
            try:
                for cid, _ in chunk_list(cache, digest, size):
                    if not cache.has(cid):
                        chunks.setdefault(cid, name)
                continue
            except CasError:
                pass  # an unreadable recipe in the cache: fetch the file's objects again
        loc = _locate_remote(rindex, digest, name, missing)
        if loc is None:
            continue
        if loc.type == ObjectType.CHUNK:
            chunks.setdefault(digest, name)
        elif loc.type == ObjectType.RECIPE:
            want.append((digest, loc))
        else:
            raise CorruptObjectError(f"{name}: remote object {digest.hex()} is a tree where a "
                                     "file was expected")
    recipes = dl.fetch(want, "fetching recipes")
    recipe_rows = {}
    for digest, raw in recipes.items():
        size, name = files[digest]
        rows = decode_recipe(raw, expect_size=size)
        recipe_rows[digest] = rows
        for r in rows:
            cid = r["id"].tobytes()
            if not cache.has(cid):
                chunks.setdefault(cid, name)
    # 3. chunks, straight into the cache
    want = []
    for cid, name in chunks.items():
        loc = _locate_remote(rindex, cid, name, missing)
        if loc is None:
            continue
        if loc.type != ObjectType.CHUNK:
            # A recipe's id is not the hash of its bytes: accepting one here would let a bad
            # index slip unverified bytes into the cache.
            raise CorruptObjectError(f"{name}: remote object {cid.hex()} should be a chunk; "
                                     "run 'cas fsck --remote'")
        want.append((cid, loc))
    res.objects_needed = len(want) + len(recipes) + len(new_trees)
    with cache.writer() as w:
        dl.fetch(want, f"fetching from {rs.name}", writer=w)
    # 4. recipes (once their file rebuilds to its digest) and trees
    total = sum(files[d][0] for d in recipes)
    with cache.writer() as w, rs.reporter.progress("verifying files", total) as bar:
        for digest, raw in recipes.items():
            size, name = files[digest]
            ok = _rebuilds(cache, recipe_rows[digest], digest, size)
            bar.advance(size)
            if ok is None:
                continue  # some chunks are not on the remote: reported below
            if not ok:
                raise CorruptObjectError(f"{name}: the recipe on remote '{rs.name}' does "
                                         "not rebuild the file; run 'cas fsck --remote'")
            w.put(digest, ObjectType.RECIPE, raw, Codec.ZSTD)
        for tid, raw in new_trees.items():
            w.put(tid, ObjectType.TREE, raw, Codec.ZSTD)
    for name, n in sorted(missing.items()):
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


def pull(repo: Repo, remote: str | None = None, targets: Sequence[str] | None = None, *,
         jobs: int | None = None, force: bool = False) -> PullResult:
    """Fetch, then check out the pointers."""
    fres = fetch(repo, remote, targets, jobs=jobs)
    repo.cache.invalidate()
    cres = repo.checkout(list(targets) if targets else None, force=force)
    return PullResult(fres, cres)
