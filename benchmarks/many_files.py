"""Scenario 7, many files: N files of 1 KiB in 1,000 folders (1,000,000 with --full).

For each file count and tool, in a fresh repository: add the folder; status with nothing
changed; replace one file and run status, then re-add (seconds and bytes the cache grew by);
delete the folder and check it out from the cache; push to S3, drop the folder and the
cache, pull. Every step is a fresh process whose peak RSS is measured (runner.py), which
is the point of the scenario: memory must not grow with the file count.

casstore runs at every count of the mode; DVC and Git LFS at the peer counts, each command
bounded by PEER_TIMEOUT: a step that takes longer is reported as "did not finish in 30 min"
and the tool's remaining steps at that count are skipped. `cp -r` and `tar` of the same
tree are the ceilings for add and checkout.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks import datagen
from benchmarks.modes import human
from benchmarks.peers.base import Tool, Unsupported, remove
from benchmarks.runner import Cmd, Sample, StepFailed, measure
from benchmarks.s3server import S3_ENV, S3Server

if TYPE_CHECKING:
    from benchmarks.scenarios import Context

SCENARIO = "7"
PEER_TIMEOUT = 1800.0  # seconds: "did not finish in 30 min"
DNF = "did not finish in 30 min"
FILE_SIZE = 1024
FOLDERS = 1000
SAMPLE = 200  # files whose bytes are compared after checkout and pull


def step_name(step: str, count: int) -> str:
    return f"{step} · {count:,} files"


def source_tree(data: Path, count: int, folders: int) -> Path:
    """The shared, read-only source data (generated once per count, then reused)."""
    return datagen.small_files(data / f"many-{count}", count, min(folders, count),
                               FILE_SIZE, seed=2)


def run(ctx: Context) -> None:
    """Scenario 7 for every count of the mode (see the module docstring)."""
    counts = sorted(set(ctx.many_counts) | set(ctx.many_peer_counts))
    folders = ctx.mode.many_folders
    ctx.notes[SCENARIO] = (
        f"files of {human(FILE_SIZE)} in {folders:,} folders; casstore at "
        f"{', '.join(f'{n:,}' for n in counts)} files, DVC and Git LFS at "
        f"{', '.join(f'{n:,}' for n in ctx.many_peer_counts) or 'no count (not in this mode)'}"
        f" (each command of theirs stopped after {PEER_TIMEOUT / 60:.0f} min). One repetition; "
        "S3 is a moto server started for the scenario. "
        "Re-add stores one replaced file; 'stored' is what the cache grew by (add: its size).")
    server = None
    env = dict(ctx.env, **S3_ENV)
    try:
        if ctx.moto:
            server = S3Server(ctx.moto, env, ctx.work / "logs")
            server.start()
            server.create_bucket("many")
        else:
            ctx.results.unavailable["s3"] = "moto_server not available"
        for count in counts:
            src = source_tree(ctx.data, count, folders)
            ctx.log(f"  {count:,} files ({src})")
            tools = [t for t in ctx.tools
                     if t.name == "cas" or count in ctx.many_peer_counts]
            for tool in tools:
                ws = ctx.workspace(SCENARIO, f"{tool.name}-{count}", 0)
                try:
                    _one_tool(ctx, tool, ws, src, count, server, env)
                except StepFailed:
                    pass  # recorded; the tool's later steps at this count are skipped
                except (AssertionError, RuntimeError, OSError) as exc:
                    ctx.log(f"    ! {tool.name}: {exc}")
                    ctx.results.get(SCENARIO, step_name("setup", count),
                                    tool.name).errors.append(str(exc)[:2000])
                finally:
                    remove(ws)
            if ctx.mode.ceilings:
                _ceilings(ctx, src, count)
    finally:
        if server is not None:
            server.stop()  # moto holds every object in memory: give it back


def _measure(ctx: Context, step: str, tool: Tool, cmds: list[Cmd], env: dict[str, str],
             stored: Callable[[], int] | None = None) -> Sample:
    """One timed step; a peer's step is stopped after PEER_TIMEOUT and reported as such."""
    timeout = PEER_TIMEOUT if tool.name != "cas" else max(ctx.timeout, PEER_TIMEOUT)
    os.sync()
    sample = measure(cmds, timeout, env)
    grown = stored() if stored is not None and sample.ok else None
    if not sample.ok and sample.error.startswith("timed out"):
        result = ctx.results.get(SCENARIO, step, tool.name)
        result.note = DNF
        result.samples.append(sample)
        ctx.log(f"    ! {tool.name} {step}: {DNF}")
        raise StepFailed(sample)
    ctx.record(SCENARIO, step, tool.name, sample, grown)
    if not sample.ok:
        raise StepFailed(sample)
    return sample


def _one_tool(ctx: Context, tool: Tool, ws: Path, src: Path, count: int,
              server: S3Server | None, env: dict[str, str]) -> None:
    from benchmarks.scenarios import _copy_in

    tool.init_repo(ws)
    _copy_in(src, ws / "data")  # hard links: the source data is never written
    cache = tool.cache_dir(ws)

    def grown_since(before: int) -> Callable[[], int]:
        return lambda: datagen.tree_bytes(cache) - before

    def step(name: str) -> str:
        return step_name(name, count)

    _measure(ctx, step("add"), tool, tool.add(ws, ["data"]), env,
             lambda: datagen.tree_bytes(cache))
    _measure(ctx, step("status, nothing changed"), tool, tool.status(ws), env)
    first = sorted(next(iter(sorted((ws / "data").iterdir()))).iterdir())[0]
    rel = first.relative_to(ws / "data")
    first.chmod(0o644)
    datagen.change_one_file(first, seed=700)
    changed = first.read_bytes()
    _measure(ctx, step("status, one file changed"), tool, tool.status(ws), env)
    before = datagen.tree_bytes(cache)
    _measure(ctx, step("re-add after one file changed"), tool, tool.add(ws, ["data"]), env,
             grown_since(before))
    remove(ws / "data")
    _measure(ctx, step("checkout into empty workspace"), tool, tool.checkout(ws, ["data"]),
             env)
    check_tree(src, ws / "data", rel, changed, f"{tool.label} checkout")
    if server is None:
        return
    try:
        tool.configure_s3_remote(ws, server.endpoint, f"s3://many/{tool.name}-{count}")
    except Unsupported:
        return
    tool.commit(ws)
    _measure(ctx, step("push to S3"), tool, tool.push(ws), env)
    if tool.name == "cas":
        # Verification and collection walk every object too: their memory counts as well.
        # (gc keeps everything here: it measures the walk, not deletion.)
        for name, argv in (("fsck", ["fsck"]), ("fsck --remote", ["fsck", "--remote"]),
                           ("gc", ["gc"]), ("gc --remote", ["gc", "--remote", "s3"])):
            _measure(ctx, step(name), tool, [Cmd([getattr(tool, "exe", "cas"), *argv], ws)],
                     env)
    tool.drop_local_copies(ws, ["data"])
    _measure(ctx, step("pull from S3"), tool, tool.pull(ws), env)
    check_tree(src, ws / "data", rel, changed, f"{tool.label} pull")


def check_tree(src: Path, dst: Path, changed: Path, content: bytes, what: str) -> None:
    """``dst`` holds the same file names as ``src``, the replaced file its new bytes, and a
    random sample of the others the same bytes (comparing a million files would take longer
    than the step measured)."""
    names_src = _names(src)
    names_dst = _names(dst)
    if names_src != names_dst:
        extra, lost = names_dst - names_src, names_src - names_dst
        raise AssertionError(f"{what}: {len(lost)} file(s) missing, {len(extra)} unexpected "
                             f"(e.g. {sorted(lost or extra)[:3]})")
    if (dst / changed).read_bytes() != content:
        raise AssertionError(f"{what}: {changed} does not hold its new content")
    rng = random.Random(7)
    for rel in rng.sample(sorted(names_src), min(SAMPLE, len(names_src))):
        if Path(rel) == changed:
            continue
        if (src / rel).read_bytes() != (dst / rel).read_bytes():
            raise AssertionError(f"{what}: {rel} differs from the original")


def _names(root: Path) -> set[str]:
    out = set()
    for folder, _dirs, files in os.walk(root):
        base = os.path.relpath(folder, root)
        out.update(f if base == "." else f"{base}/{f}" for f in files)
    return out


def _ceilings(ctx: Context, src: Path, count: int) -> None:
    """`cp -r` and a `tar` pipe of the same tree: what copying it costs with no tool."""
    from benchmarks.scenarios import CEIL
    scratch = ctx.ws_root / "ceiling"
    for name, argv in (("cp", ["cp", "-r", str(src), str(scratch / "data")]),
                       ("tar", f"mkdir -p {scratch / 'data'} && tar -C {src} -cf - . | "
                               f"tar -C {scratch / 'data'} -xf -")):
        remove(scratch)
        scratch.mkdir(parents=True)
        try:
            ctx.run(CEIL, step_name("many files copy", count), name, [Cmd(argv, scratch)])
        except StepFailed:
            pass
        finally:
            remove(scratch)
