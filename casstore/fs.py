"""The ``cas://`` fsspec filesystem: tracked content as read-only files, at any revision.

    fsspec.open("cas://model.pth", rev="v1.2.0")
    pandas.read_parquet("cas://data/train.parquet", storage_options={"repo": "/path/to/repo"})

Paths are relative to the repository root. Storage options: ``repo`` (a folder of the
repository, default the current one), ``rev`` (a Git revision; default the working tree's
pointers) and ``remote`` (where missing chunks come from; default the default remote).
Byte-range reads (``cat_file(start=, end=)``, seeks) decode only the chunks they cover.
"""

from __future__ import annotations

from typing import Any

from fsspec.spec import AbstractFileSystem

from .api import CasFile, open_entry, source_for
from .errors import PathError
from .gitutil import resolve_rev
from .repo import Repo
from .view import Entry, TrackedView, normalize


class CasFileSystem(AbstractFileSystem):
    """Read-only fsspec filesystem over one casstore repository (protocol ``cas``)."""

    protocol = "cas"
    root_marker = ""

    def __init__(self, repo: str = ".", rev: str | None = None, remote: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.repo = Repo(repo)
        self.rev = rev
        self.remote = remote
        self.source = source_for(self.repo, remote)
        self._view: TrackedView | None = None

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = str(path)
        if path.startswith("cas://"):
            path = path[len("cas://"):]
        elif path.startswith("cas::"):
            path = path[len("cas::"):]
        return normalize(path)

    def view(self) -> TrackedView:
        """The tracked content this filesystem shows: the working tree's pointers read
        afresh, or the revision's, re-resolved so that a branch that moved is followed."""
        if self.rev is None:
            return TrackedView(self.repo, None, source=self.source)
        commit = resolve_rev(self.repo.root, self.rev)
        if self._view is None or self._view.commit != commit:
            self._view = TrackedView(self.repo, commit, source=self.source)
        return self._view

    def _entry(self, path: str) -> Entry:
        try:
            return self.view().find(self._strip_protocol(path))
        except PathError:
            raise FileNotFoundError(path) from None

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        """Entries directly inside ``path`` (a file lists itself)."""
        try:
            entries = self.view().listdir(self._strip_protocol(path))
        except PathError:
            raise FileNotFoundError(path) from None
        if detail:
            return [e.info() for e in entries]
        return [e.path for e in entries]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """Name, size, type ("file"/"directory") and xxh128 digest of ``path``."""
        return self._entry(path).info()

    def exists(self, path: str, **kwargs: Any) -> bool:
        """Whether anything tracked is at ``path``."""
        try:
            self._entry(path)
            return True
        except FileNotFoundError:
            return False

    def cat_file(self, path: str, start: int | None = None, end: int | None = None,
                 **kwargs: Any) -> bytes:
        """Bytes ``[start, end)`` of a file; negative values count from the end."""
        f = self._open(path)
        try:
            size = f.size
            start = 0 if start is None else (max(0, size + start) if start < 0 else start)
            end = size if end is None else (max(0, size + end) if end < 0 else min(end, size))
            if end <= start:
                return b""
            return f.reader.read_at(start, end - start)
        finally:
            f.close()

    def _open(self, path: str, mode: str = "rb", block_size: int | None = None,
              autocommit: bool = True, cache_options: dict[str, Any] | None = None,
              **kwargs: Any) -> CasFile:
        if mode != "rb":
            raise PermissionError(f"cas:// is read-only; cannot open {path} with mode {mode!r}")
        entry = self._entry(path)
        if entry.kind != "file":
            raise IsADirectoryError(path)
        return open_entry(self.source, entry)

    def ukey(self, path: str) -> str:
        """The content digest: identical content has the same key at every revision."""
        e = self._entry(path)
        return e.digest.hex() if e.digest is not None else ""

    def __reduce__(self) -> Any:
        return (_rebuild, (str(self.repo.root), self.rev, self.remote))


def _rebuild(repo: str, rev: str | None, remote: str | None) -> CasFileSystem:
    return CasFileSystem(repo=repo, rev=rev, remote=remote)
