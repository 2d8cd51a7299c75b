"""cas ls"""

from __future__ import annotations

import typer

from ..errors import UsageError
from .app import app
from .output import human_bytes, open_repo, print_json, say


@app.command("ls")
def ls_command(
    args: list[str] = typer.Argument(
        None, metavar="[REV] [NAME]",
        help="A Git revision (branch, tag, commit; default: the workspace's pointers) and, "
        "after --remote, the remote's name."),
    remote: bool = typer.Option(
        False, "--remote",
        help="Also say per artifact whether the remote (NAME, or the default remote) holds "
        "it: complete, partial or absent."),
    remote_name: str = typer.Option(None, "--remote-name", "-r", metavar="NAME",
                                    help="Like --remote, naming the remote."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List tracked artifacts (at a Git revision); with --remote, what a remote holds."""
    words = list(args or [])
    with open_repo() as repo:
        name: str | None = remote_name
        if remote and name is None:
            name = ""
            # 'cas ls --remote origin' as DVC users type it: a word naming a configured
            # remote is the remote; the other word is the revision.
            if words and words[-1] in repo.remotes():
                name = words.pop()
        if len(words) > 1:
            raise UsageError(f"cas ls takes one revision, got {' '.join(words)}; "
                             "name a remote with --remote NAME")
        entries = repo.ls(words[0] if words else None, remote=name)
    if json_out:
        print_json([e.to_dict() for e in entries])
        return
    if name is not None and entries:
        say(f"remote: {getattr(entries[0], 'remote', name)}")
    for e in entries:
        n, what = (e.chunks or 0, "chunk") if e.kind == "file" else (e.files or 0, "file")
        count = f"{n} {what}{'' if n == 1 else 's'}"
        ver = f"  v{e.version}" if e.version else ""
        state = getattr(e, "remote_state", None)
        where = f"  {state}" if state is not None else ""
        say(f"{e.path:40}  {e.kind:4}  {human_bytes(e.size):>10}  {count:>12}  "
            f"{e.digest}{ver}{where}")
