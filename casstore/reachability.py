"""Roots from pointers: those of the working tree and those in Git history. Which objects
the roots need (trees -> files -> recipes -> chunks) is ``store.graph.expand``, re-exported."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .errors import PointerError
from .gitutil import RevSelection, pointer_blobs, read_blobs, revisions
from .pointer import Pointer, parse_pointer_bytes
from .store.graph import Root, expand

__all__ = ["Root", "expand", "history_roots", "root_of", "workspace_roots"]

if TYPE_CHECKING:
    from .project import Project


def root_of(ptr: Pointer, name: str) -> Root:
    return Root(ptr.digest, ptr.kind, ptr.size, name)


def workspace_roots(repo: Project, targets: Iterable[str] | None = None) -> list[Root]:
    out = []
    for p in repo.pointer_files(list(targets) if targets else None):
        out.append(root_of(repo.load_pointer(p), repo.rel(p)))
    return out


def history_roots(repo: Project, select: RevSelection) -> list[Root]:
    """Roots of every pointer in the Git revisions ``select`` names; unparsable old pointers
    are skipped with a note (a bad pointer in history must not block gc of everything
    else)."""
    commits = revisions(repo.root, select)
    blobs: dict[str, str] = {}
    for c in commits:
        for path, blob in pointer_blobs(repo.root, c).items():
            blobs.setdefault(blob, path)
    out = []
    for blob, data in read_blobs(repo.root, blobs).items():
        try:
            ptr = parse_pointer_bytes(data, f"{blobs[blob]} ({blob[:10]})")
        except PointerError as exc:
            repo.reporter.note(f"skipping unreadable pointer in history: {exc}")
            continue
        out.append(root_of(ptr, blobs[blob]))
    return out
