"""Shared helpers of the reliability suite: snapshots, process control, store inspection."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from conftest import CAS, FORK, Result, git_env, run_cas
from support.zygote import ZYGOTE, ForkedCas

MiB = 1 << 20
KILLS_DEFAULT = 6  # each kill point costs ~8 cas commands; the full campaign is --long
KILLS_LONG = 50


def kill_count(config: object) -> int:
    """Kill points per command: 6 by default, 50 with ``--long``."""
    return KILLS_LONG if config.getoption("--long") else KILLS_DEFAULT  # type: ignore[attr-defined]


def snapshot(root: Path, *, skip: tuple[str, ...] = ()) -> dict[str, bytes | str]:
    """Every file (bytes), link (target) and folder below ``root``, by relative path."""
    out: dict[str, bytes | str] = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        rel_d = d.relative_to(root).as_posix()
        dirnames[:] = [n for n in dirnames if (f"{rel_d}/{n}" if rel_d != "." else n) not in skip]
        for n in dirnames + filenames:
            p = d / n
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = p.read_bytes()
    return out


def workspace_data(repo: Path, names: list[str]) -> dict[str, bytes | str]:
    """Content of the named tracked files and folders, for byte-for-byte comparison."""
    out: dict[str, bytes | str] = {}
    for n in names:
        p = repo / n
        if p.is_dir():
            out.update({f"{n}/{k}": v for k, v in snapshot(p).items()})
        elif p.exists():
            out[n] = p.read_bytes()
    return out


def temp_leftovers(root: Path) -> list[str]:
    """Temporary files of interrupted writes into the workspace: casstore prepares them in
    ``.cas/tmp/work/<process>/`` (or, on another file system, as ``.cas-tmp.<hex>``
    siblings), and the next command that writes removes what killed ones left."""
    out = [p.relative_to(root).as_posix() for p in root.rglob(".cas-tmp.*")
           if p.relative_to(root).parts[0] not in (".cas", ".git")]
    work = root / ".cas" / "tmp" / "work"
    if work.is_dir():
        out += [p.relative_to(root).as_posix() for p in work.iterdir()]
    return sorted(out)


def fsck(repo: Path, *extra: str) -> dict:
    """``cas fsck --json``: the parsed report (with its exit code under 'rc')."""
    res = run_cas(repo, "fsck", "--json", *extra, check=False)
    assert "Traceback" not in res.stderr, res.stderr
    data = json.loads(res.stdout)
    data["rc"] = res.returncode
    return data


def assert_store_consistent(repo: Path) -> dict:
    """fsck reports no damage; warnings only of the kinds repair and gc fix (a gc killed
    between its two phases leaves a condemnation record, which the next gc executes)."""
    report = fsck(repo)
    assert report["rc"] == 0 and report["ok"] and not report["damaged"], report
    for w in report["warnings"]:
        assert "not indexed" in w or "temporary file" in w or "condemned" in w, w
    return report


def status(repo: Path) -> list[dict]:
    res = run_cas(repo, "status", "--json")
    return json.loads(res.stdout)["entries"]


def start_cas(cwd: Path, *args: str, env: dict[str, str] | None = None
              ) -> subprocess.Popen | ForkedCas:
    """Start ``cas`` in the background (its own process group, output captured), forked
    from a warm copy like ``run_cas`` (see support.zygote) unless the environment asks
    for a fresh interpreter."""
    assert CAS
    env = env or git_env()
    if FORK and ZYGOTE.can_run(env):
        return ForkedCas([CAS, *args], cwd=cwd, env=env, new_session=True)
    return subprocess.Popen([CAS, *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(proc: subprocess.Popen | ForkedCas, timeout: float = 300) -> Result:
    out, err = proc.communicate(timeout=timeout)
    return Result(proc.returncode, out, err)


def run_and_kill(cwd: Path, args: tuple[str, ...], delay: float) -> bool:
    """Run ``cas args`` and SIGKILL it after ``delay`` seconds; True if the kill landed."""
    proc = start_cas(cwd, *args)
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        time.sleep(0.002)
    landed = proc.poll() is None
    if landed:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    return landed


def timed_run(cwd: Path, *args: str) -> float:
    """Seconds one uninterrupted ``cas args`` takes (to spread kill points over it), timed
    as ``run_and_kill`` times its delay: from the moment ``start_cas`` returns."""
    proc = start_cas(cwd, *args)
    start = time.monotonic()
    res = finish(proc)
    took = time.monotonic() - start
    assert res.returncode == 0, res
    return took
