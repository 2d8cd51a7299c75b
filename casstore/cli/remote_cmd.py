"""cas remote add|modify|remove|list|default"""

from __future__ import annotations

import typer

from ..errors import UsageError
from .app import app
from .output import open_repo, print_json, say

remote_app = typer.Typer(help="Manage remotes: stores at s3://, file://, memory:// or any "
                              "fsspec URL.", no_args_is_help=True)
app.add_typer(remote_app, name="remote")

LOCAL_HELP = "Write to the git-ignored .cas/config.local.yaml (for secrets and machine paths)."


@remote_app.command("add")
def add(
    name: str = typer.Argument(..., metavar="NAME", help="Short name, e.g. origin."),
    url: str = typer.Argument(..., metavar="URL",
                              help="s3://bucket/prefix, /path, file:///path, memory://x."),
    default: bool = typer.Option(False, "--default", "-d", help="Make it the default remote."),
    local: bool = typer.Option(False, "--local", help=LOCAL_HELP),
    force: bool = typer.Option(False, "--force", "-f", help="Replace a remote of that name."),
) -> None:
    """Add a remote (committed in .cas/config.yaml unless --local)."""
    with open_repo() as repo:
        spec = repo.add_remote(name, url, default=default, local=local, force=force)
    say(f"added remote '{spec.name}' at {spec.shown()}" + (" (default)" if default else ""))


@remote_app.command("modify")
def modify(
    name: str = typer.Argument(..., metavar="NAME", help="The remote."),
    option: str = typer.Argument(..., metavar="OPTION",
                                 help="url, or a storage option (endpoint_url, profile, "
                                           "anon, ...)."),
    value: str = typer.Argument(None, metavar="[VALUE]", help="New value (omit with --unset)."),
    unset: bool = typer.Option(False, "--unset", "-u", help="Remove the option."),
    local: bool = typer.Option(False, "--local", help=LOCAL_HELP),
) -> None:
    """Set or unset one option of a remote."""
    if (value is None) != unset:
        raise UsageError("give a VALUE, or --unset to remove the option")
    with open_repo() as repo:
        repo.modify_remote(name, option, None if unset else value, local=local)
    where = "config.local.yaml" if local else "config.yaml"
    say(f"{'unset' if unset else 'set'} {name}.{option} in {where}")


@remote_app.command("remove")
def remove(name: str = typer.Argument(..., metavar="NAME", help="The remote.")) -> None:
    """Forget a remote (its data stays where it is)."""
    with open_repo() as repo:
        repo.remove_remote(name)
    say(f"removed remote '{name}'")


@remote_app.command("list")
def list_(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List remotes with their URLs and options (secrets shown as ***)."""
    with open_repo() as repo:
        specs = repo.remotes()
        default = repo.default_remote()
    if json_out:
        print_json([{"name": s.name, "url": s.shown(), "default": s.name == default,
                     "options": s.public_options()} for s in specs.values()])
        return
    for s in specs.values():
        opts = " ".join(f"{k}={v}" for k, v in s.public_options().items())
        mark = "*" if s.name == default else " "
        say(f"{mark} {s.name}\t{s.shown()}" + (f"\t{opts}" if opts else ""))


@remote_app.command("default")
def default_(
    name: str = typer.Argument(None, metavar="[NAME]",
                               help="Remote to make the default (omit to show it)."),
    unset: bool = typer.Option(False, "--unset", help="Clear the default."),
    local: bool = typer.Option(False, "--local", help=LOCAL_HELP),
) -> None:
    """Show or set the default remote (core.remote)."""
    with open_repo() as repo:
        if name is None and not unset:
            cur = repo.default_remote()
            say(cur if cur else "no default remote")
            return
        repo.set_default_remote(None if unset else name, local=local)
    say("default remote cleared" if unset else f"default remote: {name}")
