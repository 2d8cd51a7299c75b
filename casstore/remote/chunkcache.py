"""A bounded folder of chunks read from a remote, shared by the processes of one machine.

Readers that have no repository cache (workers of a Dask or Ray job reading straight from
a remote, ``casstore.remote.reading``) may keep the chunks they read here, so that a second
pass over a dataset (the next epoch, another query) costs local reads. Unlike the
repository's cache it promises nothing: a chunk may be evicted at any moment, and one that
is missing is simply read from the remote again.

Layout: ``<folder>/chunks/ab/<32 hex digits>``, one file per chunk holding its decoded
bytes. Every file is written to a temporary name and renamed, and checked against its name
(XXH3-128) each time it is read: a torn or damaged file is deleted and reported as a miss,
never served.

The size limit is kept by eviction, least recently read first (a hit refreshes the file's
mtime). Each process counts what it adds and rescans the folder when it has added a tenth
of the limit since its last scan, so the folder exceeds its limit by at most a tenth of it
per process writing at once. Deleting a file another process is about to read costs that
process a miss, nothing more.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from pathlib import Path

from ..atomic import atomic_write_bytes, is_tmp_name
from ..errors import UsageError
from ..hashing import digest_bytes

CHUNKS = "chunks"
HEX_RE = re.compile(r"^[0-9a-f]{32}$")
# Eviction brings the folder down to this share of the limit, so that the next few
# additions do not start another scan at once.
LOW_WATER = 0.8
RESCAN_SHARE = 0.1
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1 << 10, "m": 1000 ** 2,
          "mb": 1000 ** 2, "mib": 1 << 20, "g": 1000 ** 3, "gb": 1000 ** 3, "gib": 1 << 30,
          "t": 1000 ** 4, "tb": 1000 ** 4, "tib": 1 << 40}
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(value: int | str) -> int:
    """Bytes from ``value``: an int, or text such as ``"512MiB"`` or ``"2 GB"`` (binary
    and decimal units). UsageError for anything else, or for less than 1 MiB."""
    if isinstance(value, bool):
        raise UsageError(f"cache_size must be a size such as '2GiB', not {value!r}")
    if isinstance(value, int):
        n = value
    else:
        m = _SIZE_RE.match(str(value))
        unit = m.group(2).lower() if m else ""
        if m is None or unit not in _UNITS:
            raise UsageError(f"cache_size {value!r} is not a size; write it like '512MiB' or "
                             "'2GB'")
        n = int(float(m.group(1)) * _UNITS[unit])
    if n < (1 << 20):
        raise UsageError(f"cache_size {value!r} is too small for a chunk cache (at least "
                         "1MiB)")
    return n


class ChunkCache:
    """Chunks by id in ``folder``, at most about ``max_bytes`` of them (module doc)."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = Path(folder)
        self.root = self.folder / CHUNKS
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._added = 0
        self._total: int | None = None  # as last scanned, plus what this process added
        self.hits = 0
        self.misses = 0
        self.dropped = 0  # damaged files found and deleted

    def path(self, oid: bytes) -> Path:
        h = oid.hex()
        return self.root / h[:2] / h

    def get(self, oid: bytes) -> bytes | None:
        """The chunk's bytes if the folder holds them intact, else None."""
        p = self.path(oid)
        try:
            data = p.read_bytes()
        except OSError:
            self.misses += 1
            return None
        if digest_bytes(data) != oid:
            # A torn write (a crash before the rename reached the disk) or a damaged disk:
            # never served; the caller reads the chunk from the remote again.
            with contextlib.suppress(OSError):
                p.unlink()
            self.dropped += 1
            self.misses += 1
            return None
        with contextlib.suppress(OSError):
            os.utime(p)  # most recently used: evicted last
        self.hits += 1
        return data

    def put(self, oid: bytes, data: bytes | memoryview) -> None:
        """Keep a chunk (already verified by the caller); errors writing are ignored: the
        cache is an optimisation, a full disk must not fail a read."""
        if len(data) > self.max_bytes * RESCAN_SHARE:
            return  # one chunk may not evict a tenth of the cache
        p = self.path(oid)
        if p.exists():
            return
        try:
            atomic_write_bytes(p, bytes(data))
        except OSError:
            return
        with self._lock:
            self._added += len(data)
            if self._total is not None:
                self._total += len(data)
            due = self._total is None or self._total > self.max_bytes \
                or self._added > self.max_bytes * RESCAN_SHARE
        if due:
            self.evict()

    def _scan(self) -> list[tuple[float, int, str]]:
        """(mtime, size, path) of every chunk file, and leftovers of killed writers removed."""
        out: list[tuple[float, int, str]] = []
        try:
            subdirs = list(os.scandir(self.root))
        except OSError:
            return out
        now = time.time()
        for d in subdirs:
            if not d.is_dir(follow_symlinks=False):
                continue
            with contextlib.suppress(OSError), os.scandir(d.path) as it:
                for e in it:
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if HEX_RE.match(e.name):
                        out.append((st.st_mtime, st.st_size, e.path))
                    elif is_tmp_name(e.name) and now - st.st_mtime > 3600:
                        with contextlib.suppress(OSError):
                            os.unlink(e.path)
        return out

    def evict(self) -> int:
        """Rescan the folder and delete the least recently used chunks while it is over
        its limit; returns the bytes it now holds."""
        with self._lock:
            files = self._scan()
            total = sum(size for _, size, _ in files)
            if total > self.max_bytes:
                files.sort()
                target = int(self.max_bytes * LOW_WATER)
                for _, size, path in files:
                    if total <= target:
                        break
                    with contextlib.suppress(OSError):
                        os.unlink(path)
                        total -= size
            self._total = total
            self._added = 0
            return total
