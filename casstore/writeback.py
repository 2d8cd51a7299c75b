"""Second threads for checkout: writing restored bytes, and hashing them back from the file.

Checking out through a buffer reads a run of chunks from a pack, verifies it, and writes it to
the workspace. The write is a kernel copy into the page cache as long as the read and the
hashing together, and it releases the GIL: done on its own thread, it overlaps with reading and
verifying the next run (measured: 1 GiB checkout 0.62 s -> 0.45 s on two cores).

When the kernel copies pack ranges into the file itself (``files._restore_ranges``), no bytes
pass through the process; ``WrittenHasher`` then hashes the file's own pages right behind the
copies, on the second core.
"""

from __future__ import annotations

import errno
import mmap
import os
import queue
import threading
from typing import BinaryIO

import xxhash


class BackgroundWriter:
    """Writes buffers to ``out`` in the order given, on its own thread.

    Buffers come from a small pool (``take``) and go back to it once written, so memory stays
    at ``count`` buffers whatever the file size. Use as a context manager: leaving it waits
    for every write and re-raises the first write error.
    """

    def __init__(self, out: BinaryIO, size: int, count: int = 3) -> None:
        self._out = out
        self._size = size
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._made = 0
        self._count = count
        self._todo: queue.SimpleQueue[tuple[bytes | bytearray, int, bool] | None] = \
            queue.SimpleQueue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="cas-restore-writer",
                                        daemon=True)
        self._thread.start()

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._todo.put(None)
        self._thread.join()
        if exc_type is None and self._error is not None:
            raise self._error

    def take(self, size: int) -> bytearray:
        """A buffer of at least ``size`` bytes that no pending write still uses."""
        if self._error is not None:
            raise self._error
        if self._made < self._count:
            self._made += 1
            return bytearray(max(size, self._size))
        buf = self._free.get()  # the thread hands every buffer back, even after an error
        return buf if len(buf) >= size else bytearray(size)

    def write(self, data: bytes | bytearray, length: int, *, pooled: bool) -> None:
        """Queue ``data[:length]``; a pooled buffer returns to the pool once written."""
        if self._error is not None:
            raise self._error
        self._todo.put((data, length, pooled))

    def _run(self) -> None:
        while (item := self._todo.get()) is not None:
            data, length, pooled = item
            if self._error is None:
                try:
                    self._out.write(memoryview(data)[:length])
                except BaseException as exc:  # re-raised in the caller's thread
                    self._error = exc
            if pooled:
                self._free.put(data)  # type: ignore[arg-type]


# MADV_POPULATE_READ (Linux 5.14): map a range's pages in one call, and report a read error as
# an errno instead of the SIGBUS a plain access would raise. Python's mmap module does not name
# it before 3.13; older kernels answer EINVAL and the pages are then faulted in by the hash.
MADV_POPULATE_READ = 22


class WrittenHasher:
    """XXH3-128 of bytes already written to a file, read back from the file itself.

    The hash runs on its own thread, behind the writes (``written(end)`` says the file holds
    its bytes up to ``end``), through a read-only mapping: no copy into a buffer. Hashing what
    the file holds, rather than what was handed to the kernel, also checks the kernel's copy
    (file systems have shipped ``copy_file_range`` bugs that left holes or stale blocks).

    ``fd`` must be a regular file already sized to at least ``end`` (mmap refuses to map past
    the end of a file). Memory: one window of WINDOW bytes of mapped page cache.
    """

    WINDOW = 16 << 20

    def __init__(self, fd: int, start: int, end: int) -> None:
        # The caller's descriptor is write-only; the mapping needs one opened for reading.
        self._rfd = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
        self._end = end
        self._pos = start
        self._map: mmap.mmap | None = None
        self._base = -1
        self._populate = True
        self._hash = xxhash.xxh3_128()
        self._todo: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        try:
            self._window(start)  # fails here, before anything is written, if mmap cannot
        except BaseException:
            os.close(self._rfd)
            raise
        self._thread = threading.Thread(target=self._run, name="cas-restore-hasher",
                                        daemon=True)
        self._thread.start()

    def __enter__(self) -> WrittenHasher:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._stop()

    def written(self, end: int) -> None:
        """The file now holds its final bytes up to offset ``end``."""
        if self._error is not None:
            raise self._error
        self._todo.put(end)

    def digest(self) -> bytes:
        """Wait for the hash to reach the last ``written`` offset; its digest."""
        self._stop()
        if self._error is not None:
            raise self._error
        return self._hash.digest()

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._todo.put(None)
            self._thread.join()
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._rfd >= 0:
            os.close(self._rfd)
            self._rfd = -1

    def _window(self, pos: int) -> mmap.mmap:
        base = pos - pos % self.WINDOW  # WINDOW is a multiple of the allocation granularity
        if base != self._base or self._map is None:
            if self._map is not None:
                self._map.close()
                self._map = None
            self._map = mmap.mmap(self._rfd, min(self.WINDOW, self._end - base),
                                  prot=mmap.PROT_READ, offset=base)
            self._base = base
        return self._map

    def _run(self) -> None:
        while (end := self._todo.get()) is not None:
            if self._error is not None:
                continue  # drain: the caller sees the error on its next call
            try:
                self._hash_to(end)
            except BaseException as exc:  # re-raised in the caller's thread
                self._error = exc

    def _hash_to(self, end: int) -> None:
        while self._pos < end:
            m = self._window(self._pos)
            a, b = self._pos - self._base, min(end - self._base, len(m))
            if self._populate:
                page = a - a % mmap.PAGESIZE
                try:
                    m.madvise(MADV_POPULATE_READ, page, b - page)
                except OSError as exc:
                    if exc.errno != errno.EINVAL:
                        raise
                    self._populate = False  # a kernel before 5.14
            with memoryview(m) as view:
                self._hash.update(view[a:b])
            self._pos = self._base + b
