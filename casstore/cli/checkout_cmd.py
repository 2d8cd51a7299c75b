"""cas checkout"""

from __future__ import annotations

import sys

import typer

from .app import app
from .output import human_bytes, open_repo, plural, print_json, say


@app.command()
def checkout(
    targets: list[str] = typer.Argument(None, metavar="[PATH]...",
                                        help="Tracked paths (default: all)."),
    force: bool = typer.Option(False, "--force", "-f",
                               help="Overwrite workspace changes that are not in the cache."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Restore tracked data from the cache so the workspace matches the pointers."""
    with open_repo() as repo:
        res = repo.checkout(targets or None, force=force)
    if json_out:
        print_json(res.to_dict())
    else:
        if res.restored:
            say(f"restored {plural(len(res.restored), 'file')}, {human_bytes(res.bytes_written)}")
        if res.removed:
            say(f"removed {plural(len(res.removed), 'file')} not in the tracked version")
        if not res.restored and not res.removed and not res.failed:
            say("Everything is up to date.")
        for msg in res.failed:
            print(f"cas: error: {msg}", file=sys.stderr)
    if res.failed:
        raise typer.Exit(1)
