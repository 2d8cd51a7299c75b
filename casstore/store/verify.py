"""Verification of one stored object, for every store (the cache and remotes)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import CasError, CorruptObjectError
from ..hashing import digest_bytes
from ..recipe import decode_recipe
from ..tree import check_tree
from .index import Location
from .limits import Limits
from .objects import ObjectType, decompress

WIDEST = Limits()


MISSING = "chunk(s) missing"


def object_problem(oid: bytes, otype: int, codec: int, raw_length: int, raw: bytes,
                   present: Callable[[np.ndarray], np.ndarray],
                   missing_suffix: str = "", limits: Limits = WIDEST) -> str | None:
    """What is wrong with one stored object, or None when it is sound.

    Chunks and trees must hash to their id (trees must also parse); a recipe must parse and
    every chunk it lists must be ``present`` (a vectorised membership test over ids).
    """
    try:
        data = decompress(raw, codec, raw_length, limits.raw_max(otype))
        if otype == ObjectType.RECIPE:
            have = present(np.ascontiguousarray(decode_recipe(data)["id"]))
            missing = int((~have).sum())
            return f"{missing} {MISSING}{missing_suffix}" if missing else None
        if digest_bytes(data) != oid:
            return "hash mismatch (corrupt)"
        if otype == ObjectType.TREE:
            check_tree(data)
    except CasError as exc:
        return str(exc)
    return None


def verified(oid: bytes, loc: Location, stored: bytes | memoryview, where: str,
             limit: int | None = None) -> bytes | memoryview:
    """Decoded bytes of one stored object, checked against its id where it is a hash
    (a recipe's id is its file's digest: checked when the file is rebuilt). ``limit``
    bounds the decoded size (by default the widest the format allows for its type)."""
    if limit is None:
        limit = WIDEST.raw_max(loc.type)
    data = decompress(stored, loc.codec, loc.raw_length, limit)
    if loc.type != ObjectType.RECIPE and digest_bytes(data) != oid:
        raise CorruptObjectError(f"object {oid.hex()} from pack {loc.pack} of {where} does "
                                 "not match its id")
    return data
