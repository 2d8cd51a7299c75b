"""cas fetch"""

from __future__ import annotations

import sys

import typer

from .app import app
from .output import human_bytes, open_repo, plural, print_json, say
from .push_cmd import JOBS_HELP


@app.command()
def fetch(
    targets: list[str] = typer.Argument(None, metavar="[PATH]...",
                                        help="Tracked paths (default: all)."),
    remote: str = typer.Option(None, "--remote", "-r", help="Remote name (default: core.remote)."),
    jobs: int = typer.Option(None, "--jobs", "-j", min=1, max=256, help=JOBS_HELP),
    rev: list[str] = typer.Option(None, "--rev", help="Also fetch data of this Git revision."),
    all_branches: bool = typer.Option(False, "--all-branches", "-a",
                                      help="Also fetch data of every branch head."),
    all_tags: bool = typer.Option(False, "--all-tags", "-T", help="Also fetch tagged data."),
    all_commits: bool = typer.Option(False, "--all-commits", "-A",
                                     help="Also fetch data of every commit."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Download the data the pointers need into the cache (the workspace is not touched)."""
    from ..ops.sync import fetch as do_fetch

    with open_repo() as repo:
        res = do_fetch(repo, remote, targets or None, jobs=jobs, revs=rev or (),
                       all_branches=all_branches, all_tags=all_tags, all_commits=all_commits)
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
