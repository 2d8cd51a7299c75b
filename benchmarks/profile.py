"""`python -m benchmarks profile`: where `cas add` spends its time, for one big file and for
many small files. cProfile (no install; main thread only) by default; `--py-spy` also samples
every thread, including native frames, with py-spy installed into benchmarks/.peers/.

Results go to benchmarks/.work/profile/: the raw profiles plus a text summary that is printed.
"""

from __future__ import annotations

import collections
import os
import pstats
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks import datagen
from benchmarks.modes import human
from benchmarks.peers.base import remove
from benchmarks.peers.cas import find_cas
from benchmarks.runner import run_quiet
from benchmarks.scenarios import python_env

HERE = Path(__file__).resolve().parent

# Runs the `cas` console entry point inside cProfile, exactly as the installed script would.
CPROFILE_SNIPPET = """
import cProfile, sys
out, args = sys.argv[1], sys.argv[2:]
sys.argv = ["cas", *args]
from importlib.metadata import entry_points
(ep,) = [e for e in entry_points(group="console_scripts") if e.name == "cas"]
main = ep.load()
prof = cProfile.Profile()
prof.enable()
try:
    main()
except SystemExit:
    pass
finally:
    prof.disable()
    prof.dump_stats(out)
"""


def _workspace(root: Path, src: Path, name: str, env: dict[str, str]) -> Path:
    remove(root)
    root.mkdir(parents=True)
    run_quiet(["git", "init", "-q"], root, env)
    run_quiet([find_cas() or "cas", "init"], root, env)
    if src.is_dir():
        shutil.copytree(src, root / name)
    else:
        shutil.copyfile(src, root / name)
    os.sync()
    return root


def _cprofile(ws: Path, target: str, out: Path, env: dict[str, str], top: int) -> str:
    run_quiet([sys.executable, "-c", CPROFILE_SNIPPET, str(out), "add", target], ws, env,
              timeout=3600)
    lines: list[str] = []
    for sort in ("tottime", "cumulative"):
        buf = _StatsText()
        stats = pstats.Stats(str(out), stream=buf)  # type: ignore[arg-type]
        stats.strip_dirs().sort_stats(sort).print_stats(top)
        lines.append(f"--- cProfile, sorted by {sort} ---")
        lines.append(buf.text())
    return "\n".join(lines)


class _StatsText:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def text(self) -> str:
        body = "".join(self.parts)
        # Skip pstats' preamble (file name, totals are kept) to keep the summary readable.
        keep = [ln for ln in body.splitlines() if ln.strip()]
        return "\n".join(keep)


def _py_spy(ws: Path, target: str, out: Path, env: dict[str, str], top: int) -> str:
    exe = _ensure_py_spy(env)
    if exe is None:
        return "py-spy not available"
    run_quiet([exe, "record", "--native", "--threads", "--rate", "250", "--format", "raw",
               "-o", str(out), "--", find_cas() or "cas", "add", target], ws, env,
              timeout=3600)
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        frames = [f for f in stack.split(";") if f and not f.startswith("thread (")]
        total += count
        if frames:
            self_time[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"--- py-spy, {total} samples over all threads; self time ---"]
    lines += [f"{100 * n / total:5.1f}%  {f}" for f, n in self_time.most_common(top)]
    lines += ["--- inclusive ---"]
    lines += [f"{100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(lines)


def _ensure_py_spy(env: dict[str, str]) -> str | None:
    venv = HERE / ".peers" / "py-spy-venv"
    exe = venv / "bin" / "py-spy"
    if not exe.exists():
        base = getattr(sys, "_base_executable", sys.executable)
        try:
            run_quiet([base, "-m", "venv", str(venv)], HERE, env)
            run_quiet([str(venv / "bin" / "pip"), "install", "-q", "py-spy"], HERE, env)
        except (RuntimeError, subprocess.SubprocessError):
            return None
    return str(exe) if exe.exists() else None


def main(size: int, files: int, use_py_spy: bool, top: int = 25) -> int:
    env = python_env(os.environ)
    work = HERE / ".work"
    out_dir = work / "profile"
    out_dir.mkdir(parents=True, exist_ok=True)
    big = datagen.random_file(work / "data" / f"random-{size}.bin", size, seed=1)
    small = datagen.small_files(work / "data" / f"small-{files}", files, 20, 4096, seed=2)
    report: list[str] = []
    for label, src, name in ((f"cas add of one {human(size)} file", big, "big.bin"),
                             (f"cas add of {files:,} files of 4 KiB", small, "data")):
        report.append(f"=== {label} ===")
        ws = _workspace(out_dir / f"ws-{name}", src, name, env)
        report.append(_cprofile(ws, name, out_dir / f"{name}.prof", env, top))
        if use_py_spy:
            ws = _workspace(out_dir / f"ws-{name}", src, name, env)
            report.append(_py_spy(ws, name, out_dir / f"{name}.pyspy.txt", env, top))
        remove(ws)
    text = "\n".join(report) + "\n"
    (out_dir / "summary.txt").write_text(text)
    print(text)
    print(f"profiles in {out_dir}")
    return 0
