"""The typer application and the options every command shares."""

from __future__ import annotations

import os
from dataclasses import dataclass

import typer

app = typer.Typer(
    name="cas",
    help="Version large data and model files next to your code, deduplicated by chunk.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class Globals:
    directory: str = "."
    quiet: bool = False
    verbose: bool = False


STATE = Globals()


@app.callback()
def main_options(
    directory: str = typer.Option(".", "-C", metavar="DIR",
                                  help="Run as if cas was started in DIR (like git -C)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only errors."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Print more detail."),
) -> None:
    STATE.directory = directory
    STATE.quiet = quiet
    STATE.verbose = verbose
    if directory != ".":
        try:
            os.chdir(directory)
        except OSError as exc:
            from ..errors import UsageError

            raise UsageError(f"cannot change to {directory}: {exc.strerror}") from None
