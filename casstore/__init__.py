"""casstore: a content-addressed, chunk-deduplicated store for ML data and models.

Library entry points (imported lazily so that ``import casstore`` stays fast):
``casstore.Repo``, ``casstore.open`` (read tracked content at any Git revision) and the
``casstore.CasError`` hierarchy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    CasError,
    ConfigError,
    CorruptObjectError,
    LockTimeoutError,
    NotARepoError,
    ObjectMissingError,
    PathError,
    PointerError,
    RemoteError,
    UsageError,
    WorkspaceConflictError,
)

__version__ = "0.1.0"
__all__ = ["CasError", "ConfigError", "CorruptObjectError", "LockTimeoutError",
           "NotARepoError", "ObjectMissingError", "PathError", "PointerError", "RemoteError",
           "Repo", "UsageError", "WorkspaceConflictError", "__version__", "open"]

if TYPE_CHECKING:
    from .api import open
    from .repo import Repo


def __getattr__(name: str) -> Any:
    if name == "Repo":
        # start-up: 'import casstore.x' (the CLI's first import included) runs this
        # package; the facade would add ~40 modules to it, casstore.open ~130 (numpy).
        from .repo import Repo

        return Repo
    if name == "open":
        # start-up: as above
        from .api import open

        return open
    raise AttributeError(name)
