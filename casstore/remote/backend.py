"""A remote as a ``casstore.sources`` backend: objects fetched on demand, verified.

Used by readers (``casstore.open``, the cas:// file system, imports) that need a few objects
the cache lacks; ``cas fetch``/``cas pull`` use the batch transfer in ``transfer`` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from .ranges import Downloader, typed_objects
from .store import RemoteStore


class RemoteObjects:
    """Hands over objects of one remote by id; the remote is opened on first use."""

    def __init__(self, opener: Callable[[], RemoteStore]) -> None:
        self.opener = opener
        self._rs: RemoteStore | None = None

    def get(self, ids: Collection[bytes]) -> dict[bytes, tuple[int, bytes]]:
        """{id: (type, decoded bytes)} for the ids the remote holds: chunks and trees checked
        against their id, recipes parsed."""
        if self._rs is None:
            self._rs = self.opener()
        rs = self._rs
        index = rs.index()
        wanted = [(oid, loc) for oid in ids if (loc := index.get(oid)) is not None]
        got = Downloader(rs).fetch(wanted, "fetching objects")
        return typed_objects(wanted, got, rs.limits.chunk_max)
