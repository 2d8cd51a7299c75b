"""Shared fixtures: temporary Git repositories, a runner for the real `cas` command, and the
reliability suite's figures.

Tests run in parallel (pytest-xdist, ``addopts`` in pyproject.toml): each test makes what it
needs under its own ``tmp_path`` (S3 tests: a fresh bucket; servers and proxies: a free port
the kernel picks), so no test depends on another's files, ports or order.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.zygote import ZYGOTE, run_forked

CAS = shutil.which("cas", path=str(Path(sys.executable).parent)) or shutil.which("cas")
# CAS_TEST_FORK=0 starts every command as a fresh interpreter (slower; see support.zygote).
FORK = os.environ.get("CAS_TEST_FORK", "1") != "0"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", default=False,
                     help="run the long variants (marked slow)")


# Figures of the reliability suite (kills landed, faults injected, hostile cases), written as
# JSON to the file named by CAS_RELIABILITY_FIGURES at the end of the run, for
# docs/reliability.md. Under xdist each worker counts its own tests and hands its figures to
# the controller (``workeroutput``), which merges them and alone writes the file. The hooks
# live here, not in tests/reliability/: the controller loads only this conftest.
FIGURES: Counter = Counter()
_MAXIMA = "slowest"  # a figure named so is the largest of the workers', not their sum


@pytest.fixture
def figures() -> Counter:
    """Add to a named count: ``figures["add: kills landed"] += 1``."""
    return FIGURES


def merge_figures(into: Counter, other: dict[str, int]) -> None:
    for key, value in other.items():
        into[key] = max(into[key], value) if _MAXIMA in key else into[key] + value


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    merge_figures(FIGURES, getattr(node, "workeroutput", {}).get("cas_figures", {}))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    ZYGOTE.stop()
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller writes the file
        workeroutput["cas_figures"] = dict(FIGURES)
        return
    out = os.environ.get("CAS_RELIABILITY_FIGURES")
    if out and FIGURES:
        Path(out).write_text(json.dumps(dict(sorted(FIGURES.items())), indent=2) + "\n")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: two workers per core. Forked commands leave the workers' CPU idle while
    tests wait (retry back-offs, servers, the team stress test's clock); on 2 cores, 4
    workers ran the suite in 2 min 48 s where 2 took 3 min 34 s, for the same CPU time."""
    return 2 * (os.cpu_count() or 1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--long"):
        return
    skip = pytest.mark.skip(reason="long variant; run with --long")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def git_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
                "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com",
                "GIT_CONFIG_NOSYSTEM": "1"})
    return env


def s3_env(**extra: str) -> dict[str, str]:
    """``git_env`` plus the S3 test server's credentials (unless the caller's are set)."""
    env = git_env()
    env.setdefault("AWS_ACCESS_KEY_ID", "testing")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    env.update(extra)
    return env


def run_cas(cwd: Path, *args: str, check: bool = True, input: str | None = None,
            env: dict[str, str] | None = None, timeout: float = 600) -> Result:
    """Run the `cas` command, forked from a warm copy (``support.zygote``) unless the
    environment asks for a fresh interpreter; check=True asserts success."""
    assert CAS, "the cas command is not installed (pip install -e .)"
    env = env or git_env()
    if FORK and ZYGOTE.can_run(env):
        res = Result(*run_forked([CAS, *args], cwd=cwd, env=env, input=input,
                                 timeout=timeout))
    else:
        proc = subprocess.run([CAS, *args], cwd=cwd, capture_output=True, text=True,
                              input=input, env=env, timeout=timeout)
        res = Result(proc.returncode, proc.stdout, proc.stderr)
    if check and res.returncode != 0:
        raise AssertionError(f"cas {' '.join(args)} failed ({res.returncode}):\n"
                             f"{res.stdout}\n{res.stderr}")
    return res


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env=git_env()).stdout


def init_repo(root: Path) -> Path:
    """``git init`` and ``cas init`` in a new folder ``root``, for tests whose subject is not
    ``cas init``: in-process (``Repo.init``, what the command calls), because a ``cas``
    subprocess costs a Python start-up and every test needs a repository. The command itself
    is tested where it is the subject (test_everyday_*, test_core_e2e, the README's blocks).
    """
    from casstore.repo import Repo

    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    Repo.init(root).close()
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A fresh Git repository with `cas init` done (``init_repo``)."""
    return init_repo(tmp_path / "repo")


@pytest.fixture
def cas(repo: Path) -> Callable[..., Result]:
    """`cas(*args)` runs the real command inside the fixture repository."""

    def _run(*args: str, check: bool = True, **kw: object) -> Result:
        return run_cas(repo, *args, check=check, **kw)  # type: ignore[arg-type]

    return _run


def write_random(path: Path, size: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes (fast, incompressible) written to ``path``."""
    import numpy as np

    data = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def cache_bytes(repo: Path) -> int:
    """Bytes of pack files in the repository's cache."""
    packs = repo / ".cas" / "cache" / "packs"
    return sum(p.stat().st_size for p in packs.rglob("*.pack")) if packs.exists() else 0


def run_on_terminal(cwd: Path, *cmd: str, stdout_too: bool = False,
                    env: dict[str, str] | None = None, timeout: float = 120
                    ) -> tuple[int, str]:
    """Run ``cmd`` with its stderr (and with ``stdout_too`` its stdout) on a pseudo-terminal,
    as in an interactive shell; returns (exit code, what the terminal showed)."""
    import pty
    import select
    import time

    master, slave = pty.openpty()
    proc = subprocess.Popen(list(cmd), cwd=cwd, stderr=slave,
                            stdout=slave if stdout_too else subprocess.PIPE,
                            env=env or git_env())
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the other side closed
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        proc.wait(timeout=10)
    finally:
        os.close(master)
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace")
