"""Content-defined chunking (FastCDC 2020 via pyfastcdc's Cython core).

Files are read in large blocks into reused buffers; the cut search runs in C with the GIL
released. Only the tail after the last cut of a block is carried into the next block, so
every byte is read from disk once. A consumer that writes a block out from another thread
can keep its buffer (``keep``) instead of copying the bytes, and hands it back when done.
"""

from __future__ import annotations

import queue
import warnings
from collections.abc import Callable, Iterator
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
BUFFERS = 4  # block buffers per chunker: enough for the writer to lag a few blocks behind
BUFFER_WAIT = 30.0


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
        # Buffers handed back by consumers. Few, and reused: touching fresh memory costs
        # page faults (measured: 30 buffers in flight doubled the system time of an add).
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._made = 0
        self._kept = False
        self._current = bytearray()

    def _take(self) -> bytearray:
        try:
            return self._free.get_nowait()
        except queue.Empty:
            pass
        if self._made >= BUFFERS:
            # Wait for a consumer to finish with one. The timeout only matters if a consumer
            # failed and never gave its buffer back: then we carry on with a new one.
            try:
                return self._free.get(timeout=BUFFER_WAIT)
            except queue.Empty:
                pass
        self._made += 1
        return bytearray(BLOCK + self.params.max)

    def keep(self) -> Callable[[], None]:
        """Keep the block just yielded by ``cut_blocks`` valid after the next one is read.

        Returns the function that gives its buffer back; call it exactly once, when nothing
        refers to the block's bytes any more (it is safe to call from another thread).
        """
        buf = self._current
        self._kept = True
        return lambda: self._free.put(buf)

    def cut_blocks(self, f: BinaryIO) -> Iterator[tuple[memoryview, list[int]]]:
        """Yield (block, ends): the complete chunks of each block read from ``f``.

        ``ends`` are the ascending end offsets of the chunks within ``block``, so chunk k is
        ``block[ends[k-1]:ends[k]]`` (from 0 for the first). The view is valid until the next
        block is requested, or until given back if the consumer called ``keep``. Working a
        block at a time lets callers hash, look up and copy many chunks per Python-level step.
        """
        buf = self._current = self._take()
        view = memoryview(buf)
        carry = 0
        try:
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
                    self._kept = False
                    yield view[:ends[-1]], ends
                if eof:
                    return
                consumed = ends[-1] if ends else 0
                if self._kept:
                    # The consumer still needs this buffer: continue in another one.
                    nxt = self._take()
                    nxt[:filled - consumed] = buf[consumed:filled]
                    buf = self._current = nxt
                    view = memoryview(buf)
                    self._kept = False
                else:
                    buf[:filled - consumed] = buf[consumed:filled]
                carry = filled - consumed
        finally:
            if not self._kept:
                self._free.put(buf)
            self._kept = False
