"""DVC driver. DVC lives in its own virtualenv (benchmarks/.peers/dvc-venv) so that its pinned
dependencies never clash with casstore's; we call its `dvc` script by absolute path."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from benchmarks.peers.base import Availability, Tool
from benchmarks.runner import Cmd, run_quiet

INSTALL_TIMEOUT = 1200


class Dvc(Tool):
    name = "dvc"
    label = "DVC"

    def __init__(self, env: Mapping[str, str], venv: Path) -> None:
        super().__init__(env)
        self.venv = venv
        self.exe = str(venv / "bin" / "dvc")
        # No analytics or update checks: they would add network waits to every command.
        self.env.update({"DVC_NO_ANALYTICS": "1", "DVC_NO_UPDATER": "1"})

    def prepare(self, allow_install: bool) -> Availability:
        if not Path(self.exe).exists():
            if not allow_install:
                self.availability = Availability(False, reason="not installed")
                return self.availability
            try:
                self._install()
            except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
                self.availability = Availability(False, reason=f"install failed: {exc}"[:300])
                return self.availability
        proc = subprocess.run([self.exe, "--version"], capture_output=True, text=True,
                              env=self.env)
        if proc.returncode != 0:
            self.availability = Availability(False, reason=proc.stderr.strip()[-300:])
        else:
            self.availability = Availability(True, version=proc.stdout.strip())
        return self.availability

    def _install(self) -> None:
        print(f"  installing DVC into {self.venv} (once) ...", flush=True)
        base = getattr(sys, "_base_executable", sys.executable)
        run_quiet([base, "-m", "venv", str(self.venv)], Path.cwd(), self.env,
                  timeout=INSTALL_TIMEOUT)
        pip = str(self.venv / "bin" / "pip")
        run_quiet([pip, "install", "-q", "dvc", "dvc-s3"], Path.cwd(), self.env,
                  timeout=INSTALL_TIMEOUT)

    def init_repo(self, ws: Path) -> None:
        self.git_init(ws)
        run_quiet([self.exe, "init", "-q"], ws, self.env)
        run_quiet([self.exe, "config", "core.analytics", "false"], ws, self.env)
        # DVC 3 keeps its state/index databases in a machine-wide site cache by default; keep
        # them inside the workspace so every run starts cold and nothing leaks between runs.
        run_quiet([self.exe, "config", "--local", "core.site_cache_dir",
                   str(ws / ".dvc" / "tmp" / "site")], ws, self.env)

    def add(self, ws: Path, targets: list[str]) -> list[Cmd]:
        return [Cmd([self.exe, "add", "-q", *targets], ws)]

    def status(self, ws: Path) -> list[Cmd]:
        return [Cmd([self.exe, "status"], ws)]

    def checkout(self, ws: Path, targets: list[str]) -> list[Cmd]:
        return [Cmd([self.exe, "checkout", "-q", "--force"], ws)]

    def cache_dir(self, ws: Path) -> Path:
        return ws / ".dvc" / "cache"

    def configure_local_remote(self, ws: Path, remote: Path) -> None:
        remote.mkdir(parents=True, exist_ok=True)
        run_quiet([self.exe, "remote", "add", "-f", "-d", "localdir", str(remote)], ws, self.env)

    def configure_s3_remote(self, ws: Path, endpoint: str, url: str) -> None:
        run_quiet([self.exe, "remote", "add", "-f", "-d", "s3", url], ws, self.env)
        run_quiet([self.exe, "remote", "modify", "s3", "endpointurl", endpoint], ws, self.env)

    def push(self, ws: Path) -> list[Cmd]:
        return [Cmd([self.exe, "push", "-q"], ws)]

    def pull(self, ws: Path) -> list[Cmd]:
        return [Cmd([self.exe, "pull", "-q"], ws)]
