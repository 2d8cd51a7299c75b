"""cas remove (alias: cas untrack)"""

from __future__ import annotations

import posixpath

import typer

from .app import app
from .output import open_repo, print_json, say

_HELP = "Stop tracking files or folders: delete their pointers and .gitignore lines."


def remove(
    paths: list[str] = typer.Argument(..., metavar="PATH...",
                                      help="Tracked data (or its .cas pointer)."),
    purge: bool = typer.Option(False, "--purge",
                               help="Also delete the data from the workspace."),
    force: bool = typer.Option(False, "--force", "-f",
                               help="With --purge: delete even changes the cache lacks."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Stop tracking files or folders: delete their pointers and .gitignore lines.

    The data stays in the workspace as an ordinary file unless --purge; the cache keeps
    its content until 'cas gc'.
    """
    with open_repo() as repo:
        res = repo.remove(paths, purge=purge, force=force)
    if json_out:
        print_json({"items": [i.to_dict() for i in res.items]})
        return
    for i in res.items:
        say(f"{'removed and deleted' if i.purged else 'untracked'}: {i.path} "
            f"(deleted {i.pointer})")
    if res.items:
        # 'git add -A' on a deleted path stages its deletion.
        paths_ = [i.pointer for i in res.items]
        paths_ += sorted({posixpath.join(posixpath.dirname(i.path), ".gitignore")
                          for i in res.items if i.gitignore})
        say(f"To record it in Git: git add -A {' '.join(paths_)}")


app.command("remove", help=_HELP)(remove)
app.command("untrack", help="Alias of 'cas remove'.")(remove)
