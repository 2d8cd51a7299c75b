"""A remote: the Store over an fsspec file system, with what a network makes worthwhile.

What a remote holds is learned from its index files alone: one listing of ``index/`` and a
download of each index file not seen before. Index files and records are immutable by
name, so downloaded copies are kept under the cache's ``remotes/<url hash>/`` and a no-op
push or status costs one listing. Packs are only ever read by byte ranges or whole.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TypeVar

from ..atomic import atomic_write_bytes
from ..errors import CorruptObjectError, ObjectMissingError, PackGoneError
from ..hashing import digest_bytes
from ..reporting import SILENT, Reporter
from ..store.index import Location
from ..store.records import ROOTS
from ..store.store import IndexPart, Store
from .config import RemoteSpec
from .fs import FsspecBackend, Remote, open_remote
from .ranges import Downloader

DEFAULT_JOBS = 8
T = TypeVar("T")
R = TypeVar("R")


class RemoteStore(Store):
    """One remote; ``index()`` is its merged index (loaded once)."""

    def __init__(self, remote: Remote, cache_dir: Path, *, jobs: int = DEFAULT_JOBS,
                 reporter: Reporter = SILENT) -> None:
        super().__init__(FsspecBackend(remote), reporter=reporter)
        self.remote = remote
        self.cache_dir = cache_dir
        self.jobs = max(1, jobs)

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

    # the index ------------------------------------------------------------------------
    @property
    def index_cache(self) -> Path:
        return self.cache_dir / "index"

    def read_index_file(self, name: str) -> bytes:
        """Download and check one index file: it must parse and be named for its content."""
        data = self.backend.read(self.index_key(name))
        self.check_index_file(name, data, f"on remote '{self.name}'")
        return data

    def read_index_parts(self, names: list[str]) -> list[IndexPart]:
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
                parts.append(self.check_index_file(n, path.read_bytes(), "(cached copy)"))
            except CorruptObjectError:
                # A damaged local copy: fetch it again rather than trust it.
                data = self.read_index_file(n)
                atomic_write_bytes(path, data)
                parts.append(self.check_index_file(n, data, f"on remote '{self.name}'"))
        # Copies of index files the remote no longer has (merged or removed by gc) go.
        keep = set(names)
        for p in self.index_cache.glob("*.idx"):
            if p.name[:-4] not in keep:
                with contextlib.suppress(OSError):
                    p.unlink()
        return parts

    def forget_index(self) -> None:
        self._index = None

    def remember_index(self, name: str, data: bytes) -> None:
        """Keep a copy of an index file we published, so the next load need not fetch it."""
        with contextlib.suppress(OSError):
            self.index_cache.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.index_cache / f"{name}.idx", data)

    def read_small(self, key: str, limit: int, size: int | None = None) -> bytes:
        """Root records are immutable by name: read once, then from the local copy."""
        if not key.startswith(ROOTS + "/"):
            return super().read_small(key, limit, size)
        local = self.cache_dir / key
        with contextlib.suppress(OSError):
            data = local.read_bytes()
            if len(data) <= limit and (size is None or len(data) == size):
                return data
        data = super().read_small(key, limit, size)
        with contextlib.suppress(OSError):
            local.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(local, data)
        return data

    # reading --------------------------------------------------------------------------
    def read_range(self, pack: str, start: int, end: int) -> bytes:
        try:
            return super().read_range(pack, start, end)
        except ObjectMissingError:
            raise PackGoneError(f"pack {pack} is listed in an index of remote '{self.name}' "
                                "but is missing; run 'cas fsck --remote'") from None

    # writing --------------------------------------------------------------------------
    def publish_pack(self, local: Path, name: str, index_bytes: bytes) -> int:
        """Pack first, its index after. A pack already present with the right size (a push
        killed between pack and index) is not sent again. Returns the bytes sent."""
        size = local.stat().st_size
        sent = 0
        if self.pack_size(name) != size:
            self.backend.upload(self.pack_key(name), local)
            sent += size
        self.backend.write(self.index_key(name), index_bytes)
        self.remember_index(name, index_bytes)
        self._index = None
        return sent + len(index_bytes)

    def copy_objects(self, wanted: list[tuple[bytes, Location]],
                     reporter: Reporter = SILENT) -> list[str]:
        """Repack: download the objects in few range requests (verified), write them into
        new packs in a staging folder, publish those."""
        from ..store.local import LocalStore

        stage = self.staging()
        try:
            staged = LocalStore(stage, fsync=False)
            with staged.writer() as w:
                Downloader(self).fetch(wanted, "repacking", writer=w)
            for name in w.packs:
                self.publish_pack(staged.pack_path(name), name,
                                  staged.backend.read(staged.index_key(name)))
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        return list(w.packs)

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
        for old in root.iterdir():
            with contextlib.suppress(OSError):
                if time.time() - old.stat().st_mtime > 3600:
                    shutil.rmtree(old)
        d = root / uuid.uuid4().hex
        d.mkdir()
        return d
