"""A store at an fsspec URL: the cache's format (packs/<aa>/<id>.pack, index/<name>.idx).

What a remote holds is learned from its index files alone: one listing of ``index/`` and a
download of each index file not seen before. Index files are immutable by name (a per-pack
index is named after its pack, a merged one after its own hash), so downloaded copies are
kept under the cache's ``remotes/<url hash>/index/`` and a no-op push or status costs one
listing. Packs are only ever read by byte ranges or whole, never listed per object.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..atomic import atomic_write_bytes
from ..errors import CorruptObjectError, RemoteError
from ..hashing import digest_bytes
from ..reporting import SILENT, Reporter
from ..store.index import Index
from ..store.indexfile import decode_index, encode_index
from .config import RemoteSpec
from .fs import Remote, ShortRead, open_remote

NAME_RE = re.compile(r"^[0-9a-f]{32}$")
DEFAULT_JOBS = 8
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class PackInfo:
    """A pack object on the remote, from a listing."""

    name: str
    size: int
    mtime: float | None  # seconds since the epoch, when the backend reports it


class RemoteStore:
    """Reads and writes one remote; ``index()`` is its merged index (loaded once)."""

    def __init__(self, remote: Remote, cache_dir: Path, *, jobs: int = DEFAULT_JOBS,
                 reporter: Reporter = SILENT) -> None:
        self.remote = remote
        self.cache_dir = cache_dir
        self.jobs = max(1, jobs)
        self.reporter = reporter
        self._index: Index | None = None
        self._index_names: list[str] = []

    @classmethod
    def open(cls, spec: RemoteSpec, *, base: Path, cache_root: Path, jobs: int | None = None,
             reporter: Reporter = SILENT) -> RemoteStore:
        remote = open_remote(spec, base)
        url_key = digest_bytes(f"{remote.protocol}://{remote.root}".encode()).hex()[:16]
        return cls(remote, cache_root / "remotes" / url_key, jobs=jobs or DEFAULT_JOBS,
                   reporter=reporter)

    @property
    def name(self) -> str:
        return self.remote.spec.name

    # keys -----------------------------------------------------------------------------
    def pack_key(self, name: str) -> str:
        return self.remote.key("packs", name[:2], f"{name}.pack")

    def index_key(self, name: str) -> str:
        return self.remote.key("index", f"{name}.idx")

    # listing --------------------------------------------------------------------------
    def _fresh(self, key: str) -> str:
        """Drop the file system's cached listing of ``key``: another client may have
        written since."""
        with contextlib.suppress(Exception):
            self.remote.fs.invalidate_cache(key)
        return key

    def _ls_names(self, sub: str, suffix: str) -> list[str]:
        try:
            rows = self.remote.call(f"listing {sub}/", self.remote.fs.ls,
                                    self._fresh(self.remote.key(sub)), detail=False)
        except FileNotFoundError:
            return []  # a new, empty remote
        out = []
        for r in rows:
            base = str(r).rstrip("/").rsplit("/", 1)[-1]
            if base.endswith(suffix) and NAME_RE.match(base[:-len(suffix)]):
                out.append(base[:-len(suffix)])
        return sorted(out)

    def list_index_names(self) -> list[str]:
        """Names of the index files on the remote (one listing)."""
        return self._ls_names("index", ".idx")

    def list_packs(self) -> dict[str, PackInfo]:
        """Every pack object on the remote with size and age (one recursive listing)."""
        try:
            found = self.remote.call("listing packs/", self.remote.fs.find,
                                     self._fresh(self.remote.key("packs")), detail=True)
        except FileNotFoundError:
            return {}
        out = {}
        for path, info in found.items():
            base = str(path).rsplit("/", 1)[-1]
            if base.endswith(".pack") and NAME_RE.match(base[:-5]):
                out[base[:-5]] = PackInfo(base[:-5], int(info.get("size") or 0),
                                          modified_time(info))
        return out

    def list_tmp(self) -> dict[str, PackInfo]:
        try:
            found = self.remote.call("listing tmp/", self.remote.fs.find,
                                     self._fresh(self.remote.key("tmp")), detail=True)
        except FileNotFoundError:
            return {}
        return {str(p): PackInfo(str(p), int(i.get("size") or 0), modified_time(i))
                for p, i in found.items()}

    # the index ------------------------------------------------------------------------
    @property
    def index_cache(self) -> Path:
        return self.cache_dir / "index"

    def index(self, *, refresh: bool = False) -> Index:
        """The merged index of every index file the remote lists now."""
        if self._index is not None and not refresh:
            return self._index
        names = self.list_index_names()
        self.index_cache.mkdir(parents=True, exist_ok=True)
        missing = [n for n in names if not (self.index_cache / f"{n}.idx").is_file()]
        if missing:
            self.reporter.note(f"reading {len(missing)} index file(s) of remote '{self.name}'")
            for n, data in self.map(lambda n: (n, self.read_index_file(n)), missing):
                atomic_write_bytes(self.index_cache / f"{n}.idx", data)
        parts = []
        for n in names:
            path = self.index_cache / f"{n}.idx"
            try:
                parts.append(decode_index(path.read_bytes(), name=f"cached index {n}"))
            except CorruptObjectError:
                # A damaged local copy: fetch it again rather than trust it.
                data = self.read_index_file(n)
                atomic_write_bytes(path, data)
                parts.append(decode_index(data, name=f"remote index {n}"))
        # Copies of index files the remote no longer has (merged or removed by gc) go.
        keep = set(names)
        for p in self.index_cache.glob("*.idx"):
            if p.name[:-4] not in keep:
                with contextlib.suppress(OSError):
                    p.unlink()
        self._index = Index.merge(parts)
        self._index_names = names
        return self._index

    @property
    def index_names(self) -> list[str]:
        """Index file names seen by the last ``index()``."""
        return list(self._index_names)

    def read_index_file(self, name: str) -> bytes:
        """Download and check one index file: it must parse and be named for its content."""
        data = self.read_whole(self.index_key(name), f"reading index {name}")
        packs, _, _ = decode_index(data, name=f"index {name} on remote '{self.name}'")
        if packs != [name] and digest_bytes(data).hex() != name:
            raise CorruptObjectError(f"index {name} on remote '{self.name}' does not match its "
                                     "name; run 'cas fsck --remote'")
        return data

    def forget_index(self) -> None:
        self._index = None

    # reading --------------------------------------------------------------------------
    def read_whole(self, key: str, what: str) -> bytes:
        def get() -> bytes:
            data = self.remote.fs.cat_file(key)
            return bytes(data)

        return self.remote.call(what, get)

    def read_range(self, pack: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of a pack; a short answer is retried as a transient fault."""
        if end <= start:
            return b""  # an empty object (an empty file's chunk): no request, no bad Range
        key = self.pack_key(pack)

        def get() -> bytes:
            data = self.remote.fs.cat_file(key, start=start, end=end)
            if len(data) != end - start:
                raise ShortRead(f"got {len(data)} of {end - start} bytes")
            return bytes(data)

        try:
            return self.remote.call(f"reading pack {pack}", get)
        except FileNotFoundError:
            raise RemoteError(f"pack {pack} is listed in an index of remote '{self.name}' but "
                              "is missing; run 'cas fsck --remote'") from None

    def pack_size(self, name: str) -> int | None:
        try:
            return int(self.remote.call(f"checking pack {name}", self.remote.fs.size,
                                        self.pack_key(name)))
        except FileNotFoundError:
            return None

    # writing --------------------------------------------------------------------------
    def _makedirs(self, key: str) -> None:
        if not self.remote.atomic_put:
            parent = key.rsplit("/", 1)[0]
            self.remote.call("creating a folder", self.remote.fs.makedirs, parent,
                             exist_ok=True)

    def _tmp_key(self) -> str:
        return self.remote.key("tmp", f"{uuid.uuid4().hex}.tmp")

    def upload_file(self, local: Path, key: str, what: str) -> None:
        """Upload a local file so that ``key`` appears only when complete, size-checked."""
        size = local.stat().st_size
        fs = self.remote.fs

        def put() -> None:
            if self.remote.atomic_put:
                fs.put_file(str(local), key, **self.remote.put_options)
                dest = key
            else:
                dest = self._tmp_key()
                self._makedirs(dest)
                fs.put_file(str(local), dest)
            got = fs.size(dest)
            if got != size:
                with contextlib.suppress(Exception):
                    fs.rm_file(dest)
                raise ShortRead(f"{what}: remote has {got} of {size} bytes")
            if dest != key:
                self._makedirs(key)
                fs.mv(dest, key)

        self._write_call(what, put)

    def upload_bytes(self, data: bytes, key: str, what: str) -> None:
        fs = self.remote.fs

        def put() -> None:
            if self.remote.atomic_put:
                fs.pipe_file(key, data)
                return
            dest = self._tmp_key()
            self._makedirs(dest)
            fs.pipe_file(dest, data)
            if fs.size(dest) != len(data):
                raise ShortRead(f"{what}: short write")
            self._makedirs(key)
            fs.mv(dest, key)

        self._write_call(what, put)

    def _write_call(self, what: str, fn: Callable[[], None]) -> None:
        try:
            self.remote.call(what, fn)
        except FileNotFoundError:
            raise RemoteError(self.remote.clean(
                f"remote '{self.name}' ({self.remote.spec.shown()}) does not exist (no such "
                "bucket or folder); create it first, or fix the URL with 'cas remote modify "
                f"{self.name} url URL'")) from None

    def upload_pack(self, local: Path, name: str, index_bytes: bytes, *,
                    skip_if_present: bool = True) -> int:
        """Pack first, its index after: the pack becomes visible only once whole.

        A pack already present with the right size (a push killed between pack and index)
        is not sent again. Returns the bytes sent.
        """
        size = local.stat().st_size
        sent = 0
        if not (skip_if_present and self.pack_size(name) == size):
            self.upload_file(local, self.pack_key(name), f"uploading pack {name}")
            sent += size
        self.upload_bytes(index_bytes, self.index_key(name), f"uploading index {name}")
        return sent + len(index_bytes)

    def write_index(self, packs: list[str], rows: np.ndarray, entries: np.ndarray,
                    name: str | None = None) -> str:
        data = encode_index(packs, rows, entries)
        name = name or digest_bytes(data).hex()
        self.upload_bytes(data, self.index_key(name), f"uploading index {name}")
        return name

    def delete(self, keys: list[str], what: str) -> None:
        for key in keys:
            with contextlib.suppress(FileNotFoundError):
                self.remote.call(what, self.remote.fs.rm_file, key)

    # concurrency ----------------------------------------------------------------------
    def map(self, fn: Callable[[T], R], items: Iterable[T], *,
            window: int | None = None) -> Iterator[R]:
        """``fn`` over items on ``jobs`` threads, at most ``window`` in flight; results in
        completion order. The first failure cancels what has not started and is raised."""
        items = iter(items)
        window = window or self.jobs * 2
        with ThreadPoolExecutor(self.jobs, thread_name_prefix="cas-remote") as pool:
            pending: set[Future[R]] = set()
            try:
                for it in items:
                    pending.add(pool.submit(fn, it))
                    if len(pending) >= window:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for f in done:
                            yield f.result()
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for f in done:
                        yield f.result()
            finally:
                for f in pending:
                    f.cancel()

    def staging(self) -> Path:
        """A private folder for packs built before upload; old leftovers are removed."""
        root = self.cache_dir / "staging"
        root.mkdir(parents=True, exist_ok=True)
        import time

        for old in root.iterdir():
            with contextlib.suppress(OSError):
                if time.time() - old.stat().st_mtime > 3600:
                    shutil.rmtree(old)
        d = root / uuid.uuid4().hex
        d.mkdir()
        return d


def modified_time(info: dict[str, Any]) -> float | None:
    """The modification time a listing reports, as epoch seconds (backends differ)."""
    for key in ("LastModified", "mtime", "last_modified", "created", "updated", "time"):
        v = info.get(key)
        if v is None:
            continue
        if isinstance(v, (int, float)):
            return float(v)
        ts = getattr(v, "timestamp", None)
        if callable(ts):
            with contextlib.suppress(Exception):
                return float(ts())
        if isinstance(v, str):
            from datetime import datetime

            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
    return None

