"""cas gc"""

from __future__ import annotations

import typer

from .app import app
from .output import human_bytes, open_repo, print_json, say


@app.command()
def gc(
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="Only show what would go."),
    rev: list[str] = typer.Option(None, "--rev", help="Also keep data of this Git revision."),
    all_branches: bool = typer.Option(False, "--all-branches", "-a",
                                      help="Also keep data of every branch head."),
    all_tags: bool = typer.Option(False, "--all-tags", "-T", help="Also keep tagged data."),
    all_commits: bool = typer.Option(False, "--all-commits", "-A",
                                     help="Also keep data of every commit."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    remote: str = typer.Option(None, "--remote", "-r", metavar="NAME",
                               help="Collect garbage on this remote instead of the cache."),
    grace: float = typer.Option(24.0, "--grace", metavar="HOURS",
                                help="With --remote: keep packs younger than this."),
) -> None:
    """Delete cached data that no pointer in the workspace (or named revisions) uses."""
    if remote:
        _remote_gc(remote, dry_run, rev or (), all_branches, all_tags, all_commits, grace,
                   json_out)
        return
    with open_repo() as repo:
        res = repo.gc(dry_run=dry_run, revs=rev or (), all_branches=all_branches,
                      all_tags=all_tags, all_commits=all_commits)
    if json_out:
        print_json(res.to_dict())
        return
    verb = "would remove" if dry_run else "removed"
    say(f"{verb} {res.objects_removed} objects ({human_bytes(res.bytes_freed)}): "
        f"{res.packs_deleted} pack(s) deleted, {res.packs_repacked} repacked; "
        f"keeping {res.objects_kept} objects ({human_bytes(res.bytes_kept)})")


def _remote_gc(remote: str, dry_run: bool, revs: list[str] | tuple[str, ...],
               all_branches: bool, all_tags: bool, all_commits: bool, grace: float,
               json_out: bool) -> None:
    from ..remote.gc import remote_gc

    with open_repo() as repo:
        res = remote_gc(repo, remote, dry_run=dry_run, grace_hours=grace, revs=revs,
                        all_branches=all_branches, all_tags=all_tags, all_commits=all_commits)
    if json_out:
        print_json(res.to_dict())
        return
    verb = "would delete" if dry_run else "deleted"
    for name in res.packs_deleted:
        say(f"{verb} pack {name}")
    for name in res.packs_repacked:
        say(f"{'would repack' if dry_run else 'repacked'} pack {name}")
    repacked = "would repack" if dry_run else "repacked"
    say(f"{verb} {len(res.packs_deleted) + res.unindexed_deleted} pack(s), {repacked} "
        f"{len(res.packs_repacked)}, freeing {human_bytes(res.bytes_freed)} on "
        f"'{res.remote}'; keeping {res.packs_kept} "
        f"({human_bytes(res.bytes_kept)}), of which {res.packs_too_young} unreferenced but "
        f"younger than {res.grace_hours:g} h")
