"""The object graph: which objects rebuild a set of roots (trees -> files -> recipes -> chunks).

A root is the top object of one pointer. The store does not know where roots come from
(workspace pointers, Git history, root records): callers hand them over.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from ..errors import CasError
from ..recipe import decode_recipe
from ..tree import tree_objects
from .index import Location
from .objects import ObjectType
from .trees import tree_loader


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

    def to_dict(self) -> dict[str, object]:
        return {"id": self.digest.hex(), "kind": self.kind, "size": self.size,
                "name": self.name}


def expand(source: ObjectSource, roots: Iterable[Root], *,
           missing: set[bytes] | None = None) -> set[bytes]:
    """All object ids needed to rebuild ``roots`` that ``source`` can resolve.

    Ids the source lacks are added to ``missing`` (when given) instead of raising, so that
    callers decide whether a gap is an error (checkout) or fine (gc keeps what exists).
    """
    need: set[bytes] = set()
    files: dict[bytes, int] = {}

    def lacks(oid: bytes) -> None:
        if missing is not None:
            missing.add(oid)

    for r in roots:
        if r.kind == "dir":
            if r.digest in need:
                continue
            loc = source.locate(r.digest)
            if loc is None or loc.type != ObjectType.TREE:
                lacks(r.digest)
                continue
            need.add(r.digest)

            def unreadable(oid: bytes) -> None:
                lacks(oid)
                if source.locate(oid) is not None:
                    need.add(oid)  # damaged but present: kept, like a damaged top tree

            # Subtrees are followed (a folder is one tree per subfolder); one already
            # needed (shared by two roots) is not opened twice.
            try:
                for oid, kind, size in tree_objects(tree_loader(source), r.digest,
                                                    need.__contains__, unreadable):
                    if kind == "f":
                        files[oid] = size
                    else:
                        need.add(oid)
            except CasError:
                lacks(r.digest)
        else:
            files[r.digest] = r.size
    for digest in files:
        if digest in need:
            continue
        loc = source.locate(digest)
        if loc is None:
            lacks(digest)
            continue
        need.add(digest)
        if loc.type == ObjectType.RECIPE:
            try:
                _, raw = source.read(digest, verify=False)
                rows = decode_recipe(raw)
            except CasError:
                lacks(digest)
                continue
            for r in rows:
                cid = r["id"].tobytes()
                if cid in need:
                    continue
                if source.locate(cid) is None:
                    lacks(cid)
                    continue
                need.add(cid)
    return need
