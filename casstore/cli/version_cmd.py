"""cas version"""

from __future__ import annotations

import typer

from ..errors import UsageError
from .app import app
from .output import detail, open_repo, print_json, say


def _alias(path: str, alias: str | None, unalias: str | None, to: str | None,
           json_out: bool, recording: bool) -> None:
    if alias is not None and unalias is not None:
        raise UsageError("give either --alias or --unalias, not both")
    if recording:
        raise UsageError("--alias and --unalias work on committed versions: record and "
                         "commit the version first, then set the alias on its own")
    if unalias is not None and to is not None:
        raise UsageError("--to goes with --alias, not --unalias")
    with open_repo() as repo:
        res = repo.alias(path, alias or unalias or "", to=to, remove=unalias is not None)
    if json_out:
        print_json(res.to_dict())
        return
    assert res.commit is not None
    if res.removed:
        say(f"removed alias: {res.tag} (was {res.commit[:10]})")
        say(f"To share it: git push origin :refs/tags/{res.tag}")
        return
    state = "alias" if res.changed else "alias unchanged"
    say(f"{state}: {res.tag} -> {res.version} ({res.commit[:10]})")
    if res.changed:
        say(f"To share it: git push --force origin refs/tags/{res.tag}")


@app.command()
def version(
    path: str = typer.Argument(..., metavar="PATH",
                               help="Tracked file or folder (or its .cas pointer)."),
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
    alias: str | None = typer.Option(None, "--alias", metavar="NAME",
                                     help="Point alias NAME (e.g. production) at the committed "
                                     "version, or at --to VERSION: a Git tag PATH@NAME."),
    unalias: str | None = typer.Option(None, "--unalias", metavar="NAME",
                                       help="Remove alias NAME."),
    to: str | None = typer.Option(None, "--to", metavar="VERSION",
                                  help="With --alias: the version (or alias, or Git "
                                  "revision) it points at."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Record a model version in its pointer, tag it, or point an alias at it.

    A version carries params, metrics, data lineage and environment.
    """
    if alias is not None or unalias is not None:
        _alias(path, alias, unalias, to, json_out, any([
            bump, set_version, params_files, params, metrics_files, metrics, data, env,
            message, scheme, tag]))
        return
    if to is not None:
        raise UsageError("--to goes with --alias NAME")
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
