"""cas ls"""

from __future__ import annotations

import typer

from .app import app
from .output import human_bytes, open_repo, print_json, say


@app.command("ls")
def ls_command(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List tracked artifacts: path, kind, size, chunks or files, digest."""
    with open_repo() as repo:
        entries = repo.ls()
    if json_out:
        print_json([e.to_dict() for e in entries])
        return
    for e in entries:
        count = f"{e.chunks} chunks" if e.kind == "file" else f"{e.files} files"
        ver = f"  v{e.version}" if e.version else ""
        say(f"{e.path:40}  {e.kind:4}  {human_bytes(e.size):>10}  {count:>12}  "
            f"{e.digest}{ver}")
