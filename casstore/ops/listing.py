"""cas ls: the tracked artifacts, in the workspace or at a Git revision, and what a remote
holds of each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..pointer import Pointer, data_path_for
from ..results import LsEntry

if TYPE_CHECKING:
    from ..project import Project
    from ..remote.store import RemoteStore
    from ..store.index import Location
    from ..store.local import LocalStore

COMPLETE, PARTIAL, ABSENT = "complete", "partial", "absent"


@dataclass
class RemoteLsEntry(LsEntry):
    """An artifact and what the remote holds of it."""

    remote: str = ""
    remote_state: str = ABSENT  # complete | partial | absent
    objects: int = 0  # objects (trees, recipes, chunks) that rebuild it, as far as known
    objects_on_remote: int = 0


def _entry(ptr: Pointer, data: str, ptr_path: str) -> LsEntry:
    version = (ptr.meta or {}).get("version")
    return LsEntry(path=data, pointer=ptr_path, kind=ptr.kind, size=ptr.size,
                   digest=ptr.digest.hex(), chunks=ptr.chunks, files=ptr.files,
                   version=None if version is None else str(version))


def pointers(repo: Project, rev: str | None = None) -> list[tuple[str, str, Pointer]]:
    """(data path, pointer path, pointer) of the workspace, or of Git revision ``rev``."""
    if rev is None:
        out = []
        for ptr_path in repo.pointer_files():
            ptr = repo.load_pointer(ptr_path)
            out.append((repo.rel(data_path_for(ptr_path, ptr)), repo.rel(ptr_path), ptr))
        return out
    # Imported here (and the remote stack below, in ls): plain 'cas ls' reads only the
    # working tree's pointers and should not pay for Git views or fsspec at start-up.
    from ..view import TrackedView

    view = TrackedView(repo, rev)  # CasError naming the revision if Git does not know it
    return sorted((data, ptr_path, ptr) for data, (ptr_path, ptr) in view.pointers().items())


def ls(repo: Project, rev: str | None = None, remote: str | None = None) -> list[LsEntry]:
    """Tracked artifacts (at ``rev``); with ``remote`` ('' = the default remote), each
    says whether that remote holds all, part or none of the objects that rebuild it."""
    found = pointers(repo, rev)
    if remote is None:
        return [_entry(ptr, data, p) for data, p, ptr in found]
    # start-up: the remote stack and the object graph (fsspec, numpy: ~200 modules) only
    # for 'cas ls --remote'
    from ..reachability import root_of
    from ..store import records
    from ..store.graph import expand
    from .sync import open_remote_store

    rs = open_remote_store(repo, remote or None)
    # Objects only in condemned packs are deleted by the next gc: not really held.
    live = rs.index().without_packs(records.condemned_packs(rs))
    either = _Either(repo.cache, rs)
    out: list[LsEntry] = []
    for data, p, ptr in found:
        missing: set[bytes] = set()
        need = expand(either, [root_of(ptr, p)], missing=missing)
        total = need | missing
        held = sum(1 for oid in need if oid in live)
        state = ABSENT if not held else COMPLETE if held == len(total) else PARTIAL
        base = _entry(ptr, data, p)
        out.append(RemoteLsEntry(**base.to_dict(), remote=rs.name, remote_state=state,
                                 objects=len(total), objects_on_remote=held))
    return out


class _Either:
    """Reads the object graph from the cache where it can (no request), else from the
    remote, so that a fresh clone with an empty cache still learns what a folder holds."""

    def __init__(self, cache: LocalStore, rs: RemoteStore) -> None:
        self.cache, self.rs = cache, rs

    def locate(self, oid: bytes) -> Location | None:
        return self.cache.locate(oid) or self.rs.locate(oid)

    def read(self, oid: bytes, *, verify: bool = True) -> tuple[int, bytes]:
        if self.cache.has(oid):
            return self.cache.read(oid, verify=verify)
        return self.rs.read(oid, verify=verify)
