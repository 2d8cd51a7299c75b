"""cas log"""

from __future__ import annotations

from typing import Any

import typer

from ..errors import UsageError
from .app import app
from .output import open_repo, print_json, say

HEADLINE = 3  # metrics per row unless versioning.log_metrics names them


def _metric_text(metrics: dict[str, Any], names: list[str] | None) -> str:
    # start-up: every command module loads for --help; only this command needs this
    from ..review.compare import flatten, fmt_value

    flat = flatten(metrics)
    keys = [n for n in names if n in flat] if names else list(flat)[:HEADLINE]
    return "  ".join(f"{k}={fmt_value(flat[k])}" for k in keys)


@app.command()
def log(
    path: str = typer.Argument(..., metavar="PATH",
                               help="Tracked file or folder (or its .cas pointer)."),
    rev: str = typer.Option("HEAD", "--rev", help="Git revision whose history to read."),
    plot: str | None = typer.Option(None, "--plot", metavar="METRIC[,METRIC]",
                                    help="Draw these metrics over the versions."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the versions of an artifact from Git history, or plot its metrics.

    Newest first, with aliases in brackets.
    """
    with open_repo() as repo:
        entries = repo.log(path, rev=rev)
        names = repo.config.get("versioning.log_metrics")
    if json_out:
        print_json({"path": path, "versions": [e.to_dict() for e in entries]})
        return
    if plot is not None:
        _plot(entries, plot)
        return
    names = [str(n) for n in names] if isinstance(names, list) else None
    rows = [(e.version or "-", e.commit[:10] if e.commit else "(uncommitted)",
             (e.date or "")[:10], e.digest[:12],
             _metric_text(e.metrics, names)
             + "".join(f"  [{a}]" for a in e.aliases))
            for e in entries]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        say("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4])


def _plot(entries: list[Any], spec: str) -> None:
    # start-up: review.plot (html) costs ~12 ms; only 'cas log --plot' draws
    from ..review.compare import flatten
    from ..review.plot import terminal_plot

    metrics = [m.strip() for m in spec.split(",") if m.strip()]
    if not metrics:
        raise UsageError("--plot needs metric names, e.g. --plot accuracy,loss")
    oldest_first = entries[::-1]
    flat = [flatten(e.metrics) for e in oldest_first]
    known = {k for f in flat for k in f}
    missing = [m for m in metrics if m not in known]
    if missing:
        have = ", ".join(sorted(known)) or "none"
        raise UsageError(f"no version records metric {missing[0]!r} (recorded: {have})")
    labels = [e.version or (e.commit or "work")[:7] for e in oldest_first]
    say("\n\n".join(terminal_plot(m, labels, [f.get(m) for f in flat]) for m in metrics))
