"""cas import / cas update: track an artifact of another repository, and refresh it."""

from __future__ import annotations

import typer

from .app import app
from .output import human_bytes, open_repo, print_json, say


@app.command("import")
def import_(
    url: str = typer.Argument(..., help="The other repository: a local folder or a Git URL."),
    path: str = typer.Argument(..., help="A tracked file or folder there (or a path inside a "
                                         "tracked folder)."),
    rev: str = typer.Option(None, "--rev", help="Branch, tag or commit to follow (default: "
                                                "its default branch)."),
    out: str = typer.Option(None, "-o", "--out", help="Where to put it here (default: its "
                                                      "name in the current folder)."),
    force: bool = typer.Option(False, "--force", "-f",
                               help="Replace data already tracked here with 'cas add'."),
    remote_config: list[str] = typer.Option(
        None, "--remote-config", metavar="KEY=VALUE",
        help="A storage option for the other repository's remote, e.g. endpoint_url=URL "
        "when it is set per machine there (repeatable; AWS_ENDPOINT_URL works too)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Track an artifact of another repository here, recording where it came from.

    Its data enters the cache and the workspace, and the pointer records its source so
    'cas update' can refresh it.
    """
    # start-up: remote.config brings the config module and yaml, which --help does not load
    from ..remote.config import parse_overrides

    overrides = parse_overrides(remote_config)
    with open_repo() as repo:
        res = repo.import_artifact(url, path, rev=rev, out=out, force=force,
                                   remote_config=overrides)
    if json_out:
        print_json(res.to_dict())
        return
    say(f"imported {res.path} ({human_bytes(res.size)}) from {url} at {res.source['rev']} "
        f"({res.source['commit'][:10]})")
    say(f"To record it in Git: git add {res.path}.cas .gitignore")


@app.command()
def update(
    targets: list[str] = typer.Argument(None, help="Imported paths (default: all)."),
    rev: str = typer.Option(None, "--rev", help="Follow this revision from now on."),
    remote_config: list[str] = typer.Option(
        None, "--remote-config", metavar="KEY=VALUE",
        help="A storage option for the source repositories' remote (as for 'cas import')."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Refresh imported artifacts to the newest commit of their recorded revision."""
    # start-up: remote.config brings the config module and yaml, which --help does not load
    from ..remote.config import parse_overrides

    overrides = parse_overrides(remote_config)
    with open_repo() as repo:
        results = repo.update(targets or None, rev=rev, remote_config=overrides)
    if json_out:
        print_json([r.to_dict() for r in results])
        return
    for r in results:
        if r.changed:
            say(f"updated {r.path} to {r.source['rev']} ({r.source['commit'][:10]})")
        else:
            say(f"{r.path} is up to date ({r.source['rev']}, {r.source['commit'][:10]})")
