"""The ``cas://`` fsspec filesystem: tracked content as read-only files, at any revision.

    fsspec.open("cas://model.pth", rev="v1.2.0")
    pandas.read_parquet("cas://data/train.parquet", storage_options={"repo": "/path/to/repo"})
    dask.dataframe.read_parquet("cas://data", storage_options={
        "repo": ".", "rev": "v1", "remote": "origin", "cache": "none"})

Paths are relative to the repository root. Storage options: ``repo`` (a folder of the
repository, default the current one), ``rev`` (a Git revision; default the working tree's
pointers), ``remote`` (a configured remote's name, or a remote's URL) with
``remote_options`` (its fsspec storage options: endpoint_url, credentials), and ``cache``:

- ``"repo"`` (the default, unless ``remote`` is a URL): chunks come from the repository's
  cache, and what it lacks is fetched from the remote into it, as ``casstore.open`` does;
- ``"none"`` or a folder (with ``cache_size``, default 1 GiB): the filesystem reads the
  remote directly, by byte ranges of its packs, every chunk verified; a folder keeps the
  chunks read, within ``cache_size``, for every process of the machine. The pointers are
  read once, when the filesystem is made (``rev`` resolved to its commit then); pickled,
  the filesystem carries the remote and those pointers, so the processes it is sent to
  (Dask or Ray workers) need no checkout, no Git and no repository cache. ``roots``
  ({path: digest}) gives the pointers directly, with no repository at all.

Byte-range reads (``cat_file(start=, end=)``, seeks) decode only the chunks they cover.
"""

from __future__ import annotations

import os
import posixpath
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import xxhash
from fsspec.spec import AbstractFileSystem

from .api import CasFile, open_entry, source_for
from .errors import CasError, ObjectMissingError, PathError, UsageError
from .gitutil import git, resolve_rev
from .hashing import digest_bytes, parse_hex_id
from .pointer import SUFFIX, Pointer
from .recipe import decode_recipe
from .remote.chunkcache import parse_size
from .remote.config import RemoteSpec, check_url, redact_url, resolve
from .remote.reading import RemoteReader, shared_reader
from .repo import CAS_DIR, Repo
from .store.limits import Limits
from .store.objects import ObjectType
from .view import Entry, TrackedView, normalize

DEFAULT_CACHE_SIZE = 1 << 30
# Recipes read in one batch when a file of a tracked folder is opened (Direct): at most
# ~20 bytes per chunk each, so 256 recipes of 64 MiB files are about 5 MiB.
PREFETCH_RECIPES = 256


class CasFileSystem(AbstractFileSystem):
    """Read-only fsspec filesystem over one casstore repository (protocol ``cas``)."""

    protocol = "cas"
    root_marker = ""

    def __init__(self, repo: str = ".", rev: str | None = None, remote: str | None = None,
                 *, remote_options: dict[str, Any] | None = None,
                 cache: str | None = None, cache_size: int | str | None = None,
                 roots: dict[str, Any] | None = None,
                 chunking: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rev = rev
        self.remote = remote
        self.remote_options = dict(remote_options or {})
        self.cache = _cache_mode(cache, remote, roots)
        self._view: TrackedView | None = None
        self._commit_times: dict[str, float] = {}
        self.direct: Direct | None = None
        if self.cache == "repo":
            if roots is not None:
                raise UsageError("cas://: 'roots' are read straight from a remote; give "
                                 "'remote' a URL, or set 'cache' to 'none' or a folder")
            self.repo: Repo | None = Repo(repo)
            self.source = source_for(self.repo, remote, self.remote_options)
        else:
            self.repo = None
            self.direct = Direct.make(repo, rev, remote, self.remote_options, self.cache,
                                      cache_size, roots, chunking)

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
        afresh, or the revision's, re-resolved so that a branch that moved is followed;
        reading a remote directly, the pointers read when the filesystem was made."""
        if self.direct is not None:
            return self.direct.view()
        assert self.repo is not None
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
        if self.direct is not None:
            return self.direct.mtime
        assert self.repo is not None
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
        if self.direct is not None:
            reader = self.direct.reader()
            self.direct.prefetch_recipes(self.view(), entry, reader)
            return open_entry(reader, entry)
        return open_entry(self.source, entry)

    def ukey(self, path: str) -> str:
        """The content digest: identical content has the same key at every revision."""
        e = self._entry(path)
        return e.digest.hex() if e.digest is not None else ""

    @property
    def fsid(self) -> str:
        """Which content this instance shows: the repository and the revision (reading a
        remote directly: the remote and the pointers shown)."""
        if self.direct is not None:
            return self.direct.fsid
        assert self.repo is not None
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
        if self.direct is not None:
            # The remote and the pointers: a worker needs no repository, Git or cache.
            return (_rebuild_direct, (self.direct.storage_options(),))
        assert self.repo is not None
        return (_rebuild, (str(self.repo.root), self.rev, self.remote, self.remote_options))


def _rebuild(repo: str, rev: str | None, remote: str | None,
             remote_options: dict[str, Any] | None = None) -> CasFileSystem:
    return CasFileSystem(repo=repo, rev=rev, remote=remote, remote_options=remote_options)


def _rebuild_direct(options: dict[str, Any]) -> CasFileSystem:
    return CasFileSystem(**options)


def _is_url(remote: str) -> bool:
    """A remote's URL or path rather than the name of a configured remote (names are
    letters, digits, '.', '_' and '-', starting with a letter or digit)."""
    return "://" in remote or os.path.isabs(remote) or remote.startswith((".", "~"))


def _cache_mode(cache: str | None | bool, remote: str | None, roots: Any) -> str:
    """"repo", "none" or a folder (see the module doc)."""
    if cache is None:
        return "none" if roots is not None or (remote is not None and _is_url(remote)) \
            else "repo"
    if cache is False or cache == "none":
        return "none"
    if not isinstance(cache, str) or not cache:
        raise UsageError(f"cas://: cache must be 'repo', 'none' or a folder, not {cache!r}")
    if cache == "repo":
        return "repo"
    return os.path.abspath(os.path.expanduser(cache))


class Direct:
    """What a filesystem reading a remote directly needs: the remote, the pointers (read
    once), the chunk cache's folder and size; all of it travels in a pickle."""

    def __init__(self, spec: RemoteSpec, base: str, pointers: dict[str, dict[str, Any]],
                 chunking: dict[str, Any] | None, cache: str, cache_size: int,
                 rev: str | None) -> None:
        self.spec = spec
        self.base = base
        self.pointers = pointers
        self.chunking = chunking
        self.limits = Limits.from_chunking(chunking)
        self.cache = cache
        self.cache_size = cache_size
        self.rev = rev
        self.mtime = max((float(p.get("mtime", 0.0)) for p in pointers.values()),
                         default=0.0)
        self._view: tuple[int, TrackedView] | None = None

    @classmethod
    def make(cls, repo: str, rev: str | None, remote: str | None,
             remote_options: dict[str, Any], cache: str, cache_size: int | str | None,
             roots: dict[str, Any] | None, chunking: dict[str, Any] | None) -> Direct:
        """Resolve the remote and read the pointers: from ``roots`` if given, else from
        ``repo`` at ``rev`` (or its working tree)."""
        size = parse_size(cache_size) if cache_size is not None else DEFAULT_CACHE_SIZE
        r: Repo | None = None
        try:
            if remote is not None and _is_url(remote):
                check_url(remote)
                spec = RemoteSpec(redact_url(remote), remote, dict(remote_options))
                base = os.getcwd()
            else:
                r = Repo(repo)
                named = resolve(r.config, remote)
                spec = RemoteSpec(named.name, named.url, {**named.options, **remote_options})
                base = str(r.root)
                if chunking is None:
                    chunking = r.config.get("chunking")
            if roots is not None:
                direct = cls(spec, base, {}, chunking, cache, size, rev)
                direct.pointers = direct._resolve_roots(roots)
                return direct
            if r is None:
                r = Repo(repo)
                if chunking is None:
                    chunking = r.config.get("chunking")
            return cls(spec, base, _snapshot(r, rev), chunking, cache, size, rev)
        finally:
            if r is not None:
                r.close()

    def reader(self) -> RemoteReader:
        """The process's reader of the remote (made anew in a forked process)."""
        return shared_reader(self.spec, base=Path(self.base), limits=self.limits,
                             cache_folder=None if self.cache == "none" else Path(self.cache),
                             cache_bytes=self.cache_size)

    def view(self) -> TrackedView:
        pid = os.getpid()
        if self._view is None or self._view[0] != pid:
            table = {path: (p["pointer"], Pointer(posixpath.basename(path), p["kind"],
                                                  int(p["size"]), bytes.fromhex(p["digest"]),
                                                  executable=bool(p.get("executable"))))
                     for path, p in self.pointers.items()}
            self._view = (pid, TrackedView.fixed(table, self.reader(), rev=self.rev))
        return self._view[1]

    def prefetch_recipes(self, view: TrackedView, entry: Entry, reader: RemoteReader) -> None:
        """Before a file of a tracked folder is opened, read its recipe together with the
        recipes of the files after it in the folder (up to PREFETCH_RECIPES): a job reads
        many files of a folder, and recipes written by one ``cas add`` lie side by side
        in a pack, so one range request serves them all instead of one request per file."""
        if entry.digest is None or reader.has(entry.digest) or entry.pointer is None:
            return
        top = entry.pointer[:-len(SUFFIX)] if entry.pointer.endswith(SUFFIX) else None
        hit = view.pointers().get(top) if top is not None else None
        if hit is None or hit[1].kind != "dir" or not entry.path.startswith(top + "/"):
            return
        sub = entry.path[len(top) + 1:]
        files = [e for e in view.tree(hit[1].digest, top) if e.digest is not None]
        start = next((i for i, e in enumerate(files) if e.path == sub), None)
        if start is None:
            return
        index = reader.index()
        ids = []
        for e in files[start:start + PREFETCH_RECIPES]:
            assert e.digest is not None
            loc = index.get(e.digest)
            if loc is not None and loc.type == ObjectType.RECIPE and not reader.has(e.digest):
                ids.append(e.digest)
        if len(ids) > 1:
            reader.fetch(ids)

    @property
    def fsid(self) -> str:
        shown = ",".join(f"{k}={v['digest']}" for k, v in sorted(self.pointers.items()))
        return f"cas:{self.spec.shown()}@{digest_bytes(shown.encode()).hex()}"

    def storage_options(self) -> dict[str, Any]:
        """The options that make this filesystem again, anywhere the remote is reachable."""
        return {"remote": self.spec.url, "remote_options": dict(self.spec.options),
                "roots": {k: dict(v) for k, v in self.pointers.items()},
                "cache": self.cache, "cache_size": self.cache_size, "rev": self.rev,
                "chunking": self.chunking}

    def _resolve_roots(self, roots: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """``roots`` ({path: digest, or {"digest", "kind", "size", ...}}) checked; kind and
        size of a bare digest are learned from the remote."""
        if not isinstance(roots, dict) or not roots:
            raise UsageError("cas://: roots must map paths to digests, e.g. "
                             "{'data': '<32 hex digits>'}")
        out: dict[str, dict[str, Any]] = {}
        for path, value in roots.items():
            try:
                rel = normalize(str(path))
            except PathError:
                rel = ""
            if not rel:
                raise UsageError(f"cas://: root path {path!r} must name a path inside the "
                                 "repository")
            given = value if isinstance(value, dict) else {"digest": value}
            try:
                digest = parse_hex_id(given.get("digest"))
            except ValueError as exc:
                raise UsageError(f"cas://: root {rel}: {exc}") from None
            entry = {"digest": digest.hex(), "pointer": str(given.get("pointer",
                                                                      rel + SUFFIX)),
                     "mtime": float(given.get("mtime", 0.0))}
            if given.get("kind") in ("file", "dir") and "size" in given:
                entry.update(kind=given["kind"], size=int(given["size"]),
                             executable=bool(given.get("executable", False)))
            else:
                entry.update(self._kind_and_size(digest, rel))
            out[rel] = entry
        return out

    def _kind_and_size(self, digest: bytes, rel: str) -> dict[str, Any]:
        reader = self.reader()
        loc = reader.locate(digest)
        if loc is None:
            reader.invalidate()
            loc = reader.locate(digest)
        if loc is None:
            raise ObjectMissingError(f"{rel}: {digest.hex()} is not on remote "
                                     f"'{self.spec.name}'; run 'cas push' where it was added")
        if loc.type == ObjectType.TREE:
            return {"kind": "dir", "size": 0, "executable": False}
        if loc.type == ObjectType.CHUNK:
            return {"kind": "file", "size": loc.raw_length, "executable": False}
        _, data = reader.read(digest)
        size = int(decode_recipe(data)["length"].sum())
        return {"kind": "file", "size": size, "executable": False}


def _snapshot(repo: Repo, rev: str | None) -> dict[str, dict[str, Any]]:
    """The pointers of ``repo`` at ``rev`` (or in its working tree), as ``roots``."""
    view = TrackedView(repo, rev)
    mtime = 0.0
    if view.commit is not None:
        out = git(repo.root, "show", "-s", "--format=%ct", view.commit)
        mtime = float(out.decode().strip() or 0)
    table = {}
    for path, (ptr_path, ptr) in view.pointers().items():
        if ptr.kind not in ("file", "dir"):
            raise CasError(f"{ptr_path}: unknown kind {ptr.kind!r}")
        if view.commit is None:
            try:
                mtime = (repo.root / ptr_path).stat().st_mtime
            except OSError:
                mtime = 0.0
        table[path] = {"digest": ptr.digest.hex(), "pointer": ptr_path, "kind": ptr.kind,
                       "size": ptr.size, "executable": ptr.executable, "mtime": mtime}
    return table
