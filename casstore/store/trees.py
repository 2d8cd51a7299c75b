"""Tree objects read from a store: the ``tree.Loader`` every tree reader walks over."""

from __future__ import annotations

from typing import Protocol

from ..errors import CorruptObjectError, ObjectMissingError
from ..tree import Loader
from .index import Location
from .objects import ObjectType


class _Source(Protocol):
    def locate(self, oid: bytes) -> Location | None: ...
    def read(self, oid: bytes, *, verify: bool = True) -> tuple[int, bytes]: ...


def tree_loader(source: _Source, shown: str = "") -> Loader:
    """Tree bytes by digest from ``source`` (the cache, a remote store, an ObjectSource);
    ObjectMissingError when it lacks one, CorruptObjectError when the id is not a tree.
    ``shown`` names the tracked folder in messages."""
    where = f"{shown}: " if shown else ""

    def load(digest: bytes) -> bytes:
        loc = source.locate(digest)
        if loc is None:
            raise ObjectMissingError(f"{where}its folder listing {digest.hex()} is not in the "
                                     "cache; run 'cas pull' (or 'cas fetch') to download it")
        if loc.type != ObjectType.TREE:
            raise CorruptObjectError(f"{where}object {digest.hex()} is not a folder tree")
        return bytes(source.read(digest)[1])

    return load
