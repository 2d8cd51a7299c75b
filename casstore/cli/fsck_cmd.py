"""cas fsck"""

from __future__ import annotations

import sys

import typer

from .app import app
from .output import human_bytes, open_repo, print_json, say


@app.command()
def fsck(
    repair: bool = typer.Option(False, "--repair",
                                help="Re-index packs left unindexed by an interrupted command."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Verify every object in the cache; exit 1 and name the damage if any."""
    with open_repo() as repo:
        res = repo.fsck(repair=repair)
    if json_out:
        print_json({**res.to_dict(), "ok": res.ok})
    else:
        for w in res.warnings:
            print(f"warning: {w}", file=sys.stderr)
        for r in res.repaired:
            say(f"repaired: {r}")
        for d in res.damaged:
            print(f"damaged: {d}", file=sys.stderr)
        say(f"checked {res.packs_checked} packs, {res.objects_checked} objects, "
            f"{human_bytes(res.bytes_checked)}: "
            f"{'ok' if res.ok else str(len(res.damaged)) + ' problem(s)'}")
    if not res.ok:
        raise typer.Exit(1)
