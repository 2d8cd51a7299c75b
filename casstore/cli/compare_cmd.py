"""cas compare"""

from __future__ import annotations

import typer

from .app import app
from .diff_cmd import GATE_OPTION, JSON_OPTION, KEY_OPTION, check_format, gate
from .output import open_repo, print_json, say


@app.command()
def compare(
    a: str = typer.Argument(..., metavar="OLD",
                            help="Old: PATH@VERSION, PATH@ALIAS, PATH@GITREV or PATH."),
    b: str = typer.Argument(..., metavar="NEW",
                            help="New: PATH@VERSION, PATH@ALIAS, PATH@GITREV or PATH."),
    fmt: str = typer.Option("text", "--format", metavar="text|markdown|json",
                            help="Output format."),
    json_out: bool = JSON_OPTION,
    key: str | None = KEY_OPTION,
    fail_on_regression: bool = GATE_OPTION,
) -> None:
    """Compare two versions of a model: metrics, params, data, environment and content.

    Content is compared tensor by tensor for weights and row by row for tables.
    """
    check_format(fmt)
    with open_repo() as repo:
        res = repo.compare(a, b, key=key)
    if json_out or fmt == "json":
        print_json(res.to_dict())
    else:
        # start-up: review.render brings the table and tensor reviews (~50 ms)
        from ..review.render import compare_markdown, compare_text

        say(compare_markdown(res).rstrip() if fmt == "markdown" else compare_text(res))
    if fail_on_regression:
        gate(res.regressions, res.rules)
