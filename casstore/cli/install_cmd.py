"""cas install / cas uninstall, and the plumbing Git calls: cas hook, cas textconv."""

from __future__ import annotations

import sys

import typer

from ..errors import CasError, NotARepoError
from .app import STATE, app
from .output import open_repo, print_json, say, warn


@app.command()
def install(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Add Git hooks, a readable diff of *.cas files and the pointer merge driver.

    With the hooks, data follows checkout and merge, git push sends the data first, and a
    commit warns about tracked data changed since it was added.
    """
    with open_repo() as repo:
        res = repo.install()
    if json_out:
        print_json(res.to_dict())
        return
    say(f"installed hooks in {res.hooks_dir}: {', '.join(res.hooks)}")
    if res.chained:
        say(f"kept your existing hooks and run them after ours: {', '.join(res.chained)}")
    say("configured the 'cas' diff and merge drivers in .git/config")
    if res.gitattributes:
        say("added '*.cas diff=cas merge=cas' to .gitattributes; commit it so every clone "
            "uses it")


@app.command()
def uninstall(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Remove what 'cas install' added to the hooks and Git config (your hooks stay)."""
    with open_repo() as repo:
        res = repo.uninstall()
    if json_out:
        print_json(res.to_dict())
        return
    if res.hooks or res.config:
        say(f"removed casstore from hooks: {', '.join(res.hooks) or 'none'}; "
            f"git config entries removed: {len(res.config)}")
    else:
        say("casstore was not installed here")


@app.command(hidden=True)
def hook(
    name: str = typer.Argument(..., help="The Git hook being run."),
    args: list[str] = typer.Argument(None, help="The hook's arguments from Git."),
) -> None:
    """Run the casstore part of a Git hook (called by the hooks 'cas install' writes)."""
    try:
        repo = open_repo()
    except NotARepoError:
        return  # e.g. a branch from before casstore was set up: nothing to do
    with repo:
        # What a hook did is shown on a terminal only: Git prints hook output inside its
        # own, and scripts running git should not get our lines.
        tty = sys.stderr.isatty() and not STATE.quiet

        def tell(m: str) -> None:
            print(f"cas: {m}", file=sys.stderr, flush=True)

        rc = repo.run_hook(name, list(args or []), lambda m: warn(f"cas {name}: {m}"),
                           tell if tty else None, tell)
    if rc:
        raise typer.Exit(rc)


@app.command(hidden=True)
def textconv(path: str = typer.Argument(..., help="A pointer file (Git passes a temp copy).")
             ) -> None:
    """Print a readable summary of a pointer file (Git's diff driver for *.cas)."""
    from ..repo import Repo  # here for start-up time: see output.open_repo

    with open(path, "rb") as f:
        text = f.read(1 << 20).decode("utf-8", "replace")
    try:
        repo: Repo | None = Repo(".")
    except CasError:
        repo = None
    try:
        sys.stdout.write(Repo.textconv(text, path, repo))
    finally:
        if repo is not None:
            repo.close()
