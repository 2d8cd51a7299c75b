"""Git LFS driver: data goes in through Git's clean filter (`git add`), out through the smudge
filter (`git checkout`), and to a remote with `git lfs push`. Git LFS has no S3 backend; its
remote here is a bare repository reached through git-lfs's standalone file:// transfer."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from benchmarks.peers.base import Availability, Tool, remove
from benchmarks.peers.system import apt_install
from benchmarks.runner import Cmd, run_quiet

# Everything the scenarios write is *.bin or *.safetensors.
TRACKED = ["*.bin", "*.safetensors"]


class GitLfs(Tool):
    name = "gitlfs"
    label = "Git LFS"

    def prepare(self, allow_install: bool) -> Availability:
        if not shutil.which("git-lfs") and allow_install:
            apt_install(["git-lfs"], self.env)
        if not shutil.which("git-lfs"):
            self.availability = Availability(False, reason="git-lfs not installed (needs root)")
            return self.availability
        proc = subprocess.run(["git", "lfs", "version"], capture_output=True, text=True,
                              env=self.env)
        ok = proc.returncode == 0
        version = proc.stdout.strip().split(" (")[0].removeprefix("git-lfs/")
        self.availability = Availability(ok, version=version,
                                         reason="" if ok else proc.stderr.strip()[-300:])
        return self.availability

    def init_repo(self, ws: Path) -> None:
        self.git_init(ws)
        run_quiet(["git", "lfs", "install", "--local"], ws, self.env)
        run_quiet(["git", "lfs", "track", *TRACKED], ws, self.env)
        run_quiet(["git", "add", ".gitattributes"], ws, self.env)

    def add(self, ws: Path, targets: list[str]) -> list[Cmd]:
        return [Cmd(["git", "add", "--", *targets], ws)]

    def status(self, ws: Path) -> list[Cmd]:
        return [Cmd(["git", "status", "--porcelain"], ws)]

    def checkout(self, ws: Path, targets: list[str]) -> list[Cmd]:
        return [Cmd(["git", "checkout", "--", *targets], ws)]

    def cache_dir(self, ws: Path) -> Path:
        return ws / ".git" / "lfs" / "objects"

    def configure_local_remote(self, ws: Path, remote: Path) -> None:
        remote.parent.mkdir(parents=True, exist_ok=True)
        run_quiet(["git", "init", "-q", "--bare", str(remote)], ws, self.env)
        run_quiet(["git", "remote", "add", "origin", str(remote)], ws, self.env)
        # A file:// lfs.url makes git-lfs use its standalone transfer agent: no LFS server needed.
        run_quiet(["git", "config", "lfs.url", remote.resolve().as_uri()], ws, self.env)

    def push(self, ws: Path) -> list[Cmd]:
        return [Cmd(["git", "lfs", "push", "origin", "main"], ws)]

    def pull(self, ws: Path) -> list[Cmd]:
        return [Cmd(["git", "lfs", "pull", "origin"], ws)]

    def drop_local_copies(self, ws: Path, targets: list[str]) -> None:
        for target in targets:
            remove(ws / target)
        remove(self.cache_dir(ws))
        # Put pointer files back where the data was, as a fresh clone with
        # GIT_LFS_SKIP_SMUDGE=1 would have them, so `git lfs pull` has to fetch every object.
        env = dict(self.env, GIT_LFS_SKIP_SMUDGE="1")
        run_quiet(["git", "checkout", "--", *targets], ws, env)
