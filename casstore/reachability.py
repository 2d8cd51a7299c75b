"""Which objects a set of pointers needs: trees -> files -> recipes -> chunks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .errors import CasError, PointerError
from .gitutil import pointer_blobs, read_blobs, revisions
from .pointer import Pointer, parse_pointer_bytes
from .recipe import decode_recipe
from .store.index import Location
from .store.objects import ObjectType
from .tree import decode_tree

if TYPE_CHECKING:
    from .repo import Repo


class ObjectSource(Protocol):
    def locate(self, oid: bytes) -> Location | None: ...
    def read(self, oid: bytes, *, verify: bool = True) -> tuple[int, bytes]: ...


@dataclass(frozen=True)
class Root:
    """The top object of one pointer."""

    digest: bytes
    kind: str
    size: int
    name: str


def root_of(ptr: Pointer, name: str) -> Root:
    return Root(ptr.digest, ptr.kind, ptr.size, name)


def workspace_roots(repo: Repo, targets: Iterable[str] | None = None) -> list[Root]:
    out = []
    for p in repo.pointer_files(list(targets) if targets else None):
        out.append(root_of(repo.load_pointer(p), repo.rel(p)))
    return out


def history_roots(repo: Repo, *, revs: Iterable[str] = (), all_branches: bool = False,
                  all_tags: bool = False, all_commits: bool = False) -> list[Root]:
    """Roots of every pointer in the named Git revisions; unparsable old pointers are skipped
    with a note (a bad pointer in history must not block gc of everything else)."""
    commits = revisions(repo.root, revs=revs, all_branches=all_branches, all_tags=all_tags,
                        all_commits=all_commits)
    blobs: dict[str, str] = {}
    for c in commits:
        for path, blob in pointer_blobs(repo.root, c).items():
            blobs.setdefault(blob, path)
    out = []
    for blob, data in read_blobs(repo.root, blobs).items():
        try:
            ptr = parse_pointer_bytes(data, f"{blobs[blob]} ({blob[:10]})")
        except PointerError as exc:
            repo.reporter.note(f"skipping unreadable pointer in history: {exc}")
            continue
        out.append(root_of(ptr, blobs[blob]))
    return out


def expand(source: ObjectSource, roots: Iterable[Root], *,
           missing: set[bytes] | None = None) -> set[bytes]:
    """All object ids needed to rebuild ``roots`` that ``source`` can resolve.

    Ids the source lacks are added to ``missing`` (when given) instead of raising, so that
    callers decide whether a gap is an error (checkout) or fine (gc keeps what exists).
    """
    need: set[bytes] = set()
    files: dict[bytes, int] = {}
    for r in roots:
        if r.kind == "dir":
            if r.digest in need:
                continue
            loc = source.locate(r.digest)
            if loc is None or loc.type != ObjectType.TREE:
                if missing is not None:
                    missing.add(r.digest)
                continue
            need.add(r.digest)
            try:
                _, raw = source.read(r.digest)
                for e in decode_tree(raw):
                    if e.digest is not None:
                        files[e.digest] = e.size
            except CasError:
                if missing is not None:
                    missing.add(r.digest)
        else:
            files[r.digest] = r.size
    for digest in files:
        if digest in need:
            continue
        loc = source.locate(digest)
        if loc is None:
            if missing is not None:
                missing.add(digest)
            continue
        need.add(digest)
        if loc.type == ObjectType.RECIPE:
            try:
                _, raw = source.read(digest, verify=False)
                rows = decode_recipe(raw)
            except CasError:
                if missing is not None:
                    missing.add(digest)
                continue
            for r in rows:
                cid = r["id"].tobytes()
                if cid in need:
                    continue
                if source.locate(cid) is None:
                    if missing is not None:
                        missing.add(cid)
                    continue
                need.add(cid)
    return need
