"""Bounds on what a store may make us allocate: sizes read from a remote or a pack are
checked against these before a byte is read, decompressed or decoded.

A remote's index files say how large each object is, and a remote may be damaged or
hostile (docs/security.md): a 16-byte zstd frame can expand to 4 GiB, a 48 KB index file can
claim 40 million rows. Every bound here follows from what a well-formed object can need:
a chunk never exceeds the repository's ``chunking.max``, a recipe lists at most one chunk
per ``chunking.min`` bytes of its file, a tree and an index file have hard caps. The values
travel explicitly (a ``Limits`` on the remote store), never through a global, so a caller
that knows the repository's chunking passes it down and one that does not gets the widest
bounds the format allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

# The widest chunk bounds a repository may configure (casstore.chunker.ChunkParams): the
# defaults when the chunking is not known.
CHUNK_MAX_ALLOWED = 16 << 20
CHUNK_MIN_ALLOWED = 64
RECIPE_HEAD = 16  # b"CASRCP01" + u64 count
RECIPE_ROW = 20  # 16-byte chunk id + u32 length
# A recipe's hard cap whatever its file's size: 13 million chunks, an 850 GB file at the
# mean chunk size.
RECIPE_MAX = 256 << 20
# A tree lists every file of a tracked folder in ~60-100 bytes per entry: 64 MiB holds
# about 700,000 entries, beyond the 600,000-file datasets the design names. Decoding one
# costs Python objects per entry, so this cap is what keeps a hostile tree within budget.
TREE_MAX = 64 << 20
# Bytes of range reads in flight at once across all download threads (plus the largest
# object each may decode): -j 256 must not multiply memory by 256.
IN_FLIGHT = 96 << 20


@dataclass(frozen=True)
class Limits:
    """What objects read from a store may claim; see the module docstring."""

    chunk_max: int = CHUNK_MAX_ALLOWED
    chunk_min: int = CHUNK_MIN_ALLOWED
    tree_max: int = TREE_MAX
    in_flight: int = IN_FLIGHT

    @classmethod
    def from_chunking(cls, chunking: dict[str, Any] | None, **over: int) -> Limits:
        """Limits for a repository whose ``chunking`` config section is given."""
        # start-up: the chunker imports pyfastcdc (~20 ms); most commands never need it
        from ..chunker import ChunkParams

        try:
            p = ChunkParams.from_dict(chunking or {})
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"the chunking section of the config is invalid ({exc})") \
                from None
        return cls(chunk_max=p.max, chunk_min=p.min, **over)

    def recipe_rows(self, size: int) -> int:
        """Most chunks a file of ``size`` bytes can have: every chunk but the last is at
        least ``chunk_min`` bytes."""
        return max(0, size) // self.chunk_min + 1

    def recipe_max(self, size: int | None = None) -> int:
        """Most bytes the recipe of a file of ``size`` bytes (any file, if not known) can
        take."""
        if size is None:
            return RECIPE_MAX
        return min(RECIPE_MAX, RECIPE_HEAD + RECIPE_ROW * self.recipe_rows(size))

    def raw_max(self, otype: int, size: int | None = None) -> int:
        """Most decoded bytes an object of type ``otype`` may claim (``size``: the size of
        the file a recipe rebuilds, when known)."""
        if otype == 0:
            return self.chunk_max
        if otype == 1:
            return self.recipe_max(size)
        return self.tree_max
