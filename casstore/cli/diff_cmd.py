"""cas diff"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from ..errors import UsageError
from .app import app
from .output import open_repo, plural, print_json, say

if TYPE_CHECKING:
    from ..review.rules import Regression


# Options shared by ``cas diff`` and ``cas compare`` (one review, two ways in).
JSON_OPTION = typer.Option(False, "--json", help="Print JSON (same as --format json).")
KEY_OPTION = typer.Option(None, "--key", metavar="COL[,COL]",
                          help="Match table rows by these columns (default: "
                          "review.tables.<path>.key, else by row content).")
GATE_OPTION = typer.Option(False, "--fail-on-regression",
                           help="Exit 1 when a metric breaks a review rule of .cas/config.yaml.")


def check_format(fmt: str) -> None:
    if fmt not in ("text", "markdown", "json"):
        raise UsageError(f"unknown format {fmt!r}; use text, markdown or json")


def gate(regressions: list[Regression], rules: bool) -> None:
    """``--fail-on-regression``: one line per broken review rule on stderr, exit code 1.

    stderr, so that the report on stdout (a pull-request comment) stays as it is and the
    CI log still shows why the check failed.
    """
    # start-up: review.render brings the table and tensor reviews (~50 ms)
    from ..review.render import regression_lines

    if not rules:
        print("cas: no review.metrics rules in .cas/config.yaml; nothing to check",
              file=sys.stderr)
        return
    for line in regression_lines(regressions):
        print(f"cas: {line}", file=sys.stderr)
    if regressions:
        print(f"cas: {plural(len(regressions), 'review rule')} broken", file=sys.stderr)
        raise typer.Exit(1)


@app.command()
def diff(
    rev_a: str | None = typer.Argument(None, metavar="[REV_A]",
                                       help="Old revision (default HEAD)."),
    rev_b: str | None = typer.Argument(None, metavar="[REV_B]",
                                       help="New revision (default the working tree)."),
    fmt: str = typer.Option("text", "--format", metavar="text|markdown|json",
                            help="markdown is meant for pull-request comments."),
    json_out: bool = JSON_OPTION,
    key: str | None = KEY_OPTION,
    fail_on_regression: bool = GATE_OPTION,
) -> None:
    """Show what changed in tracked data between two revisions.

    Sizes, bytes really new, files added or removed, versions, metrics, tensors and table
    rows; --format markdown is the pull-request comment.
    """
    check_format(fmt)
    with open_repo() as repo:
        res = repo.diff(rev_a, rev_b, key=key)
    if json_out or fmt == "json":
        print_json(res.to_dict())
    else:
        # start-up: as in gate
        from ..review.render import diff_markdown, diff_text

        say(diff_markdown(res).rstrip() if fmt == "markdown" else diff_text(res))
    if fail_on_regression:
        gate(res.regressions, res.rules)
