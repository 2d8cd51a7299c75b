"""The remote as a ``casstore.sources`` backend: objects fetched on demand, verified.

Used by readers (``casstore.open``, the cas:// file system, imports) that need a few objects
the cache lacks; ``cas fetch``/``cas pull`` use the batch planner in ``fetch`` instead.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from ..errors import CasError, ConfigError
from ..recipe import decode_recipe
from ..store.objects import ObjectType
from .config import remotes, resolve
from .fetch import Downloader
from .results import FetchResult
from .session import open_store
from .store import RemoteStore

if TYPE_CHECKING:
    from ..repo import Repo


class RemoteBackend:
    """Hands over objects of one remote by id; the remote is opened on first use."""

    def __init__(self, repo: Repo, name: str | None) -> None:
        self.repo = repo
        self.name = name
        self._rs: RemoteStore | None = None

    def get(self, ids: Collection[bytes]) -> dict[bytes, tuple[int, bytes]]:
        """{id: (type, decoded bytes)} for the ids the remote holds: chunks and trees checked
        against their id, recipes parsed."""
        if self._rs is None:
            self._rs = open_store(self.repo, self.name)
        rs = self._rs
        index = rs.index()
        wanted = [(oid, loc) for oid in ids if (loc := index.get(oid)) is not None]
        got = Downloader(rs, FetchResult(remote=rs.name)).fetch(wanted, "fetching objects")
        out = {}
        for oid, loc in wanted:
            data = got[oid]
            if loc.type == ObjectType.RECIPE:
                decode_recipe(data)
            out[oid] = (loc.type, data)
        return out


def backend_factory(repo: Repo, name: str | None) -> RemoteBackend | None:
    """A backend for ``name`` (or the default remote), or None when none is configured."""
    try:
        if not remotes(repo.config):
            return None
        resolve(repo.config, name)
    except (ConfigError, CasError):
        return None
    return RemoteBackend(repo, name)
