"""One store over any backend: packs, index files, objects, records.

The local cache (``LocalStore``) and every remote (``casstore.remote.store.RemoteStore``)
are this class over a different Backend; they add only what their transport makes
faster (file descriptors and a pack writer for the cache, a thread pool and a local copy
of index files for a remote). The collector (``collector``) and the checker (``checker``)
are written once against this class.

Layout under the store's root (docs/format.md):
    packs/ab/<pack id>.pack      immutable packs
    index/<name>.idx             index files: one per pack (named after it) or merged
                                 (named after their own bytes)
    records/roots/<name>.json    root records: what each push made reachable
    records/condemned/<name>.json  condemnation records of the collector
    locks/gc.<generation>.lease  the collector's lease
    tmp/                         uploads in progress on backends that rename
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from ..errors import CorruptObjectError, ObjectMissingError
from ..hashing import digest_bytes
from ..reporting import SILENT, Reporter
from .backend import Backend, Entry
from .index import Index, Location
from .indexfile import decode_index, encode_index
from .limits import Limits
from .objects import ObjectType, decompress
from .packfile import ENTRY_DTYPE, FOOTER, decode_trailer, trailer_size_hint

NAME_RE = re.compile(r"^[0-9a-f]{32}$")
PACKS = "packs"
INDEX = "index"
TMP = "tmp"
IndexPart = tuple[list[str], np.ndarray, np.ndarray]
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class PackInfo:
    """A pack file in a listing."""

    name: str
    size: int
    mtime: float | None


class Store(ABC):
    """Packs and index files over a Backend; ``index()`` is the merged index, loaded once."""

    def __init__(self, backend: Backend, *, reporter: Reporter = SILENT,
                 limits: Limits | None = None) -> None:
        self.backend = backend
        self.reporter = reporter
        # What objects read back may claim (docs/security.md); the widest the format
        # allows unless the owner knows the repository's chunking.
        self.limits = limits or Limits()
        self._index: Index | None = None
        self._index_sizes: dict[str, int] = {}  # as last listed

    @property
    def label(self) -> str:
        """How messages name this store ("the cache at ...", "remote 'origin'")."""
        return self.backend.label

    # keys ---------------------------------------------------------------------------
    @staticmethod
    def pack_key(name: str) -> str:
        return f"{PACKS}/{name[:2]}/{name}.pack"

    @staticmethod
    def index_key(name: str) -> str:
        return f"{INDEX}/{name}.idx"

    # listing ------------------------------------------------------------------------
    def list_packs(self) -> dict[str, PackInfo]:
        """Every pack file with its size and age (one listing of ``packs/``)."""
        out = {}
        for e in self.backend.list(PACKS):
            parts = e.key.split("/")
            if len(parts) != 3 or not parts[2].endswith(".pack"):
                continue
            name = parts[2][:-5]
            if NAME_RE.match(name) and parts[1] == name[:2]:
                out[name] = PackInfo(name, e.size, e.mtime)
        return dict(sorted(out.items()))

    def list_index_names(self) -> list[str]:
        """Names of the index files (one listing of ``index/``)."""
        out = []
        for e in self.backend.list(INDEX):
            parts = e.key.split("/")
            if len(parts) == 2 and parts[1].endswith(".idx") and NAME_RE.match(parts[1][:-4]):
                out.append(parts[1][:-4])
                self._index_sizes[parts[1][:-4]] = e.size
        return sorted(out)

    def list_tmp(self) -> list[Entry]:
        return self.backend.list(TMP)

    # index --------------------------------------------------------------------------
    def check_index_file(self, name: str, data: bytes, where: str) -> IndexPart:
        """Parse an index file and check it is named for what it holds: after its one pack,
        or after its own bytes (a merged file)."""
        part = decode_index(data, name=f"index {name} {where}")
        if part[0] != [name] and digest_bytes(data).hex() != name:
            raise CorruptObjectError(f"index {name} {where} does not match its name; run "
                                     "'cas fsck'" + (" --remote" if "remote" in where else ""))
        return part

    def read_index_parts(self, names: list[str]) -> list[IndexPart]:
        """Decoded index files ``names``, checked (remotes keep local copies)."""
        return [self.check_index_file(n, self.backend.read(self.index_key(n)),
                                      f"in {self.label}") for n in names]

    def load_index(self) -> tuple[list[str], list[IndexPart]]:
        """(names, parts) of the index files listed now. A file that goes between listing
        and reading was merged or rewritten by a collector: list again."""
        for _attempt in range(5):
            names = self.list_index_names()
            try:
                return names, self.read_index_parts(names)
            except FileNotFoundError:
                continue
        raise CorruptObjectError(f"the index files of {self.label} keep changing; retry")

    def index(self, *, refresh: bool = False) -> Index:
        """The merged index of every index file listed now (kept until invalidated)."""
        if self._index is None or refresh:
            self._index = Index.merge(self.load_index()[1])
        return self._index

    def invalidate(self) -> None:
        self._index = None

    def write_index(self, packs: list[str], rows: np.ndarray, entries: np.ndarray,
                    name: str | None = None, *, invalidate: bool = True) -> str:
        """Publish an index file; per-pack files are named after their pack, merged ones
        after their bytes. Returns the name."""
        data = encode_index(packs, rows, entries)
        name = name or digest_bytes(data).hex()
        self.backend.write(self.index_key(name), data)
        if invalidate:
            self._index = None
        return name

    def reindex_pack(self, name: str, size: int | None = None) -> np.ndarray:
        """Index a pack from its own trailer (a pack whose index was never written)."""
        entries = self.read_trailer(name, size)
        self.write_index([name], np.zeros(len(entries), np.uint32), entries, name)
        return entries

    # objects ------------------------------------------------------------------------
    def has(self, oid: bytes) -> bool:
        return oid in self.index()

    def locate(self, oid: bytes) -> Location | None:
        return self.index().get(oid)

    def types_of(self, ids: np.ndarray) -> np.ndarray:
        """``locate`` for an array of 16-byte ids at once: each one's type, -1 if absent."""
        return self.index().types_of(ids)

    def read_range(self, pack: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of a pack."""
        if end <= start:
            return b""
        try:
            data = self.backend.read(self.pack_key(pack), start, end)
        except FileNotFoundError:
            raise ObjectMissingError(f"pack {pack} is listed in an index of {self.label} but "
                                     "missing; run 'cas fsck'") from None
        if len(data) != end - start:
            raise CorruptObjectError(f"pack {pack} in {self.label} is truncated")
        return data

    def read_raw(self, loc: Location) -> bytes:
        return self.read_range(loc.pack, loc.offset, loc.offset + loc.length)

    def read(self, oid: bytes, *, verify: bool = True) -> tuple[int, bytes]:
        """(type, bytes) of one object, checked against its id where the id is a hash."""
        loc = self.locate(oid)
        if loc is None:
            raise ObjectMissingError(f"object {oid.hex()} is not in {self.label}")
        data = decompress(self.read_raw(loc), loc.codec, loc.raw_length,
                          self.limits.raw_max(loc.type))
        if verify and loc.type != ObjectType.RECIPE and digest_bytes(data) != oid:
            raise CorruptObjectError(
                f"object {oid.hex()} in pack {loc.pack} of {self.label} is corrupt (hash "
                "mismatch)")
        return loc.type, data

    def pack_size(self, name: str) -> int | None:
        return self.backend.size(self.pack_key(name))

    def read_trailer(self, name: str, size: int | None = None) -> np.ndarray:
        """The entry table of a pack: one read of its tail, a second only for huge tables."""
        if size is None:
            size = self.pack_size(name)
            if size is None:
                raise ObjectMissingError(f"pack {name} is missing from {self.label}")
        hint = trailer_size_hint(size)
        tail = self.read_range(name, size - hint, size)
        try:
            return decode_trailer(tail, size)
        except CorruptObjectError:
            if hint == size:
                raise
            # A bigger table (a pack of many small objects): its footer says how big; read
            # that, not the whole pack. A lying count is refused by decode_trailer.
            count = FOOTER.unpack(tail[-FOOTER.size:])[0] if len(tail) >= FOOTER.size else 0
            need = min(size, count * ENTRY_DTYPE.itemsize + FOOTER.size)
            return decode_trailer(self.read_range(name, size - max(need, hint), size), size)

    def read_small(self, key: str, limit: int, size: int | None = None) -> bytes:
        """A small file (a record, a lease) of ``size`` bytes (asked for when not given by
        a listing), refused past ``limit`` before anything is read."""
        if size is None:
            size = self.backend.size(key)
            if size is None:
                raise FileNotFoundError(key)
        if size > limit:
            raise CorruptObjectError(f"{key} in {self.label} is {size} bytes, over the "
                                     f"{limit} byte limit")
        return self.backend.read(key, 0, size) if size else b""

    # writing ------------------------------------------------------------------------
    def publish_pack(self, local: Path, name: str, index_bytes: bytes) -> int:
        """Put a finished pack, then the index file naming it: a pack becomes visible
        only once whole. Returns the bytes written."""
        self.backend.upload(self.pack_key(name), local)
        self.backend.write(self.index_key(name), index_bytes)
        self._index = None
        return local.stat().st_size + len(index_bytes)

    @abstractmethod
    def copy_objects(self, wanted: list[tuple[bytes, Location]],
                     reporter: Reporter = SILENT) -> list[str]:
        """Copy objects of this store into new packs of it (the collector's repack);
        returns the new packs' names. Each store does it its own way: the cache through
        its pack writer (``LocalStore``), a remote by verified range downloads into packs
        staged locally (``RemoteStore``)."""

    # concurrency --------------------------------------------------------------------
    def map(self, fn: Callable[[T], R], items: Iterable[T], *,
            window: int | None = None) -> Iterator[R]:
        """``fn`` over ``items`` (in order here; remotes run them on a thread pool)."""
        for it in items:
            yield fn(it)

    # deletion -----------------------------------------------------------------------
    def delete_pack(self, name: str) -> None:
        self.backend.delete(self.pack_key(name))

    def delete_index_file(self, name: str) -> None:
        self.backend.delete(self.index_key(name))
        self._index = None
