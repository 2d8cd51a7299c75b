"""A read-only cache (shared read-only mounts are common on clusters) serves every reading
command: checkout, status, ls and fsck; writing commands fail with one line.

As root, permissions do not stop writes, so the cache is bind-mounted read-only in a
private mount namespace (``unshare -m``); otherwise ``chmod -R a-w`` makes it read-only.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import CAS, git_env, run_cas, write_random

from .helpers import MiB, workspace_data


def _read_only_runner(repo: Path) -> tuple[callable, callable]:  # type: ignore[valid-type]
    cache = repo / ".cas" / "cache"
    if os.geteuid() != 0:
        subprocess.run(["chmod", "-R", "a-w", str(cache)], check=True)

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([CAS, *args], cwd=repo, capture_output=True, text=True,
                                  env=git_env(), timeout=120)

        def undo() -> None:
            subprocess.run(["chmod", "-R", "u+w", str(cache)], check=True)

        return run, undo
    if not shutil.which("unshare"):
        pytest.skip("running as root without unshare: cannot make the cache read-only")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("mount namespaces are not available here")
    c = shlex.quote(str(cache))

    def run_root(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = " ".join(shlex.quote(a) for a in (CAS, *args))
        script = (f"mount --bind {c} {c} && mount -o remount,bind,ro {c} && "
                  f"! touch {c}/probe 2>/dev/null && exec {cmd}")
        return subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=repo,
                              capture_output=True, text=True, env=git_env(), timeout=120)

    return run_root, lambda: None


def test_reading_from_a_read_only_cache(repo: Path) -> None:
    write_random(repo / "model.bin", 2 * MiB, seed=1)
    for i in range(5):
        write_random(repo / "data" / f"f{i}.bin", 30_000, seed=10 + i)
    run_cas(repo, "add", "model.bin", "data")
    expected = workspace_data(repo, ["model.bin", "data"])
    subprocess.run(["rm", "-rf", str(repo / "model.bin"), str(repo / "data")], check=True)
    run, undo = _read_only_runner(repo)
    try:
        res = run("checkout")
        assert res.returncode == 0, res
        assert workspace_data(repo, ["model.bin", "data"]) == expected
        for args in (("status",), ("ls",), ("fsck",)):
            res = run(*args)
            assert res.returncode == 0 and "Traceback" not in res.stderr, (args, res)
        # A command that must write says so in one line.
        write_random(repo / "new.bin", 1000, seed=3)
        res = run("add", "new.bin")
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 1 and len(lines) == 1 and "error" in lines[0], res
    finally:
        undo()
