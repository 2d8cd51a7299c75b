"""casstore driver: the `cas` command from the project's own environment."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from benchmarks.peers.base import Availability, Tool
from benchmarks.runner import Cmd, run_quiet


def find_cas() -> str | None:
    # Prefer the `cas` next to the interpreter running the harness: that is the checkout under
    # test (an editable install), not some other casstore on PATH.
    local = Path(sys.executable).parent / "cas"
    if local.exists():
        return str(local)
    return shutil.which("cas")


class Cas(Tool):
    name = "cas"
    label = "casstore"

    def __init__(self, env: Mapping[str, str]) -> None:
        super().__init__(env)
        self.exe = find_cas() or "cas"

    def prepare(self, allow_install: bool) -> Availability:
        if find_cas() is None:
            self.availability = Availability(
                False, reason="`cas` not found: pip install -e . in the project venv")
            return self.availability
        proc = subprocess.run([self.exe, "--help"], capture_output=True, text=True, env=self.env)
        if proc.returncode != 0:
            self.availability = Availability(False, reason=(proc.stderr or proc.stdout)[-300:])
            return self.availability
        self.availability = Availability(True, version=self._version())
        return self.availability

    def _version(self) -> str:
        proc = subprocess.run([self.exe, "--version"], capture_output=True, text=True,
                              env=self.env)
        version = proc.stdout.strip() if proc.returncode == 0 else ""
        if not version:
            try:
                from importlib.metadata import version as dist_version

                version = dist_version("casstore")
            except Exception:  # noqa: BLE001 - any failure just means "unknown"
                version = "unknown"
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=Path(__file__).resolve().parents[2])
        if rev.returncode == 0:
            version += f" (commit {rev.stdout.strip()})"
        return version

    def init_repo(self, ws: Path) -> None:
        self.git_init(ws)
        run_quiet([self.exe, "init"], ws, self.env)

    def add(self, ws: Path, targets: list[str]) -> list[Cmd]:
        return [Cmd([self.exe, "add", *targets], ws)]

    def status(self, ws: Path) -> list[Cmd]:
        return [Cmd([self.exe, "status"], ws)]

    def checkout(self, ws: Path, targets: list[str]) -> list[Cmd]:
        return [Cmd([self.exe, "checkout", "--force"], ws)]

    def cache_dir(self, ws: Path) -> Path:
        return ws / ".cas" / "cache"

    def configure_local_remote(self, ws: Path, remote: Path) -> None:
        remote.mkdir(parents=True, exist_ok=True)
        run_quiet([self.exe, "remote", "add", "localdir", str(remote), "--default"], ws, self.env)

    def configure_s3_remote(self, ws: Path, endpoint: str, url: str) -> None:
        run_quiet([self.exe, "remote", "add", "s3", url, "--default"], ws, self.env)
        run_quiet([self.exe, "remote", "modify", "s3", "endpoint_url", endpoint, "--local"],
                  ws, self.env)

    def push(self, ws: Path) -> list[Cmd]:
        return [Cmd([self.exe, "push"], ws)]

    def pull(self, ws: Path) -> list[Cmd]:
        return [Cmd([self.exe, "pull"], ws)]
