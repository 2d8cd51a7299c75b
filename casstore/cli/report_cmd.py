"""cas report"""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import UsageError
from .app import app
from .output import open_repo, plural, say


@app.command()
def report(
    path: str = typer.Argument(..., metavar="PATH",
                               help="Tracked file or folder (or its .cas pointer)."),
    output: str = typer.Option(..., "--output", "-o", metavar="FILE.html",
                               help="Where to write the page."),
    metrics: str | None = typer.Option(None, "--metrics", metavar="METRIC[,METRIC]",
                                       help="Charts for these metrics (default: all)."),
    rev: str = typer.Option("HEAD", "--rev", help="Git revision whose history to read."),
) -> None:
    """Write one self-contained HTML page about the versions of a model.

    It shows each metric over the versions, the params that changed at each version, and
    the data each was trained on.
    """
    # start-up: review.plot (html) costs ~12 ms; only this command writes a report
    from ..atomic import atomic_write_text
    from ..review.plot import ReportVersion, html_report

    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    if metrics is not None and not names:
        raise UsageError("--metrics needs metric names, e.g. --metrics accuracy,loss")
    with open_repo() as repo:
        entries = repo.log(path, rev=rev)
        label = entries[0].pointer[:-len(".cas")] if entries else path
    versions = [ReportVersion(e.version or (e.commit or "work")[:7], e.commit, e.date,
                              e.digest, e.metrics, e.params, e.data, e.message, e.aliases)
                for e in reversed(entries)]
    page = html_report(label, versions, names)
    try:
        atomic_write_text(Path(output), page)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
    say(f"wrote {output}: {plural(len(versions), 'version')}, "
        f"{plural(page.count('<svg'), 'metric chart')}")
