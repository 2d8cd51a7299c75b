"""Where objects come from when the cache lacks them: remotes, or another repository's cache.

``ObjectSource`` is the local cache plus an optional *backend* (a remote, another cache)
asked for what the cache lacks. Fetched chunks go into the cache (a chunk is verified by
its id and useful on its own). Fetched recipes and trees stay in memory: the cache must
never hold a recipe or tree whose data it lacks, because ``status`` and ``checkout`` take
"the cache has this digest" to mean "this content can be rebuilt". ``ensure`` fetches
everything some pointers need and only then writes their recipes and trees to the cache.

A configured remote serves as a backend through ``remote_backend`` (the remote's objects,
fetched in few range requests and verified: ``casstore.remote.backend``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from .errors import CasError, ConfigError, ObjectMissingError
from .recipe import decode_recipe
from .remote.config import RemoteSpec, remotes, resolve
from .store.graph import Root, expand
from .store.index import Location
from .store.limits import Limits
from .store.local import LocalStore
from .store.objects import Codec, ObjectType

if TYPE_CHECKING:
    from .project import Project


class Backend(Protocol):
    """Something that can hand over objects by id."""

    def get(self, ids: Collection[bytes]) -> dict[bytes, tuple[int, bytes]]:
        """{id: (object type, decoded bytes)} for the ids it holds, each verified against
        its id (recipes, whose id is their file's digest, at least parsed); others are left
        out."""
        ...


def remote_backend(repo: Project, remote: str | None = None,
                   options: Mapping[str, Any] | None = None) -> Backend | None:
    """A backend for ``remote`` (or the default remote) of ``repo``, if one is configured;
    ``options`` (fsspec storage options: endpoint_url, credentials) override the
    configured ones for this process only."""
    # start-up: the remote stack (concurrent.futures, logging, fsspec's backend) costs
    # ~50 modules; only a cache miss with a remote configured needs it.
    from .remote.backend import RemoteObjects
    from .remote.store import RemoteStore

    try:
        if not remotes(repo.config):
            return None
        spec = resolve(repo.config, remote)
    except (ConfigError, CasError):
        return None
    if options:
        spec = RemoteSpec(spec.name, spec.url, {**spec.options, **options})
    limits = Limits.from_chunking(repo.config.get("chunking"))
    return RemoteObjects(lambda: RemoteStore.open(spec, base=repo.root,
                                                  cache_root=repo.cache.root,
                                                  reporter=repo.reporter, limits=limits))


class StoreBackend:
    """Objects of another local store (another repository's cache), verified on read."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store

    def get(self, ids: Collection[bytes]) -> dict[bytes, tuple[int, bytes]]:
        """See ``Backend.get``."""
        out = {}
        for oid in ids:
            if self.store.has(oid):
                out[oid] = self.store.read(oid)
        return out


class ChainBackend:
    """Asks each backend in turn for what the previous ones lacked."""

    def __init__(self, backends: Iterable[Backend | None]) -> None:
        self.backends = [b for b in backends if b is not None]

    def get(self, ids: Collection[bytes]) -> dict[bytes, tuple[int, bytes]]:
        """See ``Backend.get``."""
        out: dict[bytes, tuple[int, bytes]] = {}
        todo = set(ids)
        for b in self.backends:
            if not todo:
                break
            got = b.get(todo)
            out.update(got)
            todo -= set(got)
        return out


class ObjectSource:
    """The cache, plus objects fetched from ``backend`` on demand (see the module doc).

    Offers ``locate``/``has``/``read``/``invalidate`` like ``LocalStore``, so readers and
    ``store.graph.expand`` use it in place of the cache; ``fetch(ids)`` is the fetcher
    that ``ContentReader`` calls. ``fetched`` counts objects obtained from the backend.
    """

    def __init__(self, cache: LocalStore, backend: Backend | None = None) -> None:
        self.cache = cache
        self.backend = backend
        self.memory: dict[bytes, tuple[int, bytes]] = {}
        self.fetched = 0

    def locate(self, oid: bytes) -> Location | None:
        """Where ``oid`` is: in the cache, or (fetched, in memory) a placeholder location."""
        loc = self.cache.locate(oid)
        if loc is not None:
            return loc
        held = self.memory.get(oid)
        if held is None:
            return None
        return Location("", held[0], Codec.NONE, len(held[1]), 0, len(held[1]))

    def has(self, oid: bytes) -> bool:
        """Whether ``oid`` can be read without fetching."""
        return oid in self.memory or self.cache.has(oid)

    def read(self, oid: bytes, *, verify: bool = True) -> tuple[int, bytes]:
        """(type, bytes) of ``oid`` (verified in the cache, or when it was fetched)."""
        held = self.memory.get(oid)
        if held is not None:
            return held
        return self.cache.read(oid, verify=verify)

    def invalidate(self) -> None:
        """Forget the cache's index (it changed on disk)."""
        self.cache.invalidate()

    def fetch(self, ids: Collection[bytes]) -> None:
        """Get what the cache lacks of ``ids`` from the backend: chunks into the cache,
        recipes and trees into memory. Ids the backend lacks stay missing."""
        todo = [oid for oid in dict.fromkeys(ids) if not self.has(oid)]
        if not todo or self.backend is None:
            return
        got = self.backend.get(todo)
        if not got:
            return
        self.fetched += len(got)
        chunks = [(oid, data) for oid, (otype, data) in got.items()
                  if otype == ObjectType.CHUNK]
        for oid, (otype, data) in got.items():
            if otype != ObjectType.CHUNK:
                self.memory[oid] = (otype, data)
        if chunks:
            with self.cache.lock(shared=True), self.cache.writer() as w:
                for oid, data in chunks:
                    w.put(oid, ObjectType.CHUNK, data, Codec.ZSTD)  # kept raw if it does not shrink
            self.cache.invalidate()

    def ensure(self, roots: list[Root]) -> int:
        """Make the cache hold everything ``roots`` need, fetching what it lacks; returns
        how many objects were fetched. ObjectMissingError if some cannot be found."""
        before = self.fetched
        previous: set[bytes] | None = None
        while True:
            missing: set[bytes] = set()
            self.invalidate()
            need = expand(self, roots, missing=missing)
            if not missing:
                break
            if self.backend is None or missing == previous:
                names = ", ".join(r.name for r in roots)
                raise ObjectMissingError(
                    f"{len(missing)} object(s) of {names} are neither in the cache nor on a "
                    "remote; run 'cas push' where the data was added")
            self.fetch(missing)
            previous = missing
        self.commit(need)
        return self.fetched - before

    def commit(self, ids: Collection[bytes]) -> None:
        """Write the fetched recipes and trees among ``ids`` to the cache; call only once
        everything they need is in the cache."""
        held = [oid for oid in ids if oid in self.memory]
        if not held:
            return
        for oid in held:
            otype, data = self.memory[oid]
            if otype == ObjectType.RECIPE:
                _check_recipe(self, oid)
        with self.cache.lock(shared=True), self.cache.writer() as w:
            # Recipes before trees: a tree in the cache promises its files are there too.
            for want in (ObjectType.RECIPE, ObjectType.TREE):
                for oid in held:
                    otype, data = self.memory[oid]
                    if otype == want:
                        w.put(oid, otype, data, Codec.ZSTD)
        self.cache.invalidate()
        for oid in held:
            del self.memory[oid]


class _Sink:
    def write(self, data: bytes) -> int:
        return len(data)


def _check_recipe(source: ObjectSource, digest: bytes) -> None:
    """A fetched recipe must rebuild its file: its id is the file digest, not its own hash."""
    # start-up: files imports the chunker (pyfastcdc); only a fetched recipe needs it
    from .files import restore_file

    _, data = source.read(digest)
    size = int(decode_recipe(data)["length"].sum())
    restore_file(source, digest, size, _Sink())  # type: ignore[arg-type]


def source_for(repo: Project, remote: str | None = None, *,
               extra: Iterable[Backend | None] = (),
               options: Mapping[str, Any] | None = None) -> ObjectSource:
    """``repo``'s cache backed by ``remote`` (default: the default remote, if any; its
    storage options overridden by ``options``) and by ``extra`` backends (asked first)."""
    # Without overrides it is called as it always was, (repo, remote): stand-ins that
    # replace it (tests serving another cache as the remote) keep working.
    backend_of_remote = remote_backend(repo, remote, options) if options \
        else remote_backend(repo, remote)
    backends = [*extra, backend_of_remote]
    live = [b for b in backends if b is not None]
    backend: Backend | None = None
    if len(live) == 1:
        backend = live[0]
    elif live:
        backend = ChainBackend(live)
    return ObjectSource(repo.cache, backend)
