"""cas version"""

from __future__ import annotations

import typer

from .app import app
from .output import detail, open_repo, print_json, say


@app.command()
def version(
    path: str = typer.Argument(..., help="Tracked file or folder (or its .cas pointer)."),
    bump: str | None = typer.Option(None, "--bump", metavar="major|minor|patch",
                                    help="Semantic scheme: which part to increase."),
    set_version: str | None = typer.Option(None, "--set", metavar="VERSION",
                                           help="Record this exact version."),
    params_files: list[str] = typer.Option([], "--params", metavar="FILE",
                                           help="Params from a YAML or JSON file."),
    params: list[str] = typer.Option([], "--param", metavar="KEY=VALUE", help="One param."),
    metrics_files: list[str] = typer.Option([], "--metrics", metavar="FILE",
                                            help="Metrics from a YAML or JSON file."),
    metrics: list[str] = typer.Option([], "--metric", metavar="KEY=VALUE", help="One metric."),
    data: list[str] = typer.Option([], "--data", metavar="X.cas",
                                   help="Data it was trained on (recorded with its digest)."),
    env: str | None = typer.Option(None, "--env", metavar="requirements.txt|auto",
                                   help="Record Python, platform and package versions."),
    message: str | None = typer.Option(None, "--message", "-m", help="What this version is."),
    scheme: str | None = typer.Option(None, "--scheme",
                                      help="semantic, calendar, sequential or githash "
                                      "(recorded for this artifact)."),
    tag: bool = typer.Option(False, "--tag", help="Tag the committed version as PATH@VERSION."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Record a model version (params, metrics, data lineage, environment) in its pointer."""
    with open_repo() as repo:
        res = repo.version(path, bump=bump, set_version=set_version, params_files=params_files,
                           params=params, metrics_files=metrics_files, metrics=metrics,
                           data=data, env=env, message=message, scheme=scheme, tag=tag)
    if json_out:
        print_json(res.to_dict())
        return
    if res.tag:
        state = "tagged" if res.changed else "already tagged"
        say(f"{state}: {res.tag}")
        if res.changed:
            say(f"To share it: git push origin {res.tag}")
        return
    before = f" (previous {res.previous})" if res.previous else ""
    if res.resolved_conflict:
        say(f"resolved the conflict in {res.pointer} with the working tree's data")
    state = "recorded" if res.changed else "unchanged"
    say(f"{state}: {res.path} {res.version}{before} [{res.scheme}]")
    for key in ("params", "metrics", "data", "env"):
        if res.meta.get(key):
            detail(f"  {key}: {res.meta[key]}")
    if res.changed:
        say(f"To record it in Git: git add {res.pointer} && git commit -m "
            f"\"{res.path} {res.version}\"")
