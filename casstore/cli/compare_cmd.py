"""cas compare"""

from __future__ import annotations

import typer

from ..errors import UsageError
from .app import app
from .output import open_repo, print_json, say


@app.command()
def compare(
    a: str = typer.Argument(..., metavar="A", help="Old: PATH@VERSION, PATH@GITREV or PATH."),
    b: str = typer.Argument(..., metavar="B", help="New: PATH@VERSION, PATH@GITREV or PATH."),
    fmt: str = typer.Option("text", "--format", metavar="text|markdown|json",
                            help="Output format."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (same as --format json)."),
) -> None:
    """Compare two versions: metrics, params, data, environment, and what content changed."""
    if fmt not in ("text", "markdown", "json"):
        raise UsageError(f"unknown format {fmt!r}; use text, markdown or json")
    with open_repo() as repo:
        res = repo.compare(a, b)
    if json_out or fmt == "json":
        print_json(res.to_dict())
        return
    from ..versions.report import compare_markdown, compare_text

    say(compare_markdown(res).rstrip() if fmt == "markdown" else compare_text(res))
