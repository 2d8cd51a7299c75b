"""What a command's paths name: whole pointers, or a part of a tracked folder."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..digests import recorded_tree
from ..errors import PathError
from ..pointer import Pointer, pointer_path_for
from ..tree import Found, Loader, find

if TYPE_CHECKING:
    from ..project import Project


@dataclass(frozen=True)
class Target:
    """A pointer file, and ``sub``: a path inside its tracked folder ('' for all of it)."""

    pointer: Path
    sub: str = ""


def resolve_targets(repo: Project, targets: Sequence[str | os.PathLike[str]] | None
                    ) -> list[Target]:
    """The pointers ``targets`` name (data paths, pointer paths, folders holding pointers;
    all by default), and paths inside tracked folders (``data/sub/dir``, ``data/f.bin``)
    as parts of their folder's pointer."""
    if not targets:
        return [Target(p) for p in repo.pointer_files(None)]
    out: dict[tuple[Path, str], Target] = {}
    for t in targets:
        try:
            found = [Target(p) for p in repo.pointer_files([t])]
        except PathError:
            p = Path(os.path.abspath(t))
            anc = repo.tracked_ancestor(p)
            if anc is None:
                raise
            found = [Target(pointer_path_for(anc), p.relative_to(anc).as_posix())]
        for x in found:
            out.setdefault((x.pointer, x.sub), x)
    whole = {t.pointer for t in out.values() if not t.sub}
    # A part of a folder also named whole is covered by the whole.
    return sorted((t for t in out.values() if not t.sub or t.pointer not in whole),
                  key=lambda t: (str(t.pointer), t.sub))


def find_part(repo: Project, ptr: Pointer, sub: str, shown: str) -> tuple[Loader, Found]:
    """The file or folder ``sub`` of tracked folder ``shown`` (its pointer ``ptr``), from
    the trees in the cache."""
    if ptr.kind != "dir":
        raise PathError(f"{shown} is a tracked file, not a folder: name it whole")
    load, top = recorded_tree(repo, ptr.digest, shown)
    return load, find(load, top, sub, shown)
