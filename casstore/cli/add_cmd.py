"""cas add"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from ..pointer import SUFFIX, pointer_path_for
from .app import app
from .output import detail, human_bytes, open_repo, plural, print_json, say


@app.command()
def add(
    paths: list[str] = typer.Argument(..., metavar="PATH...", help="Files or folders to track."),
    sha256: bool | None = typer.Option(None, "--sha256/--no-sha256",
                                       help="Also record SHA-256 (for untrusted contributors)."),
    follow_symlinks: bool = typer.Option(
        False, "--follow-symlinks",
        help="Store what symbolic links inside folders point to (default: skip them)."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Store files and folders in the cache and write their .cas pointer files."""
    with open_repo() as repo:
        # Which pointers existed before, so that a first add says "added", not "updated".
        # (A path given as its pointer, model.pth.cas, names that pointer itself.)
        before = {os.path.abspath(p if p.endswith(SUFFIX) else pointer_path_for(Path(p)))
                  for p in paths}
        before = {p for p in before if os.path.lexists(p)}
        res = repo.add(paths, sha256=sha256, follow_symlinks=follow_symlinks)
        root = repo.root
    if json_out:
        print_json({"items": [i.to_dict() for i in res.items], "new_bytes": res.new_bytes})
        return
    for i in res.items:
        what = plural(i.chunks or 0, "chunk") if i.kind == "file" else plural(i.files or 0, "file")
        existed = os.path.abspath(root / i.pointer) in before
        state = ("updated" if existed else "added") if i.changed else "unchanged"
        say(f"{state}: {i.pointer} ({human_bytes(i.size)}, {what}, "
            f"{human_bytes(i.new_bytes)} new in cache)")
        detail(f"  xxh128 {i.digest}")
    if any(i.changed for i in res.items):
        ptrs = " ".join(i.pointer for i in res.items if i.changed)
        say(f"To record the change in Git: git add {ptrs} .gitignore")
