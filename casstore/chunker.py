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

BLOCK = 16 << 20


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

    def cut_stream(self, f: BinaryIO) -> Iterator[memoryview]:
        """Yield chunks of ``f`` in order; each view is valid until the next one is yielded."""
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
            data = view[:filled]
            pending: memoryview | None = None
            consumed = 0
            for ch in self._cdc.cut_buf(data):
                if pending is not None:
                    yield pending
                pending = ch.data
                consumed = ch.offset
            if pending is None:
                return
            if eof:
                yield pending
                return
            # The last cut of a block may be an artefact of the block's end: carry it over.
            tail = filled - consumed
            pending = None
            buf[:tail] = buf[consumed:filled]
            carry = tail
