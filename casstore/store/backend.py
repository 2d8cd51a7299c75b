"""Where a store's files live: the small interface a Store needs, and the local directory.

A store (the cache, or a remote) is a set of named files under one root: ``packs/``,
``index/``, ``records/``, ``locks/``. Everything the Store does (indexes, the collector,
verification) goes through these few calls, so one implementation of each rule serves
the local cache and every remote. Keys are '/'-separated paths relative to the root.

The fsspec implementation (S3, any fsspec URL) is ``casstore.remote.fs.FsspecBackend``.
"""

from __future__ import annotations

import contextlib
import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..atomic import atomic_write_bytes, fsync_dir, tmp_name


@dataclass(frozen=True)
class Entry:
    """One file of a listing: key relative to the store's root, size, modification time."""

    key: str
    size: int
    mtime: float | None  # seconds since the epoch, when the backend reports it


class Backend(Protocol):
    """The calls a Store makes on its storage. Writes are atomic: a reader sees a file
    whole or not at all."""

    label: str  # how messages name this storage
    conditional_create: bool  # whether ``create`` is an atomic create-if-absent

    def list(self, folder: str) -> list[Entry]:
        """Every file under ``folder`` (recursively); an absent folder lists nothing."""
        ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        """Bytes [start, end) of ``key`` (the whole file by default); FileNotFoundError
        when absent."""
        ...

    def write(self, key: str, data: bytes) -> None:
        """Publish ``data`` under ``key`` (replacing it) atomically."""
        ...

    def upload(self, key: str, local: Path) -> None:
        """Publish the local file ``local`` under ``key`` atomically."""
        ...

    def create(self, key: str, data: bytes) -> bool:
        """Publish ``data`` under ``key`` only if ``key`` does not exist; False when it
        does. Where the storage has no conditional write, a plain write (see
        ``conditional_create``)."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key``; an absent key is not an error."""
        ...

    def size(self, key: str) -> int | None:
        """The size of ``key``, or None when absent."""
        ...


class DirBackend:
    """A store in a local directory (the cache)."""

    conditional_create = True  # link(2) fails on an existing name

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.fsync = fsync
        self.label = str(self.root)

    def path(self, key: str) -> Path:
        return self.root / key

    def list(self, folder: str) -> list[Entry]:
        base = self.root / folder
        out: list[Entry] = []
        stack = [base]
        while stack:
            d = stack.pop()
            try:
                it = os.scandir(d)
            except (FileNotFoundError, NotADirectoryError):
                continue
            with it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(Path(e.path))
                        continue
                    try:
                        st = e.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # deleted while listing
                    rel = Path(e.path).relative_to(self.root).as_posix()
                    out.append(Entry(rel, st.st_size, st.st_mtime))
        return out

    def read(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        with open(self.path(key), "rb") as f:
            if end is None:
                f.seek(start)
                return f.read()
            return os.pread(f.fileno(), max(0, end - start), start)

    def _parent(self, key: str) -> Path:
        p = self.path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write(self, key: str, data: bytes) -> None:
        atomic_write_bytes(self._parent(key), data, fsync=self.fsync)

    def upload(self, key: str, local: Path) -> None:
        dest = self._parent(key)
        tmp = tmp_name(dest)
        try:
            with open(local, "rb") as src, open(tmp, "wb") as out:
                while block := src.read(8 << 20):
                    out.write(block)
                out.flush()
                if self.fsync:
                    os.fsync(out.fileno())
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if self.fsync:
            fsync_dir(dest.parent)

    def create(self, key: str, data: bytes) -> bool:
        dest = self._parent(key)
        # Written completely under a temp name, then linked to the final name: link(2)
        # fails when the name exists, so readers never see a partial file and only one
        # creator wins.
        tmp = tmp_name(dest)
        atomic_write_bytes(tmp, data, fsync=self.fsync)
        try:
            os.link(tmp, dest)
        except FileExistsError:
            return False
        except OSError as exc:  # file systems without hard links: O_EXCL, then write
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
            try:
                fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if self.fsync:
            fsync_dir(dest.parent)
        return True

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(key))

    def size(self, key: str) -> int | None:
        try:
            return os.stat(self.path(key)).st_size
        except FileNotFoundError:
            return None
