"""cas push"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from .app import app
from .options import revision_options
from .output import human_bytes, open_repo, plural, print_json, say

if TYPE_CHECKING:
    from ..gitutil import RevSelection

JOBS_HELP = "Parallel transfers (default 8)."


@app.command()
@revision_options("push")
def push(
    select: RevSelection,
    targets: list[str] = typer.Argument(None, metavar="[PATH]...",
                                        help="Tracked paths (default: all)."),
    remote: str = typer.Option(None, "--remote", "-r", help="Remote name (default: core.remote)."),
    jobs: int = typer.Option(None, "--jobs", "-j", min=1, max=256, help=JOBS_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Upload the data the pointers need and the remote lacks."""
    with open_repo() as repo:
        res = repo.push(targets or None, remote=remote, jobs=jobs, select=select)
    if json_out:
        print_json(res.to_dict())
    else:
        # Both lines count against the same total, the objects the pointers need, so a
        # push and the no-op push after it agree ("2 of 9", then "all 9"). A pack sent whole
        # may carry objects other pointers need too: those are not counted here.
        needed = plural(res.objects_needed, "object")
        missing = res.objects_needed - res.objects_present
        if missing:
            packs = res.packs_uploaded + res.packs_built
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
