"""cas gc"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from .app import app
from .options import revision_options
from .output import human_bytes, open_repo, plural, print_json, say

if TYPE_CHECKING:
    from ..gitutil import RevSelection


@app.command()
@revision_options("keep", branches="every branch, remote-tracking branches included")
def gc(
    select: RevSelection,
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="Only show what would go."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    remote: str = typer.Option(None, "--remote", "-r", metavar="NAME",
                               help="Collect garbage on this remote instead of the cache."),
    grace: float = typer.Option(None, "--grace", metavar="HOURS", min=0,
                                help="With --remote: hours between condemning a pack and "
                                "deleting it (default gc.grace_hours, 24)."),
    keep_pushed: float = typer.Option(None, "--keep-pushed", metavar="DAYS", min=0,
                                      help="With --remote: keep what pushes of the last DAYS "
                                      "made reachable (default gc.keep_pushed_days, 30)."),
    jobs: int = typer.Option(None, "--jobs", "-j", min=1, max=256,
                             help="Parallel transfers for --remote."),
) -> None:
    """Delete data no pointer uses: in the cache now, on a remote in two phases."""
    with open_repo() as repo:
        res = repo.gc(dry_run=dry_run, select=select, remote=remote, grace_hours=grace,
                      keep_pushed_days=keep_pushed, jobs=jobs)
    if json_out:
        print_json(res.to_dict())
        return
    for w in res.warnings:
        print(f"warning: {w}", file=sys.stderr)
    verb = "would delete" if dry_run else "deleted"
    if remote is None:
        if res.clones:
            verb_ref = "references" if len(res.clones) == 1 else "reference"
            say(f"kept what the {plural(len(res.clones), 'clone')} using this cache {verb_ref}: "
                + ", ".join(res.clones))
        for c in res.clones_dropped:
            say(f"{'would forget' if dry_run else 'forgot'} clone {c} (gone or using "
                "another cache)")
        say(f"{verb} {plural(len(res.packs_deleted), 'pack')} ({human_bytes(res.bytes_freed)}), "
            f"{'would repack' if dry_run else 'repacked'} {len(res.packs_repacked)}, "
            f"{plural(res.objects_dead, 'unused object')}; keeping "
            f"{plural(res.objects_kept, 'object')} "
            f"({human_bytes(res.bytes_kept)})")
        return
    for name in res.packs_deleted:
        say(f"{verb} pack {name}")
    for name in res.packs_rescued:
        say(f"kept pack {name}: condemned earlier, but something needs it again")
    condemn = "would condemn" if dry_run else "condemned"
    grace = f"{res.grace_hours:g} h"
    say(f"{res.store}: {verb} {plural(len(res.packs_deleted), 'pack')} condemned at least {grace} "
        f"ago ({human_bytes(res.bytes_freed)}); {condemn} {len(res.packs_condemned)} more "
        f"(a gc {grace} or more from now deletes them if still unused); "
        f"{plural(res.condemnations_pending, 'earlier condemnation')} still in "
        f"{'its' if res.condemnations_pending == 1 else 'their'} grace period; "
        f"{res.root_records_live} of {plural(res.root_records, 'push record')} within "
        f"{res.retention_days:g} days {'keeps its' if res.root_records_live == 1 else 'keep'}"
        f"{'' if res.root_records_live == 1 else ' their'} data")
    if not res.conditional_lease:
        say("note: this remote's storage has no conditional write, so two gc runs started "
            "at the same instant are detected by listing only; run one gc at a time")
