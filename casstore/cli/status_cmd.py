"""cas status"""

from __future__ import annotations

import typer

from .app import app
from .output import open_repo, print_json, say


@app.command()
def status(
    targets: list[str] = typer.Argument(None, help="Tracked paths (default: all)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    remote: bool = typer.Option(False, "--remote", help="Also compare with the default remote "
                                "('not pushed', 'not on remote')."),
    remote_name: str = typer.Option(None, "--remote-name", "-r", metavar="NAME",
                                    help="Compare with this remote (implies --remote)."),
) -> None:
    """Show tracked data that is modified, missing, or not in the cache (or the remote)."""
    with open_repo() as repo:
        entries = repo.status(targets or None)
        if remote or remote_name:
            from ..ops.sync import mark_remote_states

            mark_remote_states(repo, entries, remote_name)
    if json_out:
        print_json({"entries": [e.to_dict() for e in entries],
                    "clean": all(e.clean for e in entries)})
        return
    dirty = [e for e in entries if not e.clean]
    if not dirty:
        say(f"Everything is up to date ({len(entries)} tracked).")
        return
    for e in dirty:
        say(f"{', '.join(e.states)}: {e.path}")
        for label, names in (("added", e.added), ("removed", e.removed),
                             ("modified", e.modified)):
            for n in names[:20]:
                say(f"    {label}: {e.path}/{n}")
            if len(names) > 20:
                say(f"    ... and {len(names) - 20} more {label}")
