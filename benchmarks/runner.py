"""Process measurement: wall time, CPU time and peak RSS of one command (or a short sequence).

We start each command ourselves and reap it with ``os.wait4`` so that the resource usage we read
belongs to that child (and the grandchildren it waited for) only, not to anything else the harness
ran before. ``ru_maxrss`` from ``wait4`` is the peak RSS of the largest process in that subtree,
which is what a user sees as "how much memory did `cas add` need".
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Cmd:
    """One command to run: an argv list, or a shell string when redirection is part of it."""

    argv: Sequence[str] | str
    cwd: Path
    env: Mapping[str, str] | None = None

    def display(self) -> str:
        return self.argv if isinstance(self.argv, str) else " ".join(self.argv)


@dataclass
class Sample:
    """One measured run of a step; for multi-command steps the figures are summed (RSS: max)."""

    wall: float = 0.0
    user: float = 0.0
    sys: float = 0.0
    maxrss: int = 0  # bytes
    ok: bool = True
    error: str = ""
    commands: list[str] = field(default_factory=list)

    @property
    def cpu(self) -> float:
        return self.user + self.sys

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["cpu"] = self.cpu
        return data


class StepFailed(RuntimeError):
    """A measured command failed; the sample carries the details for the report."""

    def __init__(self, sample: Sample) -> None:
        super().__init__(sample.error)
        self.sample = sample


def _tail(path: Path, limit: int = 1200) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", "replace").strip()


# Peak RSS needs a small parent. Linux carries a process's high-water RSS across exec, so a
# command forked straight from this harness (numpy loaded, tens of MiB) would report at least the
# harness's RSS. GNU time forks the command from a ~2 MiB process and reports the command's own
# peak; wall and CPU still come from our wait4 (GNU time only has 10 ms resolution).
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def run_one(cmd: Cmd, timeout: float, base_env: Mapping[str, str]) -> Sample:
    """Run one command to completion and measure it."""
    env = dict(base_env)
    if cmd.env:
        env.update(cmd.env)
    shell = isinstance(cmd.argv, str)
    argv = ["bash", "-c", str(cmd.argv)] if shell else list(cmd.argv)
    # Output goes to files, not pipes: a chatty tool can never block on a full pipe and distort
    # the timing, and we only read the tail of stderr when something failed.
    with tempfile.TemporaryDirectory(prefix="casbench-") as tmp:
        out_path, err_path = Path(tmp, "out"), Path(tmp, "err")
        rss_path = Path(tmp, "rss")
        if GNU_TIME:
            argv = [GNU_TIME, "-q", "-f", "%M", "-o", str(rss_path), *argv]
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            start = time.perf_counter()
            proc = subprocess.Popen(
                argv,
                cwd=cmd.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # lets us kill the whole tree on timeout
            )
            try:
                status, usage, timed_out = _wait(proc, timeout)
            except BaseException:
                # Interrupted (Ctrl-C, SIGTERM): never leave a measured tool running behind us.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                os.waitpid(proc.pid, 0)
                raise
            wall = time.perf_counter() - start
        # Popen must not try to reap the process again.
        proc.returncode = os.waitstatus_to_exitcode(status) if not timed_out else -9
        sample = Sample(
            wall=wall,
            user=usage.ru_utime if usage else 0.0,
            sys=usage.ru_stime if usage else 0.0,
            maxrss=_peak_rss(rss_path, usage),
            commands=[cmd.display()],
        )
        if timed_out:
            sample.ok = False
            sample.error = f"timed out after {timeout:.0f} s: {cmd.display()}"
        elif proc.returncode != 0:
            sample.ok = False
            detail = _tail(err_path) or _tail(out_path)
            sample.error = f"exit {proc.returncode}: {cmd.display()}\n{detail}"
        return sample


def _peak_rss(rss_path: Path, usage: os.struct_rusage | None) -> int:
    """Peak RSS in bytes (Linux reports KiB), from GNU time when it ran, else from wait4."""
    try:
        lines = rss_path.read_text().split()
        if lines:
            return int(lines[-1]) * 1024
    except (OSError, ValueError):
        pass
    return usage.ru_maxrss * 1024 if usage else 0


def _wait(
    proc: subprocess.Popen[bytes], timeout: float
) -> tuple[int, os.struct_rusage | None, bool]:
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            return status, usage, False
        if time.monotonic() > deadline:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _, status, usage = os.wait4(proc.pid, 0)
            return status, usage, True
        # Poll with a short, growing sleep: fine-grained for the 50 ms commands (status), cheap
        # for the minute-long ones. The polling error is at most 20 ms on long steps.
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def measure(cmds: Sequence[Cmd], timeout: float, base_env: Mapping[str, str]) -> Sample:
    """Run commands in order as one step; stop at the first failure."""
    total = Sample()
    for cmd in cmds:
        one = run_one(cmd, timeout, base_env)
        total.wall += one.wall
        total.user += one.user
        total.sys += one.sys
        total.maxrss = max(total.maxrss, one.maxrss)
        total.commands.extend(one.commands)
        if not one.ok:
            total.ok = False
            total.error = one.error
            break
    return total


def run_quiet(
    argv: Sequence[str] | str,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float = 1800,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Untimed helper for setup steps (git init, commits, installs)."""
    proc = subprocess.run(
        argv if not isinstance(argv, str) else ["bash", "-c", argv],
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        shown = argv if isinstance(argv, str) else " ".join(argv)
        raise RuntimeError(
            f"setup command failed ({proc.returncode}): {shown}\n{proc.stderr[-1500:]}")
    return proc
