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
    remote: bool = typer.Option(False, "--remote", help="Check the default remote instead "
                                "(downloads every pack)."),
    remote_name: str = typer.Option(None, "--remote-name", "-r", metavar="NAME",
                                    help="Check this remote (implies --remote)."),
    jobs: int = typer.Option(None, "--jobs", "-j", min=1, max=256,
                             help="Parallel downloads for --remote."),
) -> None:
    """Verify every object in the cache (or a remote); exit 1 and name the damage if any."""
    with open_repo() as repo:
        res = repo.fsck(repair=repair, jobs=jobs,
                        remote=(remote_name or "") if remote or remote_name else None)
    if json_out:
        print_json({**res.to_dict(), "ok": res.ok})
    else:
        for w in res.warnings:
            print(f"warning: {w}", file=sys.stderr)
        for r in res.repaired:
            say(f"repaired: {r}")
        for d in res.damaged:
            print(f"damaged: {d}", file=sys.stderr)
        if res.root_records or res.condemnation_records:
            say(f"{res.root_records} push record(s), {res.condemnation_records} "
                f"condemnation record(s) naming {len(res.condemned_packs)} pack(s)")
        say(f"checked {res.packs_checked} packs, {res.objects_checked} objects, "
            f"{human_bytes(res.bytes_checked)}: "
            f"{'ok' if res.ok else str(len(res.damaged)) + ' problem(s)'}")
    if not res.ok:
        raise typer.Exit(1)
