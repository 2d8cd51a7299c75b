"""Random access to a tracked file's content in a store, without rebuilding the file.

``ContentReader(store, digest, size)`` maps byte ranges to the chunks of the file's recipe
and reads (and verifies) only those chunks, so reading a safetensors header or a Parquet
footer of a multi-gigabyte model costs a few chunk reads. ``open()`` wraps it in a
seekable binary file object for libraries that want one (pyarrow, torch).

With a ``fetch`` callable (see :mod:`casstore.sources`), objects the store lacks are
requested in one batch per read: the recipe first, then only the chunks covering the range.
A store with ``read_many`` (a remote read directly, ``casstore.remote.reading``) is asked
for the chunks of a read in batches of up to BATCH_BYTES, which it reads in few range
requests, instead of one request per chunk.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Protocol

import numpy as np

from .errors import CorruptObjectError, ObjectMissingError
from .files import chunk_list
from .store.index import Location

#: Copies what it can of the given object ids into the store it was made for.
Fetcher = Callable[[Collection[bytes]], None]
#: {id: decoded bytes} of a batch of chunks, each verified against its id.
ReadMany = Callable[[Sequence[bytes]], Mapping[bytes, bytes]]
# Bytes of chunks asked for at once by a batched read: large enough for the range requests
# of a batch to run side by side, small enough to bound what a read holds twice.
BATCH_BYTES = 32 << 20


class ChunkSource(Protocol):
    """What the reader needs from a store (LocalStore satisfies it)."""

    def locate(self, oid: bytes) -> Location | None: ...
    def read(self, oid: bytes, *, verify: bool = True) -> tuple[int, bytes]: ...


class ContentReader:
    """Reads byte ranges of one stored file (by digest) chunk by chunk, verified.

    A small LRU of decoded chunks makes the sequential small reads that file-format
    parsers do (header length, then header) cost one chunk read, not one per call.
    """

    CACHED_CHUNKS = 8

    def __init__(self, store: ChunkSource, digest: bytes, size: int, *,
                 fetch: Fetcher | None = None) -> None:
        self.store = store
        self.digest = digest
        self.size = size
        self.fetch = fetch
        if fetch is not None and store.locate(digest) is None:
            self._fetch([digest])
        chunks = chunk_list(store, digest, size)  # type: ignore[arg-type]
        self.ids: list[bytes] = [cid for cid, _ in chunks]
        lengths = np.fromiter((n for _, n in chunks), dtype=np.int64, count=len(chunks))
        self.ends = np.cumsum(lengths)
        self.starts = self.ends - lengths
        if (int(self.ends[-1]) if len(self.ends) else 0) != size:
            raise CorruptObjectError(f"chunk list of {digest.hex()} does not add up to {size} "
                                     "bytes")
        self._lru: OrderedDict[int, bytes] = OrderedDict()
        self.chunks_read = 0  # chunks fetched from the store (for callers measuring cost)
        self._read_many: ReadMany | None = getattr(store, "read_many", None)

    def _fetch(self, ids: list[bytes]) -> None:
        assert self.fetch is not None
        self.fetch(ids)
        invalidate = getattr(self.store, "invalidate", None)
        if invalidate is not None:
            invalidate()  # the index changed under us
        lacking = [oid for oid in ids if self.store.locate(oid) is None]
        if lacking:
            raise ObjectMissingError(f"object {lacking[0].hex()} of {self.digest.hex()} is "
                                     "neither in the cache nor on a remote")

    def _chunk(self, i: int) -> bytes:
        data = self._lru.get(i)
        if data is not None:
            self._lru.move_to_end(i)
            return data
        _, data = self.store.read(self.ids[i])
        if len(data) != int(self.ends[i] - self.starts[i]):
            raise CorruptObjectError(f"chunk {self.ids[i].hex()} has the wrong length")
        self.chunks_read += 1
        self._lru[i] = data
        if len(self._lru) > self.CACHED_CHUNKS:
            self._lru.popitem(last=False)
        return data

    def _first_chunk(self, offset: int) -> int:
        return int(np.searchsorted(self.ends, offset, side="right"))

    def read_at(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset`` (fewer only at the end of the file)."""
        if offset < 0 or length < 0:
            raise ValueError("offset and length must not be negative")
        end = min(offset + length, self.size)
        if offset >= end:
            return b""
        i = self._first_chunk(offset)
        if self._read_many is not None:
            return self._read_batched(offset, end, i)
        out = bytearray()
        if self.fetch is not None:
            last = self._first_chunk(end - 1)
            lacking = [self.ids[j] for j in range(i, last + 1)
                       if j not in self._lru and self.store.locate(self.ids[j]) is None]
            if lacking:
                self._fetch(lacking)
        pos = offset
        while pos < end:
            data = self._chunk(i)
            start = int(self.starts[i])
            out += data[pos - start:min(end, int(self.ends[i])) - start]
            pos = int(self.ends[i])
            i += 1
        return bytes(out)

    def _read_batched(self, offset: int, end: int, i: int) -> bytes:
        """Bytes [offset, end), starting in chunk ``i``, read through ``read_many``."""
        assert self._read_many is not None
        out = bytearray(end - offset)
        view = memoryview(out)
        pos = offset
        while pos < end:
            # Chunks i..j-1: those starting before end, up to BATCH_BYTES past pos (at
            # least one).
            j = int(np.searchsorted(self.starts, min(end, pos + BATCH_BYTES), side="left"))
            j = max(j, i + 1)
            # Held before anything below changes the LRU.
            held = {k: self._lru[k] for k in range(i, j) if k in self._lru}
            want = [self.ids[k] for k in range(i, j) if k not in held]
            got = self._read_many(want) if want else {}
            self.chunks_read += len(got)
            for k in range(i, j):
                data = held.get(k)
                if data is None:
                    data = got.get(self.ids[k])
                    if data is None:
                        raise ObjectMissingError(f"chunk {self.ids[k].hex()} of "
                                                 f"{self.digest.hex()} was not read")
                    if len(data) != int(self.ends[k] - self.starts[k]):
                        raise CorruptObjectError(f"chunk {self.ids[k].hex()} has the wrong "
                                                 "length")
                    if k >= j - self.CACHED_CHUNKS:
                        self._lru[k] = data
                        if len(self._lru) > self.CACHED_CHUNKS:
                            self._lru.popitem(last=False)
                start = int(self.starts[k])
                a, b = pos - start, min(end, int(self.ends[k])) - start
                view[pos - offset:pos - offset + b - a] = memoryview(data)[a:b]
                pos = start + b
            i = j
        return bytes(out)

    def span(self, offset: int, length: int) -> tuple[int, list[bytes]]:
        """(offset of ``offset`` inside its first chunk, ids of the chunks covering the range)."""
        if length <= 0 or offset >= self.size:
            return 0, []
        first = self._first_chunk(offset)
        last = self._first_chunk(min(offset + length, self.size) - 1)
        return offset - int(self.starts[first]), self.ids[first:last + 1]

    def open(self) -> io.BufferedReader:
        """A seekable, read-only binary file object over the content."""
        return io.BufferedReader(_RawContent(self), buffer_size=1 << 16)


def same_chunks(a: ContentReader, b: ContentReader, off_a: int, off_b: int,
                length: int) -> bool | None:
    """True when two ranges are provably equal because the same chunks cover them at the
    same alignment; None when only reading can tell."""
    ia, ids_a = a.span(off_a, length)
    ib, ids_b = b.span(off_b, length)
    if ids_a and ia == ib and ids_a == ids_b:
        return True
    return None


class _RawContent(io.RawIOBase):
    def __init__(self, reader: ContentReader) -> None:
        self._r = reader
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._r.size}[whence]
        pos = base + offset
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._r.read_at(self._pos, len(buf))
        n = len(data)
        memoryview(buf).cast("B")[:n] = data
        self._pos += n
        return n
