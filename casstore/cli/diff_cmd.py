"""cas diff"""

from __future__ import annotations

import typer

from ..errors import UsageError
from .app import app
from .output import open_repo, print_json, say


@app.command()
def diff(
    rev_a: str | None = typer.Argument(None, metavar="[REV_A]",
                                       help="Old revision (default HEAD)."),
    rev_b: str | None = typer.Argument(None, metavar="[REV_B]",
                                       help="New revision (default the working tree)."),
    fmt: str = typer.Option("text", "--format", metavar="text|markdown|json",
                            help="markdown is meant for pull-request comments."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (same as --format json)."),
) -> None:
    """Show tracked data that changed: sizes, new bytes, files, versions and metrics."""
    if fmt not in ("text", "markdown", "json"):
        raise UsageError(f"unknown format {fmt!r}; use text, markdown or json")
    with open_repo() as repo:
        res = repo.diff(rev_a, rev_b)
    if json_out or fmt == "json":
        print_json(res.to_dict())
        return
    from ..versions.report import diff_markdown, diff_text

    say(diff_markdown(res).rstrip() if fmt == "markdown" else diff_text(res))
