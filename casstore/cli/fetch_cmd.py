"""cas fetch"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from .app import app
from .options import revision_options
from .output import human_bytes, open_repo, plural, print_json, say
from .push_cmd import JOBS_HELP

if TYPE_CHECKING:
    from ..gitutil import RevSelection


@app.command()
@revision_options("fetch")
def fetch(
    select: RevSelection,
    targets: list[str] = typer.Argument(None, metavar="[PATH]...",
                                        help="Tracked paths (default: all)."),
    remote: str = typer.Option(None, "--remote", "-r", help="Remote name (default: core.remote)."),
    jobs: int = typer.Option(None, "--jobs", "-j", min=1, max=256, help=JOBS_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Download the data the pointers need into the cache (the workspace is not touched)."""
    with open_repo() as repo:
        res = repo.fetch(targets or None, remote=remote, jobs=jobs, select=select)
    if json_out:
        print_json(res.to_dict())
    else:
        say(f"fetched {plural(res.objects_fetched, 'object')}, "
            f"{human_bytes(res.bytes_downloaded)} in {plural(res.ranges, 'request')} "
            f"from '{res.remote}'" if res.objects_fetched else
            "Everything needed is in the cache.")
        for m in res.missing:
            print(f"cas: error: {m}", file=sys.stderr)
    if res.missing:
        raise typer.Exit(1)
