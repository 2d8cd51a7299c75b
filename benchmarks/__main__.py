"""`python -m benchmarks run --quick|--full|--smoke`: casstore next to DVC, Git LFS and the
machine's ceilings, in one run, with results in benchmarks/results/."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks import report
from benchmarks.modes import MODES, human
from benchmarks.peers.base import Tool, remove
from benchmarks.peers.cas import Cas
from benchmarks.peers.ceilings import xxh_available
from benchmarks.peers.dvc import Dvc
from benchmarks.peers.gitlfs import GitLfs
from benchmarks.results import Results
from benchmarks.s3server import find_moto_server
from benchmarks.scenarios import SCENARIOS, Context, python_env

HERE = Path(__file__).resolve().parent


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the benchmark scenarios")
    group = run.add_mutually_exclusive_group()
    group.add_argument("--quick", dest="mode", action="store_const", const="quick",
                       help="smaller sizes, about 5 minutes (default)")
    group.add_argument("--full", dest="mode", action="store_const", const="full",
                       help="the issue's sizes, under 30 minutes")
    group.add_argument("--smoke", dest="mode", action="store_const", const="smoke",
                       help="casstore only, a few MiB: proves the harness works (CI)")
    run.add_argument("--only", default="",
                     help="comma-separated scenario numbers to run, e.g. 1,2 (3 runs with 1)")
    run.add_argument("--reps", type=int, default=0, help="override the repetition count")
    run.add_argument("--no-install", action="store_true",
                     help="never install peers; missing ones are reported unavailable")
    run.add_argument("--tools", default="", help="comma-separated subset: cas,dvc,gitlfs")
    run.add_argument("--out", type=Path, default=HERE / "results",
                     help="where results are written")
    run.add_argument("--timeout", type=float, default=900.0,
                     help="seconds before one measured command is killed")
    run.add_argument("--many-files", default="",
                     help="scenario 7's file counts for casstore, comma-separated (default: the "
                          "mode's, e.g. 1000000 in full mode)")
    run.add_argument("--many-peers", default="",
                     help="scenario 7's file counts for DVC and Git LFS, comma-separated, or "
                          "'none' (default: the mode's)")
    run.add_argument("--no-ceilings", action="store_true",
                     help="skip the ceilings (cp, tar, cat, xxh128sum, raw s3fs)")
    run.add_argument("--data", type=Path, default=None,
                     help="where generated test data is kept and reused (default "
                          "benchmarks/.work/data); a million-file tree takes ~5 GB of inodes")
    run.add_argument("--nice", type=int, default=-10,
                     help="scheduling priority for the run and every measured tool (root only "
                          "for negative values): on a shared machine it keeps other work from "
                          "landing on one tool's clock more than another's")
    prof = sub.add_parser("profile", help="profile `cas add` of a big file and many small files")
    prof.add_argument("--size-mib", type=int, default=1024, help="big file size in MiB")
    prof.add_argument("--files", type=int, default=20_000, help="number of 4 KiB files")
    prof.add_argument("--py-spy", action="store_true",
                      help="also sample all threads with py-spy (installed on first use)")
    args = parser.parse_args(argv)
    if args.command == "run":
        args.mode = args.mode or "quick"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    # A terminated run must still stop its S3 server and measured children: turning SIGTERM
    # into SystemExit lets every `finally` clean up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.command == "profile":
        from benchmarks import profile

        return profile.main(args.size_mib * 2**20, args.files, args.py_spy)
    mode = MODES[args.mode]
    from dataclasses import replace

    if args.reps:
        mode = replace(mode, reps=args.reps)
    if args.no_ceilings:
        mode = replace(mode, ceilings=False)
    started = datetime.now(timezone.utc)
    load_start = _load()
    try:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)  # inherited by every child
    except (PermissionError, OSError):
        pass
    t0 = time.monotonic()
    work = HERE / ".work"
    env = python_env(os.environ)
    allow_install = not args.no_install and mode.peers
    print(f"casstore benchmarks, {mode.name} mode ({mode.reps} repetition(s))", flush=True)

    candidates: list[Tool] = [Cas(env)]
    if mode.peers:
        candidates += [Dvc(env, HERE / ".peers" / "dvc-venv"), GitLfs(env)]
    if args.tools:
        wanted = set(args.tools.split(","))
        candidates = [t for t in candidates if t.name in wanted]
    results = Results()
    tools: list[Tool] = []
    versions: dict[str, str] = {}
    for tool in candidates:
        avail = tool.prepare(allow_install)
        if avail.ok:
            tools.append(tool)
            versions[tool.label] = avail.version
            print(f"  {tool.label}: {avail.version}", flush=True)
        else:
            results.unavailable[tool.name] = avail.reason
            print(f"  {tool.label}: not available ({avail.reason})", flush=True)
    xxh = mode.ceilings and xxh_available(env, allow_install)
    if mode.ceilings:
        if xxh:
            import subprocess

            out = subprocess.run(["xxh128sum", "--version"], capture_output=True, text=True)
            versions["xxh128sum"] = (out.stdout or out.stderr).split(" by ")[0].split()[-1]
        else:
            results.unavailable["xxh128sum"] = "xxhash not installed (needs root)"
    moto = find_moto_server(allow_install=not args.no_install)

    ctx = Context(mode=mode, work=work, env=env, tools=tools, results=results, xxh=xxh,
                  moto=moto, timeout=args.timeout, data_dir=args.data,
                  many_counts=_counts(args.many_files, mode.many_counts),
                  many_peer_counts=_counts(args.many_peers, mode.many_peer_counts))
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    if "3" in only:
        only.add("1")
    remove(ctx.ws_root)
    elapsed: dict[str, float] = {}
    stamp = started.strftime("%Y%m%dT%H%M%SZ")

    def save(status: str) -> tuple[Path, Path, list[report.Target], float]:
        duration = time.monotonic() - t0
        meta: dict[str, object] = {
            "mode": mode.name,
            "status": status,
            "started": started.strftime("%Y-%m-%d %H:%M"),
            "duration_s": duration,
            "scenario_seconds": elapsed,
            "load_start": load_start,
            "load_end": _load(),
            "machine": report.machine(),
            "filesystem": report.filesystem(work),
            "versions": versions,
            "unavailable": results.unavailable,
            "sizes": {"big": mode.big, "small_count": mode.small_count,
                      "small_size": mode.small_size, "scaling": mode.scaling,
                      "model_bytes": mode.model_bytes, "many_counts": ctx.many_counts,
                      "many_peer_counts": ctx.many_peer_counts},
            "notes": ctx.notes,
        }
        checks = report.targets(results, mode)
        markdown = report.render(results, mode, meta, ctx.notes, checks)
        md, js = report.write(args.out, stamp, mode, markdown, meta, results, checks)
        return md, js, checks, duration

    try:
        for key, (title, fn) in SCENARIOS.items():
            if only and key not in only:
                continue
            print(f"scenario {key}: {title}", flush=True)
            t_scenario = time.monotonic()
            fn(ctx)
            elapsed[key] = round(time.monotonic() - t_scenario, 1)
            print(f"  scenario {key} took {elapsed[key]:.0f} s", flush=True)
            # Results so far are written after every scenario: a long run that is stopped
            # still leaves everything it measured.
            save(f"partial: scenarios {', '.join(elapsed)} done")
    except (KeyboardInterrupt, SystemExit):
        md, js, _checks, _duration = save(f"interrupted after scenarios {', '.join(elapsed)}")
        print(f"\ninterrupted; wrote what was measured to {md}", file=sys.stderr)
        raise
    finally:
        remove(ctx.ws_root)
    md, js, checks, duration = save("complete")
    print()
    if mode.name == "smoke":
        print("Smoke mode checks that the harness and casstore work; it never judges speed.")
    else:
        print("Targets:")
        for t in checks:
            print(f"  - {t.text}: {t.verdict().replace('**', '')}")
    failed = [r for r in results.steps.values() if r.errors and r.tool == "cas"]
    for r in failed:
        print(f"casstore failed in scenario {r.scenario} ({r.step}): "
              f"{r.errors[0].splitlines()[0][:300]}")
    print(f"\nwrote {md} and {js} in {duration:.0f} s "
          f"(big file {human(mode.big)}, {mode.small_count:,} small files)")
    # Smoke mode is CI's check that the harness and casstore's basic commands work: a casstore
    # failure there is an error. Speed never is.
    if mode.name == "smoke" and (failed or "cas" in results.unavailable):
        for r in failed:
            print(f"casstore failed in scenario {r.scenario} ({r.step}):\n{r.errors[0][:1500]}",
                  file=sys.stderr)
        if "cas" in results.unavailable:
            print(f"casstore unavailable: {results.unavailable['cas']}", file=sys.stderr)
        return 1
    return 0


def _counts(option: str, default: list[int]) -> list[int]:
    """A comma-separated list of file counts ('none': no count), else the mode's."""
    if not option:
        return list(default)
    if option.strip().lower() == "none":
        return []
    return [int(x.replace("_", "")) for x in option.split(",") if x.strip()]


def _load() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except (OSError, IndexError):
        return "?"


if __name__ == "__main__":
    sys.exit(main())
