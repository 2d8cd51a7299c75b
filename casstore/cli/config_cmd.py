"""cas config [--local] KEY [VALUE] | --list | --unset KEY"""

from __future__ import annotations

import json
import re
from typing import Any

import typer

from ..errors import UsageError
from .app import app
from .output import open_repo, print_json, say

KEY_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_.-]+)*$")


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict):
        out: list[tuple[str, Any]] = []
        for k in sorted(data, key=str):
            out += _flatten(data[k], f"{prefix}{k}.")
        return out
    return [(prefix[:-1], data)]


def _shown(key: str, value: Any) -> Any:
    """The value as --list prints it: secrets (by option name) and URL passwords as ***,
    with the same rules as ``cas remote list``, so a pasted listing leaks nothing."""
    # start-up: remote.config brings the config module and yaml, which --help does not load
    from ..remote.config import REDACTED, is_secret, redact_url

    if is_secret(key.rsplit(".", 1)[-1]):
        return REDACTED
    return redact_url(value) if isinstance(value, str) else value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _check_key(key: str) -> None:
    if not KEY_RE.match(key) or "." not in key:
        raise UsageError(f"config key {key!r} is invalid: use SECTION.NAME, e.g. core.remote "
                         "or cache.dir")


@app.command()
def config(
    key: str | None = typer.Argument(None, metavar="[KEY]",
                                     help="Dotted key, e.g. core.remote or cache.dir."),
    value: str | None = typer.Argument(None, metavar="[VALUE]",
                                       help="New value (true, 3 and 1.5 are typed as YAML)."),
    local: bool = typer.Option(False, "--local",
                               help="Use the git-ignored .cas/config.local.yaml (secrets, "
                               "machine paths) instead of the committed .cas/config.yaml."),
    list_: bool = typer.Option(False, "--list", "-l",
                               help="Print every setting (secrets shown as ***)."),
    unset: bool = typer.Option(False, "--unset", help="Remove KEY."),
    json_out: bool = typer.Option(False, "--json", help="With --list: print JSON."),
) -> None:
    """Get, set or unset a setting of .cas/config.yaml, or list them all.

    Reading shows the merged view: defaults, then config.yaml, then config.local.yaml.
    Writing changes one file: config.yaml, or config.local.yaml with --local.
    """
    if list_:
        if key is not None or unset:
            raise UsageError("--list takes no KEY and no --unset")
        with open_repo() as repo:
            cfg = repo.config
            data = cfg.local if local else cfg.data
        rows = [(k, _shown(k, v)) for k, v in _flatten(data)]
        if json_out:
            print_json(dict(rows))
            return
        for k, v in rows:
            say(f"{k}={_text(v)}")
        return
    if key is None:
        raise UsageError("give a KEY (cas config core.remote), KEY VALUE to set it, "
                         "--unset KEY or --list")
    _check_key(key)
    # start-up: as in _shown
    from ..remote.config import is_secret, parse_value

    with open_repo() as repo:
        cfg = repo.config
        if unset:
            if value is not None:
                raise UsageError("--unset takes a KEY and no VALUE")
            if not cfg.unset(key, local=local):
                where = "config.local.yaml" if local else "config.yaml"
                raise UsageError(f"{key} is not set in {where}")
            cfg.save(local)
            return
        if value is None:
            got = cfg.get(key)
            if got is None:
                # Like `git config KEY`: nothing printed, exit 1, so scripts can test for it.
                raise typer.Exit(1)
            if isinstance(got, dict):
                raise UsageError(f"{key} is a section; ask for one of its keys: "
                                 + ", ".join(f"{key}.{k}" for k in sorted(got, key=str)))
            say(_text(got))
            return
        if is_secret(key.rsplit(".", 1)[-1]) and not local:
            raise UsageError(f"{key!r} is a secret: store it in the git-ignored "
                             "config.local.yaml with --local (or use the environment)")
        if isinstance(cfg.get(key), dict):
            raise UsageError(f"{key} is a section; set one of its keys instead")
        cfg.set(key, parse_value(value), local=local)
        cfg.save(local)
