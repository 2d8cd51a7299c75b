"""cas compare"""

from __future__ import annotations

import typer

from ..errors import UsageError
from .app import app
from .diff_cmd import gate
from .output import open_repo, print_json, say


@app.command()
def compare(
    a: str = typer.Argument(..., metavar="OLD",
                            help="Old: PATH@VERSION, PATH@ALIAS, PATH@GITREV or PATH."),
    b: str = typer.Argument(..., metavar="NEW",
                            help="New: PATH@VERSION, PATH@ALIAS, PATH@GITREV or PATH."),
    fmt: str = typer.Option("text", "--format", metavar="text|markdown|json",
                            help="Output format."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (same as --format json)."),
    key: str | None = typer.Option(None, "--key", metavar="COL[,COL]",
                                   help="Match table rows by these columns (default: "
                                   "review.tables.<path>.key, else by row content)."),
    fail_on_regression: bool = typer.Option(
        False, "--fail-on-regression",
        help="Exit 1 when a metric breaks a review rule of .cas/config.yaml."),
) -> None:
    """Compare two versions of a model: metrics, params, data, environment and content.

    Content is compared tensor by tensor for weights and row by row for tables.
    """
    if fmt not in ("text", "markdown", "json"):
        raise UsageError(f"unknown format {fmt!r}; use text, markdown or json")
    from ..ops.compare import compare as run_compare

    with open_repo() as repo:
        res = run_compare(repo, a, b, key=key)
    if json_out or fmt == "json":
        print_json(res.to_dict())
    else:
        from ..versions.report import compare_markdown, compare_text

        say(compare_markdown(res).rstrip() if fmt == "markdown" else compare_text(res))
    if fail_on_regression:
        gate(res.regressions, res.rules)
