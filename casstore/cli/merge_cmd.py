"""cas merge (resolve conflicted pointers) and cas merge-driver (called by Git)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..conflicts import conflict_text
from .app import app
from .output import open_repo, print_json, say


@app.command()
def merge(
    pointers: list[str] = typer.Argument(
        None, metavar="[POINTER]...",
        help="Conflicted pointer files (default: every unmerged *.cas)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Resolve the pointer files a Git merge left conflicted.

    Folders whose two sides changed different files are merged and checked out; real
    conflicts are listed.
    """
    with open_repo() as repo:
        results = repo.merge(pointers or None)
    if json_out:
        print_json([r.to_dict() for r in results])
    else:
        for r in results:
            if r.ok:
                say(f"merged {r.pointer} ({r.how}); run 'git add {r.pointer}' to mark it "
                    "resolved")
            for line in r.conflicts:
                print(f"cas: conflict: {line}", file=sys.stderr)
            for line in r.notes:
                print(f"note: {line}", file=sys.stderr)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


@app.command("merge-driver", hidden=True)
def merge_driver(
    base: str = typer.Argument(..., help="%O: the common ancestor's version."),
    ours: str = typer.Argument(..., help="%A: our version; the result is written here."),
    theirs: str = typer.Argument(..., help="%B: their version."),
    name: str = typer.Argument("pointer", help="%P: the pointer's path."),
) -> None:
    """Git merge driver for *.cas: merge pointers, exit 1 on a real conflict."""
    # start-up: every command module loads for --help; only this command needs this
    from ..atomic import atomic_write_text

    def read(p: str) -> str:
        return Path(p).read_bytes()[: 1 << 20].decode("utf-8", "replace")

    base_text, ours_text, theirs_text = read(base), read(ours), read(theirs)
    with open_repo() as repo:
        res = repo.merge_pointers(base_text, ours_text, theirs_text, name)
    if res.ok and res.text is not None:
        atomic_write_text(Path(ours), res.text)
        if res.how == "tree merge":
            print(f"cas: merged {name}: both sides' files combined", file=sys.stderr)
        for line in res.notes:
            print(f"note: {line}", file=sys.stderr)
        return
    atomic_write_text(Path(ours), conflict_text(ours_text, theirs_text))
    for line in res.conflicts:
        print(f"cas: conflict: {line}", file=sys.stderr)
    print(f"cas: {name}: pick a side (git checkout --ours/--theirs {name}) or fix the data, "
          "'cas add' it, then 'git add' the pointer", file=sys.stderr)
    raise typer.Exit(1)
