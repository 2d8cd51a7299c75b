"""The typer application and the options every command shares."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperOption

from .. import __version__
from ..errors import UsageError

app = typer.Typer(
    name="cas",
    help="Version large data and model files next to your code, deduplicated by chunk.",
    no_args_is_help=True,
    # typer's own --install-completion / --show-completion (bash, zsh, fish, PowerShell).
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class Globals:
    directory: str = "."
    quiet: bool = False
    verbose: bool = False


STATE = Globals()


QUIET_HELP = "Print only errors."
VERBOSE_HELP = "Print more detail."


def _show_version(value: bool) -> None:
    if value:
        print(f"cas (casstore) {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    directory: str = typer.Option(".", "-C", metavar="DIR",
                                  help="Run as if cas was started in DIR (like git -C)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
    verbose: bool = typer.Option(False, "--verbose", "-v", help=VERBOSE_HELP),
    version: bool = typer.Option(False, "--version", "-V", is_eager=True, callback=_show_version,
                                 help="Print the version and exit."),
) -> None:
    # `or`: -q/-v given after the subcommand were already recorded by _set_flag (its
    # callback runs while the subcommand's arguments are parsed, after this one; either
    # place must win over the other's default).
    STATE.directory = directory
    STATE.quiet = STATE.quiet or quiet
    STATE.verbose = STATE.verbose or verbose
    if directory != ".":
        try:
            os.chdir(directory)
        except OSError as exc:
            raise UsageError(f"cannot change to {directory}: {exc.strerror}") from None


def _set_flag(ctx: Any, param: Any, value: bool) -> None:
    if value and param.name:
        setattr(STATE, param.name, True)


def _add_global_flags(cmd: Any) -> None:
    """Accept -q/--quiet and -v/--verbose after every subcommand too (``cas init -q``), as
    git and DVC users type them. -C stays before the subcommand: it changes the directory,
    which must happen before anything else runs."""
    subs = getattr(cmd, "commands", None)
    if isinstance(subs, dict):  # a group (cas remote ...)
        for sub in subs.values():
            _add_global_flags(sub)
        return
    taken = {o for p in cmd.params for o in getattr(p, "opts", [])}
    for name, opts, text in (("quiet", ["--quiet", "-q"], QUIET_HELP),
                             ("verbose", ["--verbose", "-v"], VERBOSE_HELP)):
        free = [o for o in opts if o not in taken]
        if free:
            # TyperOption, not click.Option: typer builds its commands from its own
            # (vendored, in recent releases) copy of click.
            cmd.params.append(TyperOption(param_decls=[name, *free], is_flag=True,
                                          default=False, expose_value=False,
                                          callback=_set_flag, help=text))


def build() -> Any:
    """The click command for the whole CLI, with the shared flags on every subcommand."""
    cmd = typer.main.get_command(app)
    for sub in getattr(cmd, "commands", {}).values():
        _add_global_flags(sub)
    return cmd
