"""The ``cas://`` fsspec filesystem: tracked content as read-only files, at any revision.

    fsspec.open("cas://model.pth", rev="v1.2.0")
    pandas.read_parquet("cas://data/train.parquet", storage_options={"repo": "/path/to/repo"})

Paths are relative to the repository root. Storage options: ``repo`` (a folder of the
repository, default the current one), ``rev`` (a Git revision; default the working tree's
pointers) and ``remote`` (where missing chunks come from; default the default remote).
Byte-range reads (``cat_file(start=, end=)``, seeks) decode only the chunks they cover.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import xxhash
from fsspec.spec import AbstractFileSystem

from .api import CasFile, open_entry, source_for
from .errors import PathError
from .gitutil import git, resolve_rev
from .repo import CAS_DIR, Repo
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
        self._commit_times: dict[str, float] = {}

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
            return [self._info(e) for e in entries]
        return [e.path for e in entries]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """Name, size, type ("file"/"directory"), xxh128 digest, pointer, executable bit
        and ``mtime`` (seconds; see ``modified``) of ``path``."""
        return self._info(self._entry(path))

    def _info(self, entry: Entry) -> dict[str, Any]:
        d = entry.info()
        d["mtime"] = self._mtime(entry)
        if entry.kind == "file":
            d["executable"] = entry.executable
        return d

    def _mtime(self, entry: Entry) -> float:
        """When this content last changed as far as casstore can tell, never a guess that
        moves by itself: at a revision, the commit's time (identical for every read of that
        commit, so readers' caches keyed on it stay valid); in the working tree, the time
        its pointer file was last written (re-adding changed data rewrites it)."""
        view = self.view()
        if view.commit is not None:
            t = self._commit_times.get(view.commit)
            if t is None:
                out = git(self.repo.root, "show", "-s", "--format=%ct", view.commit)
                t = self._commit_times[view.commit] = float(out.decode().strip() or 0)
            return t
        where = self.repo.root / entry.pointer if entry.pointer else self.repo.root / CAS_DIR
        try:
            return where.stat().st_mtime
        except OSError:
            return 0.0

    def modified(self, path: str) -> datetime:
        """See ``_mtime``: the commit's time at a revision, else the pointer's mtime."""
        return datetime.fromtimestamp(self._mtime(self._entry(path)), tz=timezone.utc)

    def created(self, path: str) -> datetime:
        """Content is never edited in place (a change is a new pointer), so creation and
        modification are the same moment."""
        return self.modified(path)

    def checksum(self, path: str) -> int:
        """The content digest as an integer (fsspec compares these to detect change)."""
        e = self._entry(path)
        if e.digest is not None:
            return int.from_bytes(e.digest, "big")
        return int.from_bytes(xxhash.xxh3_128_digest(e.path.encode()), "big")

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

    @property
    def fsid(self) -> str:
        """Which content this instance shows: the repository and the revision."""
        return f"cas:{self.repo.root}@{self.rev or 'worktree'}"

    def sign(self, path: str, expiration: int = 100, **kwargs: Any) -> str:
        raise PermissionError("cas:// content has no URL of its own to sign; read it "
                              "through the filesystem (or 'cas push' it to a remote)")

    # Read-only: every writing call says so in one line (fsspec's defaults would raise a
    # bare NotImplementedError, which reads like a missing feature).
    def _read_only(self, path: Any) -> PermissionError:
        return PermissionError(f"cas:// is read-only; cannot change {path} (track data "
                               "with 'cas add')")

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        raise self._read_only(path)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        raise self._read_only(path)

    def rmdir(self, path: str) -> None:
        raise self._read_only(path)

    def _rm(self, path: str) -> None:
        raise self._read_only(path)

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> None:
        raise self._read_only(path)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        raise self._read_only(path2)

    def mv(self, path1: Any, path2: Any, **kwargs: Any) -> None:
        raise self._read_only(path1)

    def touch(self, path: str, truncate: bool = True, **kwargs: Any) -> None:
        raise self._read_only(path)

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite",
                  **kwargs: Any) -> None:
        raise self._read_only(path)

    def put_file(self, lpath: str, rpath: str, callback: Any = None, mode: str = "overwrite",
                 **kwargs: Any) -> None:
        raise self._read_only(rpath)

    def __reduce__(self) -> Any:
        return (_rebuild, (str(self.repo.root), self.rev, self.remote))


def _rebuild(repo: str, rev: str | None, remote: str | None) -> CasFileSystem:
    return CasFileSystem(repo=repo, rev=rev, remote=remote)
