"""``casstore.open``: read tracked content as a seekable binary file, at any Git revision,
without checking it out.

Chunks are read lazily from the local cache; what the cache lacks is fetched from a remote
(when one is available, see ``casstore.sources``) and kept in the cache.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from . import sources
from .errors import PathError, RemoteError, UsageError
from .project import Project
from .reader import ChunkSource, ContentReader
from .sources import ObjectSource
from .view import Entry, TrackedView


class CasFile(io.RawIOBase):
    """A read-only, seekable raw file over one tracked file's content.

    ``read``/``readinto`` return as many bytes as asked for (fewer only at the end), so the
    object also works unbuffered. ``size`` is the content's length and ``reader`` the
    underlying ``ContentReader`` (its ``chunks_read`` counts chunks decoded).
    """

    def __init__(self, reader: ContentReader, name: str, *,
                 on_close: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.reader = reader
        self.name = name
        self.size = reader.size
        self._pos = 0
        self._on_close = on_close

    @property
    def mode(self) -> str:
        """Always "rb"."""
        return "rb"

    def readable(self) -> bool:
        """True: the content can be read."""
        return True

    def seekable(self) -> bool:
        """True: any offset can be read without reading what comes before."""
        return True

    def writable(self) -> bool:
        """False: tracked content is immutable; change it with 'cas add'."""
        return False

    def tell(self) -> int:
        """The current offset."""
        self._check_open()
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move to ``offset`` relative to the start, current position or end."""
        self._check_open()
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise OSError(22, "negative seek position")
        self._pos = pos
        return pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        """Fill ``buffer`` from the current offset; returns the byte count (0 at the end)."""
        self._check_open()
        view = memoryview(buffer).cast("B")
        data = self.reader.read_at(self._pos, len(view))
        n = len(data)
        view[:n] = data
        self._pos += n
        return n

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all remaining bytes when negative)."""
        self._check_open()
        if size is None or size < 0:
            size = max(0, self.size - self._pos)
        data = self.reader.read_at(self._pos, size)
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        """Everything from the current offset to the end."""
        return self.read(-1)

    def close(self) -> None:
        """Release the file (and the repository it opened, if any)."""
        if not self.closed:
            try:
                if self._on_close is not None:
                    self._on_close()
            finally:
                super().close()

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")


def source_for(repo: Project, remote: str | None,
               options: Mapping[str, Any] | None = None) -> ObjectSource:
    """The cache backed by ``remote`` (default: the default remote, if any; ``options``
    override its storage options); RemoteError if ``remote`` was named but cannot serve
    data."""
    src = sources.source_for(repo, remote, options=options)
    if src.backend is None and remote is not None:
        raise RemoteError(f"remote {remote!r} cannot serve data here; check 'cas remote list' "
                          "and that remote support is installed")
    return src


def resolve(repo: Project, path: str | os.PathLike[str], base: Path | None = None) -> str:
    """``path`` (relative to ``base``, default the repository root) as a root-relative path."""
    p = Path(path)
    if not p.is_absolute():
        p = (base or repo.root) / p
    rel = repo.rel(p)
    if rel == ".":
        raise PathError(f"{path} is the repository itself, not a tracked file")
    return rel


def open_entry(source: ObjectSource | ChunkSource, entry: Entry, *,
               on_close: Callable[[], None] | None = None) -> CasFile:
    """A ``CasFile`` over a file entry of a ``TrackedView``, read from ``source``: the
    cache with its backend (``ObjectSource``), or any ``ChunkSource`` such as a remote
    read directly (``casstore.remote.reading.RemoteReader``)."""
    if entry.kind != "file" or entry.digest is None:
        raise PathError(f"{entry.path} is a folder; open a file inside it")
    # Only a cache with a backend fills itself on demand; other sources read everything
    # they hold directly.
    fetch = source.fetch if getattr(source, "backend", None) is not None else None
    reader = ContentReader(source, entry.digest, entry.size, fetch=fetch)
    return CasFile(reader, entry.path, on_close=on_close)


def open(path: str | os.PathLike[str], rev: str | None = None,  # noqa: A001 - the API name
         repo: str | os.PathLike[str] | Project = ".", remote: str | None = None,
         mode: str = "rb") -> CasFile:
    """Open tracked content for reading, like the built-in ``open(path, "rb")``.

    ``path`` is a tracked file (``model.pth``) or a file inside a tracked folder
    (``data/train.parquet`` inside ``data``), relative to ``repo`` (a folder of the
    repository, or a ``Repo``). With ``rev`` (a branch, tag or commit), the pointer is
    read from Git at that revision, so no checkout is needed. Chunks are read lazily from
    the cache, then from ``remote`` (default: the default remote, if any); fetched chunks
    stay in the cache. Returns a seekable ``CasFile`` (an ``io.RawIOBase`` whose reads
    return all bytes asked for; the chunk cache inside serves small reads, so no extra
    buffering is added: a read decodes only the chunks it covers). Use it as a context
    manager. Raises ``PathError`` for untracked paths and ``ObjectMissingError``
    when data is in neither the cache nor a remote.
    """
    if mode not in ("rb", "br"):
        raise UsageError(f"casstore.open is read-only binary; mode must be 'rb', not {mode!r}")
    if isinstance(repo, Project):
        r, owned, base = repo, False, repo.root
    else:
        r, owned, base = Project(repo), True, Path(os.path.abspath(repo))
    try:
        rel = resolve(r, path, base)
        source = source_for(r, remote)
        entry = TrackedView(r, rev, source=source).find(rel)
        raw = open_entry(source, entry, on_close=r.close if owned else None)
    except BaseException:
        if owned:
            r.close()
        raise
    return raw
