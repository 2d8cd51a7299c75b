"""cas pull"""

from __future__ import annotations

import sys

import typer

from .app import app
from .output import human_bytes, open_repo, plural, print_json, say
from .push_cmd import JOBS_HELP


@app.command()
def pull(
    targets: list[str] = typer.Argument(None, metavar="[PATH]...",
                                        help="Tracked paths (default: all)."),
    remote: str = typer.Option(None, "--remote", "-r", help="Remote name (default: core.remote)."),
    jobs: int = typer.Option(None, "--jobs", "-j", min=1, max=256, help=JOBS_HELP),
    force: bool = typer.Option(False, "--force", "-f",
                               help="Overwrite workspace changes that are not in the cache."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Fetch the data the pointers need, then check it out into the workspace."""
    with open_repo() as repo:
        res = repo.pull(targets or None, remote=remote, jobs=jobs, force=force)
    f, c = res.fetch, res.checkout
    if json_out:
        print_json(res.to_dict())
    else:
        if f.objects_fetched:
            say(f"fetched {plural(f.objects_fetched, 'object')}, "
                f"{human_bytes(f.bytes_downloaded)} from "
                f"'{f.remote}'")
        if c.restored:
            say(f"restored {plural(len(c.restored), 'file')}, {human_bytes(c.bytes_written)}")
        if not f.objects_fetched and not c.restored and not c.removed and not c.failed:
            say("Everything is up to date.")
        for m in f.missing + c.failed:
            print(f"cas: error: {m}", file=sys.stderr)
    if f.missing or c.failed:
        raise typer.Exit(1)
