"""cas push"""

from __future__ import annotations

import sys

import typer

from .app import app
from .output import human_bytes, open_repo, plural, print_json, say

JOBS_HELP = "Parallel transfers (default 8)."


@app.command()
def push(
    targets: list[str] = typer.Argument(None, metavar="[PATH]...",
                                        help="Tracked paths (default: all)."),
    remote: str = typer.Option(None, "--remote", "-r", help="Remote name (default: core.remote)."),
    jobs: int = typer.Option(None, "--jobs", "-j", min=1, max=256, help=JOBS_HELP),
    rev: list[str] = typer.Option(None, "--rev", help="Also push data of this Git revision."),
    all_branches: bool = typer.Option(False, "--all-branches", "-a",
                                      help="Also push data of every branch head."),
    all_tags: bool = typer.Option(False, "--all-tags", "-T", help="Also push tagged data."),
    all_commits: bool = typer.Option(False, "--all-commits", "-A",
                                     help="Also push data of every commit."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Upload the data the pointers need and the remote lacks."""
    from ..ops.sync import push as do_push

    with open_repo() as repo:
        res = do_push(repo, remote, targets or None, jobs=jobs, revs=rev or (),
                      all_branches=all_branches, all_tags=all_tags, all_commits=all_commits)
    if json_out:
        print_json(res.to_dict())
    else:
        # Both lines count against the same total, the objects the pointers need, so a
        # push and the no-op push after it agree ("2 of 9", then "all 9"). A pack sent whole
        # may carry objects other pointers need too: those are not counted here.
        needed = plural(res.objects_needed, "object")
        missing = res.objects_needed - res.objects_present
        if missing:
            packs = res.packs_uploaded + res.packs_repacked
            say(f"pushed {missing} of the {needed} the pointers need "
                f"({res.objects_present} already there) in "
                f"{plural(packs, 'pack')}, {human_bytes(res.bytes_uploaded)} to '{res.remote}'")
        elif not res.resent_after_gc:
            say(f"Everything is on '{res.remote}': all {needed} the pointers need.")
        if res.resent_after_gc:
            say(f"sent {plural(res.resent_after_gc, 'object')} again: a gc on '{res.remote}' had "
                "condemned the packs holding them while this push ran")
        for w in res.warnings:
            print(f"warning: {w}", file=sys.stderr)
        for m in res.missing:
            print(f"cas: error: {m}", file=sys.stderr)
    if res.missing:
        raise typer.Exit(1)
