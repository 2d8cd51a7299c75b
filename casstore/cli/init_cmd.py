"""cas init"""

from __future__ import annotations

import typer

from .app import app
from .output import say


@app.command()
def init(force: bool = typer.Option(False, "--force", help="Rewrite an existing config.")) -> None:
    """Make the current folder a casstore repository (creates .cas/)."""
    from ..repo import Repo  # here for start-up time: see output.open_repo

    repo = Repo.init(".", force=force)
    say(f"Initialized casstore repository in {repo.cas_dir}")
    say("Commit .cas/config.yaml, .cas/.gitignore and .casignore; track data with "
        "'cas add PATH'.")
