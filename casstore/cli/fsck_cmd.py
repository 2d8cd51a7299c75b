"""cas fsck"""

from __future__ import annotations

import sys

import typer

from .app import app
from .output import human_bytes, open_repo, plural, print_json, say


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
            say(f"{plural(res.root_records, 'push record')}, "
                f"{plural(res.condemnation_records, 'condemnation record')} naming "
                f"{plural(len(res.condemned_packs), 'pack')}")
        say(f"checked {plural(res.packs_checked, 'pack')}, "
            f"{plural(res.objects_checked, 'object')}, {human_bytes(res.bytes_checked)}: "
            f"{'ok' if res.ok else plural(len(res.damaged), 'problem')}")
    if not res.ok:
        raise typer.Exit(1)
