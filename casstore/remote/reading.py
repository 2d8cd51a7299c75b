"""Reading objects straight from a remote: no repository, no repository cache.

``RemoteReader`` serves the readers of tracked content (``casstore.reader.ContentReader``,
``casstore.view.TrackedView``) from one remote: it learns where objects are from the
remote's index files (``RemoteStore.index``), reads chunks by byte ranges of the packs
that hold them (few requests, ``ranges.Downloader``) and checks every object against its
id before handing it out. A ``ChunkCache`` folder, when given, keeps the chunks read for
the processes of the machine, within a size limit; without one nothing is written to disk
(the index too is held in memory only).

Workers of a Dask or Ray job each open the remote once per process (``shared_reader``):
the threads of a worker share the loaded index, and a process made by ``fork`` opens its
own clients instead of using its parent's (which would hang or fail after the fork).
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from collections.abc import Collection, Sequence
from pathlib import Path

from ..errors import ObjectMissingError, PackGoneError
from ..store.index import Index, Location
from ..store.limits import Limits
from ..store.objects import ObjectType
from ..store.store import IndexPart
from .chunkcache import ChunkCache
from .config import RemoteSpec
from .fs import open_remote
from .ranges import Downloader, typed_objects
from .store import DEFAULT_JOBS, RemoteStore

# Trees and recipes read are kept in memory (a file's recipe is needed at every open of
# the file): at most this many bytes of them per process.
SMALL_OBJECTS_BYTES = 128 << 20


class _MemoryIndexStore(RemoteStore):
    """A RemoteStore that keeps no local copy of the index files: each process downloads
    and checks them once, and writes nothing to disk."""

    def read_index_parts(self, names: list[str]) -> list[IndexPart]:
        def one(n: str) -> tuple[str, IndexPart]:
            return n, self.read_index_file(n)[1]

        got = dict(self.map(one, names, budget=self.limits.in_flight,
                            weight=lambda n: self._index_sizes.get(n, 0)))
        return [got[n] for n in names]


class RemoteReader:
    """Objects of one remote by id, verified (module doc). Offers what ``ContentReader``
    and ``TrackedView`` ask of a source: ``locate``, ``has``, ``read``, ``fetch``,
    ``invalidate``, and ``read_many`` for a batch of chunks in few range requests."""

    def __init__(self, spec: RemoteSpec, *, base: Path, limits: Limits,
                 chunk_cache: ChunkCache | None = None, jobs: int = DEFAULT_JOBS) -> None:
        self.spec = spec
        self.base = base
        self.limits = limits
        self.chunk_cache = chunk_cache
        self.jobs = jobs
        self._lock = threading.Lock()
        self._rs: RemoteStore | None = None
        self._pid = os.getpid()
        self._small: OrderedDict[bytes, tuple[int, bytes]] = OrderedDict()
        self._small_bytes = 0
        # What came over the network (for callers measuring cost).
        self.objects_fetched = 0
        self.bytes_fetched = 0
        self.requests = 0

    @property
    def name(self) -> str:
        return self.spec.name

    # the remote and its index -----------------------------------------------------------
    def store(self) -> RemoteStore:
        """The opened remote (opened again in a process forked after it was opened)."""
        with self._lock:
            if self._rs is None or self._pid != os.getpid():
                self._pid = os.getpid()
                if self.chunk_cache is not None:
                    # Index copies go under the chunk cache's folder (remotes/<url hash>/):
                    # index files are immutable by name and checked at every load, so
                    # the processes of the machine share them.
                    self._rs = RemoteStore.open(self.spec, base=self.base,
                                                cache_root=self.chunk_cache.folder,
                                                jobs=self.jobs, limits=self.limits)
                else:
                    # Its folder is never written: this store only reads packs and index
                    # files, and keeps the index in memory.
                    self._rs = _MemoryIndexStore(open_remote(self.spec, self.base),
                                                 Path(os.devnull), jobs=self.jobs,
                                                 limits=self.limits)
            return self._rs

    def index(self) -> Index:
        """The remote's merged index, loaded once per process (threads wait for the first
        load instead of each downloading the index files)."""
        rs = self.store()
        with self._lock:
            return rs.index()

    def invalidate(self) -> None:
        """Forget the loaded index: the next lookup lists the remote's index files again
        (a push or a collector run may have changed them)."""
        rs = self.store()
        with self._lock:
            rs.invalidate()

    # what readers ask -----------------------------------------------------------------
    def locate(self, oid: bytes) -> Location | None:
        """Where ``oid`` is on the remote (None if its index does not list it)."""
        return self.index().get(oid)

    def has(self, oid: bytes) -> bool:
        """Whether ``oid`` is held in memory (readable without a request)."""
        with self._lock:
            return oid in self._small

    def fetch(self, ids: Collection[bytes]) -> None:
        """Read ``ids`` (trees, recipes) into memory; ObjectMissingError for ids the remote
        lacks."""
        todo = [oid for oid in dict.fromkeys(ids) if not self.has(oid)]
        for oid, (otype, data) in self._download(todo).items():
            if otype != ObjectType.CHUNK:
                self._hold(oid, otype, data)
            elif self.chunk_cache is not None:
                self.chunk_cache.put(oid, data)

    def read(self, oid: bytes, *, verify: bool = True) -> tuple[int, bytes]:
        """(type, bytes) of ``oid``: from memory, the chunk cache, or the remote (always
        verified against its id where it is a hash, whatever ``verify`` says: the remote
        is not trusted)."""
        with self._lock:
            held = self._small.get(oid)
            if held is not None:
                self._small.move_to_end(oid)
                return held
        if self.chunk_cache is not None:
            data = self.chunk_cache.get(oid)
            if data is not None:
                return ObjectType.CHUNK, data
        otype, data = self._download([oid])[oid]
        if otype != ObjectType.CHUNK:
            self._hold(oid, otype, data)
        elif self.chunk_cache is not None:
            self.chunk_cache.put(oid, data)
        return otype, data

    def read_many(self, ids: Sequence[bytes]) -> dict[bytes, bytes]:
        """{id: bytes} of chunks ``ids``: from the chunk cache, the rest from the remote
        in few range requests, every one checked against its id."""
        out: dict[bytes, bytes] = {}
        todo = []
        for oid in dict.fromkeys(ids):
            data = self.chunk_cache.get(oid) if self.chunk_cache is not None else None
            if data is None:
                todo.append(oid)
            else:
                out[oid] = data
        for oid, (_, data) in self._download(todo, only=ObjectType.CHUNK).items():
            out[oid] = data
            if self.chunk_cache is not None:
                self.chunk_cache.put(oid, data)
        return out

    # the network ------------------------------------------------------------------------
    def _download(self, ids: list[bytes], *, only: int | None = None
                  ) -> dict[bytes, tuple[int, bytes]]:
        """{id: (type, decoded bytes)} of ``ids``, verified. An id the loaded index lacks,
        or a pack gone since it was loaded (merged by a collector), makes one fresh load
        of the index before it is reported."""
        if not ids:
            return {}
        for attempt in (0, 1):
            index = self.index()
            wanted: list[tuple[bytes, Location]] = []
            lacking: list[bytes] = []
            for oid in ids:
                loc = index.get(oid)
                if loc is None:
                    lacking.append(oid)
                else:
                    wanted.append((oid, loc))
            if lacking:
                if attempt == 0:
                    self.invalidate()
                    continue
                raise ObjectMissingError(
                    f"object {lacking[0].hex()} is not on remote '{self.name}' "
                    f"({self.spec.shown()}); run 'cas push' where the data was added")
            if only is not None:
                for oid, loc in wanted:
                    if loc.type != only:
                        raise ObjectMissingError(
                            f"remote '{self.name}' lists {oid.hex()} as a "
                            f"{ObjectType(loc.type).name.lower()}, where a chunk was expected; "
                            "run 'cas fsck --remote' there")
            dl = Downloader(self.store())
            try:
                got = dl.fetch(wanted, "reading")
            except PackGoneError:
                if attempt == 0:
                    self.invalidate()
                    continue
                raise
            with self._lock:
                self.objects_fetched += dl.counts.objects
                self.bytes_fetched += dl.counts.bytes
                self.requests += dl.counts.ranges
            return typed_objects(wanted, got, self.limits.chunk_max)
        raise AssertionError("unreachable")  # pragma: no cover

    def _hold(self, oid: bytes, otype: int, data: bytes) -> None:
        with self._lock:
            if oid in self._small:
                return
            self._small[oid] = (otype, data)
            self._small_bytes += len(data)
            while self._small_bytes > SMALL_OBJECTS_BYTES and len(self._small) > 1:
                _, (_, old) = self._small.popitem(last=False)
                self._small_bytes -= len(old)


_SHARED: dict[str, RemoteReader] = {}
_SHARED_LOCK = threading.Lock()


def _forget_after_fork() -> None:
    # A child starts with the parent's readers and locks as they were at the fork (a lock
    # held by another thread then stays held forever): it opens its own.
    global _SHARED_LOCK
    _SHARED_LOCK = threading.Lock()
    _SHARED.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def shared_reader(spec: RemoteSpec, *, base: Path, limits: Limits,
                  cache_folder: Path | None = None, cache_bytes: int = 0) -> RemoteReader:
    """The process's one ``RemoteReader`` for this remote and chunk cache: file systems
    made for each thread or task of a worker share its loaded index."""
    key = json.dumps([os.getpid(), spec.name, spec.url, spec.options, str(base),
                      [limits.chunk_max, limits.chunk_min, limits.tree_max,
                       limits.in_flight], str(cache_folder), cache_bytes],
                     sort_keys=True, default=repr)
    with _SHARED_LOCK:
        reader = _SHARED.get(key)
        if reader is None:
            cache = ChunkCache(cache_folder, cache_bytes) if cache_folder is not None else None
            reader = _SHARED[key] = RemoteReader(spec, base=base, limits=limits,
                                                 chunk_cache=cache)
        return reader


def process_stats() -> dict[str, int]:
    """What this process's readers fetched from remotes: objects, bytes, range requests
    (for jobs and benchmarks checking where the reading happened)."""
    with _SHARED_LOCK:
        readers = list(_SHARED.values())
    return {"objects": sum(r.objects_fetched for r in readers),
            "bytes": sum(r.bytes_fetched for r in readers),
            "requests": sum(r.requests for r in readers)}
