"""Content-defined chunking (FastCDC 2020 via pyfastcdc's Cython core).

Files are read in large blocks into one reused buffer; the cut search runs in C with the
GIL released. Only the tail after the last cut of a block is carried into the next block,
so every byte is read from disk once and copied at most once.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from .errors import CasError

with warnings.catch_warnings():
    # pyfastcdc silently falls back to pure Python (100x slower); we refuse that instead.
    warnings.simplefilter("ignore")
    try:
        from pyfastcdc.cy import FastCDC as _FastCDC
    except ImportError as exc:  # pragma: no cover - depends on the platform's wheel
        raise CasError(
            "pyfastcdc's compiled chunker is missing; reinstall it with "
            "'pip install --force-reinstall pyfastcdc' on a platform with wheels"
        ) from exc

BLOCK = 4 << 20


@dataclass(frozen=True)
class ChunkParams:
    """Chunk size bounds in bytes. ``avg`` is the mean chunk size we aim for."""

    avg: int = 64 << 10
    min: int = 16 << 10
    max: int = 256 << 10

    def as_dict(self) -> dict[str, int | str]:
        return {"algorithm": "fastcdc2020", "avg": self.avg, "min": self.min, "max": self.max}

    @classmethod
    def from_dict(cls, d: dict) -> ChunkParams:
        p = cls(avg=int(d.get("avg", cls.avg)), min=int(d.get("min", cls.min)),
                max=int(d.get("max", cls.max)))
        if not (64 <= p.min < p.avg < p.max <= 16 << 20):
            raise CasError(f"chunk sizes must satisfy 64 <= min < avg < max <= 16 MiB, got {d}")
        return p


class Chunker:
    """Cuts byte streams into chunks; reusable, not thread-safe."""

    def __init__(self, params: ChunkParams | None = None) -> None:
        self.params = params or ChunkParams()
        p = self.params
        # pyfastcdc's effective mean is avg_size + min_size (cut-point skipping), so ask for
        # the difference to land on the requested mean.
        self._cdc = _FastCDC(avg_size=p.avg - p.min, min_size=p.min, max_size=p.max)
        self._buf = bytearray(BLOCK + p.max)

    def cut_blocks(self, f: BinaryIO) -> Iterator[tuple[memoryview, list[int]]]:
        """Yield (block, ends): the complete chunks of each block read from ``f``.

        ``ends`` are the ascending end offsets of the chunks within ``block``, so chunk k is
        ``block[ends[k-1]:ends[k]]`` (from 0 for the first). The view is valid until the next
        block is requested. Working a block at a time lets callers hash, look up and copy
        many chunks per Python-level step.
        """
        buf = self._buf
        view = memoryview(buf)
        carry = 0
        while True:
            n = f.readinto(view[carry:carry + BLOCK])  # type: ignore[attr-defined]
            n = n or 0
            filled = carry + n
            eof = n == 0
            if filled == 0:
                return
            ends = [ch.offset + ch.length for ch in self._cdc.cut_buf(view[:filled])]
            if not eof and len(ends) > 1:
                # The last cut of a block may be an artefact of the block's end: carry it.
                ends.pop()
            elif not eof:
                ends = []  # only one (partial) chunk so far: read more before cutting
            if ends:
                yield view[:ends[-1]], ends
            if eof:
                return
            consumed = ends[-1] if ends else 0
            buf[:filled - consumed] = buf[consumed:filled]
            carry = filled - consumed

    def cut_stream(self, f: BinaryIO) -> Iterator[memoryview]:
        """Yield chunks of ``f`` in order; each view is valid until the next one is yielded."""
        for block, ends in self.cut_blocks(f):
            start = 0
            for end in ends:
                yield block[start:end]
                start = end
