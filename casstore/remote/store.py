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
from ..store.indexfile import check_rows
from ..store.limits import Limits
from ..store.local import LocalStore
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
                 reporter: Reporter = SILENT, limits: Limits | None = None) -> None:
        super().__init__(FsspecBackend(remote), reporter=reporter, limits=limits)
        self.remote = remote
        self.cache_dir = cache_dir
        self.jobs = max(1, jobs)

    @classmethod
    def open(cls, spec: RemoteSpec, *, base: Path, cache_root: Path, jobs: int | None = None,
             reporter: Reporter = SILENT, limits: Limits | None = None) -> RemoteStore:
        """``limits``: what objects may claim (from the repository's chunking); the widest
        the format allows when not given."""
        remote = open_remote(spec, base)
        if getattr(reporter, "interactive", False):
            remote.notify = reporter.note  # on a terminal: say what a slow call waits for
        url_key = digest_bytes(f"{remote.protocol}://{remote.root}".encode()).hex()[:16]
        return cls(remote, cache_root / "remotes" / url_key, jobs=jobs or DEFAULT_JOBS,
                   reporter=reporter, limits=limits)

    @property
    def name(self) -> str:
        return self.remote.spec.name

    # the index ------------------------------------------------------------------------
    @property
    def index_cache(self) -> Path:
        return self.cache_dir / "index"

    def read_index_file(self, name: str) -> tuple[bytes, IndexPart]:
        """Download and check one index file: it must parse within its bounds (docs/
        security.md) and be named for its content. Only a file that passed is kept in the
        local copy of the index, so a bad one costs its one download, every time, and
        never stays."""
        data = self.backend.read(self.index_key(name))
        try:
            part = self.check_index_file(name, data, f"on remote '{self.name}'")
            if len(part[2]):
                try:
                    check_rows(part[2], part[1], len(part[0]))
                except ValueError as exc:
                    raise CorruptObjectError(f"index {name} on remote '{self.name}' is not a "
                                             f"readable index ({exc})") from None
        except CorruptObjectError as exc:
            if "fsck" in str(exc):
                raise
            raise CorruptObjectError(f"{exc}; run 'cas fsck --remote' there") from None
        return data, part

    def read_index_parts(self, names: list[str]) -> list[IndexPart]:
        self.index_cache.mkdir(parents=True, exist_ok=True)
        got: dict[str, IndexPart] = {}
        missing = [n for n in names if not (self.index_cache / f"{n}.idx").is_file()]
        if missing:
            self.reporter.note(f"reading {len(missing)} index file(s) of remote '{self.name}'")

            def one(n: str) -> tuple[str, bytes, IndexPart]:
                return (n, *self.read_index_file(n))

            # Whole files in flight are bounded like range reads: -j must not multiply them.
            for n, data, part in self.map(one, missing, budget=self.limits.in_flight,
                                          weight=lambda n: self._index_sizes.get(n, 0)):
                atomic_write_bytes(self.index_cache / f"{n}.idx", data)
                got[n] = part
        parts = []
        for n in names:
            if n in got:
                parts.append(got[n])
                continue
            path = self.index_cache / f"{n}.idx"
            try:
                parts.append(self.check_index_file(n, path.read_bytes(), "(cached copy)"))
            except CorruptObjectError:
                # A damaged local copy: fetch it again rather than trust it.
                data, part = self.read_index_file(n)
                atomic_write_bytes(path, data)
                parts.append(part)
        # Copies of index files the remote no longer has (merged or removed by gc) go.
        keep = set(names)
        for p in self.index_cache.glob("*.idx"):
            if p.name[:-4] not in keep:
                with contextlib.suppress(OSError):
                    p.unlink()
        return parts

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
            window: int | None = None, weight: Callable[[T], int] | None = None,
            budget: int | None = None) -> Iterator[R]:
        """``fn`` over items on ``jobs`` threads, at most ``window`` in flight; results in
        completion order. The first failure cancels what has not started and is raised.

        With ``weight`` and ``budget``, an item is started only while the weights of the
        items started and not yet consumed (their result handed back and the caller
        returned for the next) stay within ``budget`` (one item alone may exceed it): the
        bytes held at once are bounded by the budget, not by the number of threads.
        Workers never wait on the budget, so a failure cannot deadlock the pool.
        """
        items = iter(items)
        window = window or self.jobs * 2
        held = 0
        weights: dict[Future[R], int] = {}
        with ThreadPoolExecutor(self.jobs, thread_name_prefix="cas-remote") as pool:
            pending: set[Future[R]] = set()

            def drain() -> Iterator[R]:
                nonlocal pending, held
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    res = f.result()
                    yield res
                    held -= weights.pop(f, 0)  # the caller is back: it is done with res

            try:
                for it in items:
                    w = weight(it) if weight is not None and budget is not None else 0
                    while pending and (len(pending) >= window or
                                       (budget is not None and held + w > budget)):
                        yield from drain()
                    f = pool.submit(fn, it)
                    pending.add(f)
                    weights[f] = w
                    held += w
                while pending:
                    yield from drain()
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
