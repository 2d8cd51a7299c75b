"""cas status"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from .app import app
from .output import open_repo, print_json, say

if TYPE_CHECKING:
    from ..results import StatusEntry

# What --exit-code reports, like 'git diff --exit-code': the workspace or cache differs
# from the pointers. With --remote, data the remote lacks counts too (a CI job checking
# that everything was pushed).
WORKSPACE_STATES = ("modified", "missing", "not in cache")


@app.command()
def status(
    targets: list[str] = typer.Argument(None, metavar="[PATH]...",
                                        help="Tracked paths (default: all)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    remote: bool = typer.Option(False, "--remote", help="Also say per artifact whether the "
                                "default remote has it ('on remote', 'not pushed', 'not on "
                                "remote')."),
    remote_name: str = typer.Option(None, "--remote-name", "-r", metavar="NAME",
                                    help="Compare with this remote (implies --remote)."),
    exit_code: bool = typer.Option(False, "--exit-code",
                                   help="Exit 1 if anything is modified, missing or not in "
                                   "the cache (with --remote: or not on the remote)."),
) -> None:
    """Show tracked data that is modified, missing, or not in the cache (or the remote)."""
    name: str | None = None
    with open_repo() as repo:
        entries = repo.status(targets or None)
        if remote or remote_name:
            name = repo.mark_remote_states(entries, remote_name)
    differs = any(s in WORKSPACE_STATES or name is not None
                  for e in entries for s in e.states)
    if json_out:
        out: dict[str, object] = {"entries": [e.to_dict() for e in entries],
                                  "clean": all(e.clean for e in entries)}
        if name is not None:
            out["remote"] = name
        print_json(out)
    elif name is not None:
        _print_with_remote(entries, name)
    else:
        _print(entries)
    if exit_code and differs:
        raise typer.Exit(1)


def _print(entries: list[StatusEntry]) -> None:
    dirty = [e for e in entries if not e.clean]
    if not dirty:
        say(f"Everything is up to date ({len(entries)} tracked).")
        return
    for e in dirty:
        say(f"{', '.join(e.states)}: {e.path}")
        _details(e)


def _details(e: StatusEntry) -> None:
    for label, names in (("added", e.added), ("removed", e.removed),
                         ("modified", e.modified)):
        for n in names[:20]:
            say(f"    {label}: {e.path}/{n}")
        if len(names) > 20:
            say(f"    ... and {len(names) - 20} more {label}")


def _print_with_remote(entries: list[StatusEntry], name: str) -> None:
    # Every artifact gets a line: "is it on the remote?" is the question asked, and an
    # artifact the remote holds is an answer too.
    say(f"remote: {name}")
    for e in entries:
        states = list(e.states)
        if not any(s not in WORKSPACE_STATES for s in states):
            states.append("on remote")
        say(f"{', '.join(states)}: {e.path}")
        _details(e)
