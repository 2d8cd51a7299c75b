"""The object graph: which objects rebuild a set of roots (trees -> files -> recipes -> chunks).

A root is the top object of one pointer. The store does not know where roots come from
(workspace pointers, Git history, root records): callers hand them over.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..errors import CasError
from ..recipe import decode_recipe
from ..tree import tree_objects
from .index import IdBuffer, IdSet, Location
from .objects import ObjectType
from .trees import tree_loader


class ObjectReader(Protocol):
    """Where objects are located and read: a store, or the cache with a backend
    (``casstore.sources.ObjectSource``)."""

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


def expand(source: ObjectReader, roots: Iterable[Root], *,
           missing: set[bytes] | None = None) -> IdSet:
    """All object ids needed to rebuild ``roots`` that ``source`` can resolve, each once.

    Ids the source lacks are added to ``missing`` (when given) instead of raising, so that
    callers decide whether a gap is an error (checkout) or fine (gc keeps what exists).

    Memory grows by about 16 bytes per object, not per Python object: file and chunk ids
    are collected in ``IdBuffer``s and looked up in the source's index in vectorised
    batches (a million-file folder needs 16 MB of ids, where sets of bytes took ~200 MB).
    """
    trees: set[bytes] = set()  # one per tracked folder and subfolder: few
    files = IdBuffer()

    def lacks(oid: bytes) -> None:
        if missing is not None:
            missing.add(oid)

    for r in roots:
        if r.kind == "dir":
            if r.digest in trees:
                continue
            loc = source.locate(r.digest)
            if loc is None or loc.type != ObjectType.TREE:
                lacks(r.digest)
                continue
            trees.add(r.digest)

            def unreadable(oid: bytes) -> None:
                lacks(oid)
                if source.locate(oid) is not None:
                    trees.add(oid)  # damaged but present: kept, like a damaged top tree

            # Subtrees are followed (a folder is one tree per subfolder); one already
            # needed (shared by two roots) is not opened twice.
            try:
                for oid, kind, _size in tree_objects(tree_loader(source), r.digest,
                                                     trees.__contains__, unreadable):
                    if kind == "f":
                        files.add(oid)
                    else:
                        trees.add(oid)
            except CasError:
                lacks(r.digest)
        else:
            files.add(r.digest)
    file_ids = files.ids().without(IdSet.of(trees))
    present, recipes = _present(source, file_ids, lacks)
    chunks = IdBuffer()
    for digest in recipes:
        try:
            _, raw = source.read(digest, verify=False)
            rows = decode_recipe(raw)
        except CasError:
            lacks(digest)  # kept in the result: it is there, only unreadable
            continue
        chunks.extend(rows["id"])
    chunk_ids = chunks.ids().without(present)
    chunks_present, _ = _present(source, chunk_ids, lacks)
    return IdSet.union_of([IdSet.of(trees), present, chunks_present])


BATCH = 1 << 16  # ids looked up at once: bounds the temporaries of one lookup


def _present(source: ObjectReader, ids: IdSet, lacks: Callable[[bytes], None]
             ) -> tuple[IdSet, list[bytes]]:
    """(the ``ids`` the source holds, those of them that are recipes); ``lacks`` gets the
    others."""
    types_of = getattr(source, "types_of", None)
    keep = np.zeros(len(ids), dtype=bool)
    recipes: list[bytes] = []
    arr = ids.array()
    for a in range(0, len(arr), BATCH):
        part = arr[a:a + BATCH]
        if types_of is not None:
            types = types_of(part)
        else:  # an ObjectReader without a vectorised lookup: one locate per id
            types = np.array([_type(source.locate(x.tobytes())) for x in part], np.int16)
        keep[a:a + BATCH] = types >= 0
        for x in part[types < 0]:
            lacks(x.tobytes())
        recipes += [x.tobytes() for x in part[types == ObjectType.RECIPE]]
    return IdSet(ids.hi[keep], ids.lo[keep]), recipes


def _type(loc: Location | None) -> int:
    return -1 if loc is None else loc.type
