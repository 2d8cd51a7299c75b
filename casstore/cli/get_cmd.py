"""cas get: download an artifact tracked in another Git repository."""

from __future__ import annotations

import typer

from ..errors import NotARepoError
from .app import app
from .output import CliReporter, human_bytes, plural, print_json, say


@app.command()
def get(
    url: str = typer.Argument(..., metavar="URL",
                              help="The other repository: a local folder or a Git URL."),
    path: str = typer.Argument(..., metavar="PATH",
                               help="A tracked file or folder there (or a path inside a "
                                         "tracked folder)."),
    rev: str = typer.Option(None, "--rev", help="Branch, tag or commit (default: its "
                                                "default branch)."),
    out: str = typer.Option(None, "-o", "--out", help="Where to write it (default: its name "
                                                      "in the current folder)."),
    force: bool = typer.Option(False, "--force", "-f", help="Replace OUT if it exists."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Download a tracked artifact of another repository as a plain, untracked copy.

    Use 'cas import' instead to track it here.
    """
    from ..repo import Repo  # here for start-up time: see output.open_repo

    try:
        here: Repo | None = Repo(".", reporter=CliReporter())
    except NotARepoError:
        here = None
    try:
        res = Repo.get(url, path, rev=rev, out=out, force=force, here=here)
    finally:
        if here is not None:
            here.close()
    if json_out:
        print_json(res.to_dict())
        return
    what = f"{plural(res.files or 0, 'file')}, " if res.kind == "dir" else ""
    say(f"downloaded {res.path} ({what}{human_bytes(res.size)}) from {url} at "
        f"{res.source['rev']} ({res.source['commit'][:10]})")
