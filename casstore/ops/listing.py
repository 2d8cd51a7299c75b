"""cas ls: the tracked artifacts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..pointer import data_path_for
from ..results import LsEntry

if TYPE_CHECKING:
    from ..repo import Repo


def ls(repo: Repo) -> list[LsEntry]:
    out = []
    for ptr_path in repo.pointer_files():
        ptr = repo.load_pointer(ptr_path)
        version = (ptr.meta or {}).get("version")
        out.append(LsEntry(path=repo.rel(data_path_for(ptr_path, ptr)),
                           pointer=repo.rel(ptr_path), kind=ptr.kind, size=ptr.size,
                           digest=ptr.digest.hex(), chunks=ptr.chunks, files=ptr.files,
                           version=None if version is None else str(version)))
    return out
