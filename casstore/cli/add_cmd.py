"""cas add"""

from __future__ import annotations

import typer

from .app import app
from .output import detail, human_bytes, open_repo, print_json, say


@app.command()
def add(
    paths: list[str] = typer.Argument(..., help="Files or folders to track."),
    sha256: bool | None = typer.Option(None, "--sha256/--no-sha256",
                                       help="Also record SHA-256 (for untrusted contributors)."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Store files and folders in the cache and write their .cas pointer files."""
    with open_repo() as repo:
        res = repo.add(paths, sha256=sha256)
    if json_out:
        print_json({"items": [i.to_dict() for i in res.items], "new_bytes": res.new_bytes})
        return
    for i in res.items:
        what = f"{i.chunks} chunks" if i.kind == "file" else f"{i.files} files"
        state = "updated" if i.changed else "unchanged"
        say(f"{state}: {i.pointer} ({human_bytes(i.size)}, {what}, "
            f"{human_bytes(i.new_bytes)} new in cache)")
        detail(f"  xxh128 {i.digest}")
    if any(i.changed for i in res.items):
        ptrs = " ".join(i.pointer for i in res.items if i.changed)
        say(f"To record the change in Git: git add {ptrs} .gitignore")
