"""casstore: a content-addressed, chunk-deduplicated store for ML data and models.

Library entry points (imported lazily so that ``import casstore`` stays fast):
``casstore.Repo`` and the ``casstore.CasError`` hierarchy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import CasError

__version__ = "0.1.0"
__all__ = ["CasError", "Repo", "__version__"]

if TYPE_CHECKING:
    from .repo import Repo


def __getattr__(name: str) -> Any:
    if name == "Repo":
        from .repo import Repo

        return Repo
    raise AttributeError(name)
