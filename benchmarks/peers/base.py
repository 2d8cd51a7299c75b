"""What every measured tool (casstore, DVC, Git LFS) offers to the scenarios.

Each method either does untimed setup directly or returns the commands of a timed step, so the
scenarios decide what is measured and the drivers only know how to speak to their tool.
"""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from benchmarks.runner import Cmd, run_quiet


class Unsupported(Exception):
    """The tool has no equivalent of this operation (e.g. Git LFS has no S3 remote)."""


@dataclass
class Availability:
    ok: bool
    version: str = ""
    reason: str = ""


class Tool(ABC):
    name: str = ""
    label: str = ""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        self.availability = Availability(False, reason="not checked")

    # --- lifecycle -------------------------------------------------------------------------
    @abstractmethod
    def prepare(self, allow_install: bool) -> Availability:
        """Find (or install) the tool; never raises for a missing tool."""

    def git_init(self, ws: Path) -> None:
        ws.mkdir(parents=True, exist_ok=True)
        run_quiet(["git", "init", "-q", "-b", "main"], ws, self.env)

    @abstractmethod
    def init_repo(self, ws: Path) -> None:
        """Untimed: make `ws` a fresh Git repository tracked by this tool."""

    def commit(self, ws: Path, message: str = "track data") -> None:
        """Untimed: commit pointers (needed before Git-based pushes)."""
        run_quiet(["git", "add", "-A"], ws, self.env)
        run_quiet(["git", "commit", "-q", "--allow-empty", "-m", message], ws, self.env)

    # --- timed operations ------------------------------------------------------------------
    @abstractmethod
    def add(self, ws: Path, targets: list[str]) -> list[Cmd]: ...

    @abstractmethod
    def status(self, ws: Path) -> list[Cmd]: ...

    @abstractmethod
    def checkout(self, ws: Path, targets: list[str]) -> list[Cmd]: ...

    def configure_local_remote(self, ws: Path, remote: Path) -> None:
        raise Unsupported(f"{self.label}: no local remote")

    def configure_s3_remote(self, ws: Path, endpoint: str, url: str) -> None:
        raise Unsupported(f"{self.label}: no S3 remote")

    def push(self, ws: Path) -> list[Cmd]:
        raise Unsupported(f"{self.label}: no push")

    def pull(self, ws: Path) -> list[Cmd]:
        raise Unsupported(f"{self.label}: no pull")

    # --- inspection ------------------------------------------------------------------------
    @abstractmethod
    def cache_dir(self, ws: Path) -> Path: ...

    def drop_local_copies(self, ws: Path, targets: list[str]) -> None:
        """Untimed: delete the data and the local cache so that a pull must fetch everything."""
        for target in targets:
            remove(ws / target)
        remove(self.cache_dir(ws))

    def cmd(self, ws: Path, *argv: str) -> Cmd:
        return Cmd(list(argv), ws)


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        # Tools may leave their cache read-only; make it writable so cleanup never fails.
        shutil.rmtree(path, onerror=_force_remove)
    elif path.exists() or path.is_symlink():
        path.chmod(0o644)
        path.unlink()


def _force_remove(func, path, _exc):  # type: ignore[no-untyped-def]
    import os
    import stat

    if isinstance(_exc[1], FileNotFoundError):
        return  # already gone: nothing to do
    parent = os.path.dirname(path)
    os.chmod(parent, os.stat(parent).st_mode | stat.S_IWUSR)
    if os.path.exists(path) and not os.path.islink(path):
        os.chmod(path, os.stat(path).st_mode | stat.S_IWUSR)
    func(path)
