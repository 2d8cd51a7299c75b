"""Part of a tracked folder from a remote: the trees on the path to it, so a fetch can
download that part alone (``cas fetch data/sub/dir``, ``cas pull data/f.bin``)."""

from __future__ import annotations

from ..errors import CorruptObjectError, ObjectMissingError
from ..store.graph import Root
from ..store.local import LocalStore
from ..store.objects import Codec, ObjectType
from ..tree import find, walk
from .ranges import Downloader
from .store import RemoteStore


def part_roots(cache: LocalStore, rs: RemoteStore, top: Root, sub: str) -> list[Root]:
    """The roots of the file or folder ``sub`` of the folder ``top`` names: its subtree
    (or file), found through the trees on its path. Those trees are fetched into the cache
    when it lacks them (all in one pack, not a pack each); the rest of the folder is not.
    A folder recorded as one version 1 tree has no subtree of its own: its part is the
    files below ``sub``."""
    dl = Downloader(rs)
    got: dict[bytes, bytes] = {}  # the trees on the path, downloaded by this call

    def load(tid: bytes) -> bytes:
        if tid in got:
            return got[tid]
        if cache.has(tid):
            return bytes(cache.read(tid)[1])
        loc = rs.index().get(tid)
        if loc is None:
            raise ObjectMissingError(f"{top.name}: its folder listing {tid.hex()} is not on "
                                     f"remote '{rs.name}'; push it from a clone that has it")
        if loc.type != ObjectType.TREE:
            raise CorruptObjectError(f"{top.name}: remote object {tid.hex()} is not a folder "
                                     "tree; run 'cas fsck --remote'")
        raw = dl.fetch([(tid, loc)], "fetching folder lists")[tid]  # verified by its id
        w.put(tid, ObjectType.TREE, raw, Codec.ZSTD, check_store=False)
        got[tid] = raw
        return raw

    name = f"{top.name}/{sub}"
    with cache.lock(shared=True), cache.writer() as w:
        found = find(load, top.digest, sub, top.name)
        if found.kind == "file":
            assert found.entry is not None and found.entry.digest is not None
            out = [Root(found.entry.digest, "file", found.entry.size, name)]
        elif found.tree is not None:
            out = [Root(found.tree, "dir", found.size, name)]
        else:
            out = [Root(e.digest, "file", e.size, f"{top.name}/{e.path}")
                   for e in walk(load, top.digest, sub) if e.digest is not None]
    cache.invalidate()
    return out
