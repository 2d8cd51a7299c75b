"""The six scenarios of the benchmarks issue, each run for every available tool in turn.

Every tool gets a fresh Git repository per repetition, its own copy of the same bytes, and the
same untimed preparation; only the step itself is timed. Before each timed step we `sync`, so
one tool's dirty pages are never flushed on another tool's clock. The page cache is warm for all
tools alike (the data was just copied), which is also how users meet these commands.

Each restored or pulled file is compared with the original: a fast tool that returns wrong bytes
must fail the run, not win it.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import datagen, many_files
from benchmarks.modes import Mode, human
from benchmarks.peers.base import Tool, Unsupported, remove
from benchmarks.peers.ceilings import file_ceilings, s3_copy, tree_ceilings
from benchmarks.results import Results
from benchmarks.runner import Cmd, Sample, StepFailed, measure
from benchmarks.s3server import S3_ENV, S3Server

CEIL = "ceilings"


class RemoteUnavailable(Exception):
    """The tool cannot talk to this kind of remote in this checkout."""


@dataclass
class Context:
    mode: Mode
    work: Path  # benchmarks/.work
    env: dict[str, str]
    tools: list[Tool]
    results: Results
    xxh: bool = False
    moto: str | None = None
    timeout: float = 900.0
    log: Callable[[str], None] = print
    notes: dict[str, str] = field(default_factory=dict)
    data_dir: Path | None = None  # where generated data is kept; default work/data
    many_counts: list[int] = field(default_factory=list)  # scenario 7, every tool
    many_peer_counts: list[int] = field(default_factory=list)  # scenario 7, DVC and Git LFS

    @property
    def data(self) -> Path:
        return self.data_dir or self.work / "data"

    @property
    def ws_root(self) -> Path:
        # One folder per run: two runs at once (a developer's quick run while CI's smoke runs,
        # say) must never delete each other's workspaces.
        return self.work / "ws" / f"run-{os.getpid()}"

    def workspace(self, scenario: str, tool: str, rep: int) -> Path:
        ws = self.ws_root / f"s{scenario}-{tool}-{rep}"
        if ws.exists():
            remove(ws)
        ws.parent.mkdir(parents=True, exist_ok=True)
        return ws

    def run(self, scenario: str, step: str, tool: str, cmds: list[Cmd],
            stored: Callable[[], int] | None = None) -> Sample:
        """Measure one step, record it, and raise StepFailed if it failed."""
        os.sync()
        sample = measure(cmds, self.timeout, self.env)
        self.record(scenario, step, tool, sample, stored() if stored and sample.ok else None)
        if not sample.ok:
            raise StepFailed(sample)
        return sample

    def record(self, scenario: str, step: str, tool: str, sample: Sample,
               stored: int | None = None) -> None:
        result = self.results.get(scenario, step, tool)
        result.samples.append(sample)
        if stored is not None:
            result.stored.append(stored)
        if not sample.ok:
            result.errors.append(sample.error)
            self.log(f"    ! {tool} {step}: {sample.error.splitlines()[0]}")
        else:
            self.log(f"    {tool:10s} {step:38s} {sample.wall:8.3f} s  cpu {sample.cpu:7.3f} s"
                     f"  rss {sample.maxrss / 2**20:7.1f} MiB")


def _copy_in(src: Path, dst: Path) -> None:
    if src.is_dir():
        # Folders of thousands of small files are hard-linked, not copied: copying 20,000
        # files took 12 s per workspace, a third of scenario 2's untimed setup. No tool
        # writes into a file it adds, and the scenarios replace a file instead of editing
        # it in place (datagen.change_one_file), so the shared source data never changes.
        subprocess.run(["cp", "-rl", str(src), str(dst)], check=True)
    else:
        shutil.copyfile(src, dst)


def _make_writable(path: Path) -> None:
    # Some tools leave checked-out files read-only (DVC does with link cache types); the
    # scenario edits them the way a user would after `chmod u+w`.
    path.chmod(0o644)


def _check_same(expected: Path, actual: Path, what: str) -> None:
    if expected.is_dir():
        cmp = filecmp.dircmp(expected, actual)
        missing = _dircmp_problems(cmp)
        if missing:
            raise AssertionError(f"{what}: restored tree differs: {missing[:5]}")
        return
    if not actual.exists() or not filecmp.cmp(expected, actual, shallow=False):
        raise AssertionError(f"{what}: restored file differs from the original")


def _dircmp_problems(cmp: filecmp.dircmp[str]) -> list[str]:
    problems = list(cmp.left_only) + list(cmp.right_only) + list(cmp.diff_files)
    # dircmp compares shallowly (size, mtime); for equal-size random data that is weak, so we
    # also compare contents of a sample of files.
    for name in cmp.common_files[:20]:
        if not filecmp.cmp(os.path.join(cmp.left, name), os.path.join(cmp.right, name),
                           shallow=False):
            problems.append(name)
    for sub in cmp.subdirs.values():
        problems.extend(_dircmp_problems(sub))
    return problems


def _per_tool(ctx: Context, scenario: str, tools: list[Tool],
              body: Callable[[Tool, Path, int], None]) -> None:
    """Run `body` for each tool and repetition in a fresh workspace; a failing tool's error is
    recorded and the remaining tools still run."""
    for rep in range(ctx.mode.reps):
        ctx.log(f"  repetition {rep + 1}/{ctx.mode.reps}")
        for tool in tools:
            ws = ctx.workspace(scenario, tool.name, rep)
            try:
                body(tool, ws, rep)
            except StepFailed:
                pass  # already recorded
            except (AssertionError, RuntimeError, OSError) as exc:
                ctx.log(f"    ! {tool.name}: {exc}")
                ctx.results.get(scenario, "setup", tool.name).errors.append(str(exc)[:2000])
            finally:
                remove(ws)
                for extra in ws.parent.glob(ws.name + "-*"):
                    remove(extra)


def _ceilings(ctx: Context, step: str, commands: Callable[[Path], dict[str, list[Cmd]]]) -> None:
    if not ctx.mode.ceilings:
        return
    scratch = ctx.ws_root / "ceiling"
    for _rep in range(ctx.mode.reps):
        for name, cmds in commands(scratch).items():
            remove(scratch)
            scratch.mkdir(parents=True)
            try:
                ctx.run(CEIL, step, name, cmds)
            except StepFailed:
                pass
    remove(scratch)


def big_file(ctx: Context, size: int = 0) -> Path:
    # The same seed for every size: scenario 6 reuses scenario 1's file when the sizes match.
    size = size or ctx.mode.big
    return datagen.random_file(ctx.data / f"random-{size}.bin", size, seed=1)


def small_tree(ctx: Context, count: int = 0) -> Path:
    m = ctx.mode
    count = count or m.small_count
    return datagen.small_files(ctx.data / f"small-{count}", count, m.small_folders,
                               m.small_size, seed=2)


# --- scenarios 1 and 3: one big file -------------------------------------------------------

def scenario_big(ctx: Context) -> None:
    """1: add new / re-add unchanged / re-add after 1 MiB edit / add shifted copy;
    3: checkout from the cache (run in the same workspace, right after the first add)."""
    src = big_file(ctx)
    size = human(ctx.mode.big)
    ctx.notes["1"] = f"file of {size} random bytes"

    def body(tool: Tool, ws: Path, rep: int) -> None:
        tool.init_repo(ws)
        _copy_in(src, ws / "big.bin")
        cache = tool.cache_dir(ws)

        def stored() -> int:
            return datagen.tree_bytes(cache)

        ctx.run("1", "add new file", tool.name, tool.add(ws, ["big.bin"]), stored)
        ctx.run("1", "re-add unchanged", tool.name, tool.add(ws, ["big.bin"]))

        remove(ws / "big.bin")
        ctx.run("3", "checkout from cache", tool.name, tool.checkout(ws, ["big.bin"]))
        _check_same(src, ws / "big.bin", f"{tool.label} checkout")

        before = stored()
        _make_writable(ws / "big.bin")
        datagen.edit_middle(ws / "big.bin", ctx.mode.edit, seed=100 + rep)
        ctx.run("1", "re-add after 1 MiB edit in the middle", tool.name,
                tool.add(ws, ["big.bin"]), lambda: stored() - before)

        before = stored()
        datagen.insert_at_start(src, ws / "shifted.bin", ctx.mode.insert, seed=200 + rep)
        ctx.run("1", "add copy with 100 B inserted at start", tool.name,
                tool.add(ws, ["shifted.bin"]), lambda: stored() - before)

    _per_tool(ctx, "1", ctx.tools, body)
    _ceilings(ctx, "big file", lambda scratch: file_ceilings(src, scratch, ctx.xxh))


# --- scenario 2: many small files ----------------------------------------------------------

def scenario_small(ctx: Context) -> None:
    src = small_tree(ctx)
    m = ctx.mode
    ctx.notes["2"] = (f"{m.small_count:,} files of {human(m.small_size)} in "
                      f"{m.small_folders} folders")
    changed = sorted(next(iter(sorted(src.iterdir()))).iterdir())[0].relative_to(src)

    def body(tool: Tool, ws: Path, rep: int) -> None:
        tool.init_repo(ws)
        _copy_in(src, ws / "data")
        cache = tool.cache_dir(ws)
        ctx.run("2", "add", tool.name, tool.add(ws, ["data"]),
                lambda: datagen.tree_bytes(cache))
        ctx.run("2", "status, nothing changed", tool.name, tool.status(ws))
        target = ws / "data" / changed
        _make_writable(target)
        datagen.change_one_file(target, seed=300 + rep)
        ctx.run("2", "status, one file changed", tool.name, tool.status(ws))
        remove(ws / "data")
        ctx.run("2", "checkout into empty workspace", tool.name, tool.checkout(ws, ["data"]))
        _check_same(src, ws / "data", f"{tool.label} checkout")

    _per_tool(ctx, "2", ctx.tools, body)
    _ceilings(ctx, "small files", lambda scratch: tree_ceilings(src, scratch, ctx.xxh))


# --- scenario 4: push and pull ---------------------------------------------------------------

def scenario_remote(ctx: Context) -> None:
    count = ctx.mode.remote_small_count or ctx.mode.small_count
    big_size = ctx.mode.remote_big or ctx.mode.big
    big, small = big_file(ctx, big_size), small_tree(ctx, count)
    ctx.notes["4"] = (f"{human(big_size)} file + {count:,} small files; "
                      "S3 = local moto server, local = directory / bare repo on the same disk")
    if ctx.moto is None:
        ctx.results.unavailable["s3"] = "moto_server not available"
    env = dict(ctx.env, **S3_ENV)
    ctx.env = env

    def transfer(tool: Tool, ws: Path, where: str) -> None:
        # The first push decides whether this tool has this kind of remote at all (casstore's
        # remotes may not exist yet in an older checkout): failing it means "not available",
        # not a failed measurement.
        os.sync()
        first = measure(tool.push(ws), ctx.timeout, env)
        if not first.ok:
            raise RemoteUnavailable(first.error)
        ctx.record("4", f"push to {where}", tool.name, first)
        ctx.run("4", f"no-op push to {where}", tool.name, tool.push(ws))
        tool.drop_local_copies(ws, ["big.bin", "data"])
        ctx.run("4", f"pull from {where}", tool.name, tool.pull(ws))
        _check_same(big, ws / "big.bin", f"{tool.label} pull")
        _check_same(small, ws / "data", f"{tool.label} pull")

    def unavailable(tool: Tool, where: str, reason: str) -> None:
        lines = [ln for ln in reason.splitlines() if ln.strip()]
        short = (lines[-1] if lines else reason)[:160]
        ctx.results.get("4", f"push to {where}", tool.name).note = f"not available: {short}"
        ctx.results.unavailable[f"{tool.name} {where} remote"] = short
        ctx.log(f"    - {tool.name}: {where} remote not available ({short})")

    for rep in range(ctx.mode.reps):
        ctx.log(f"  repetition {rep + 1}/{ctx.mode.reps}")
        server = S3Server(ctx.moto, env, ctx.work / "logs") if ctx.moto else None
        try:
            if server:
                server.start()
                server.create_bucket("bench")
            for tool in ctx.tools:
                ws = ctx.workspace("4", tool.name, rep)
                try:
                    tool.init_repo(ws)
                    _copy_in(big, ws / "big.bin")
                    _copy_in(small, ws / "data")
                    os.sync()
                    measure(tool.add(ws, ["big.bin", "data"]), ctx.timeout, env)
                    tool.commit(ws)
                    for where in ("S3", "local directory"):
                        try:
                            if f"{tool.name} {where} remote" in ctx.results.unavailable:
                                continue  # found missing in an earlier repetition
                            try:
                                if where == "S3":
                                    if server is None:
                                        continue
                                    tool.configure_s3_remote(ws, server.endpoint,
                                                             f"s3://bench/{tool.name}-{rep}")
                                else:
                                    tool.configure_local_remote(ws,
                                                                ws.parent / f"{ws.name}-remote")
                            except RuntimeError as exc:
                                raise RemoteUnavailable(str(exc)) from None
                            transfer(tool, ws, where)
                        except Unsupported:
                            continue
                        except RemoteUnavailable as exc:
                            unavailable(tool, where, str(exc))
                            continue
                        except StepFailed:
                            continue  # recorded; try the other remote kind
                        except (RuntimeError, AssertionError) as exc:
                            ctx.log(f"    ! {tool.name} {where}: {exc}")
                            ctx.results.get("4", f"push to {where}", tool.name).errors.append(
                                str(exc)[:2000])
                except (RuntimeError, OSError, AssertionError) as exc:
                    ctx.log(f"    ! {tool.name}: {exc}")
                    ctx.results.get("4", "setup", tool.name).errors.append(str(exc)[:2000])
                finally:
                    remove(ws)
                    remove(ws.parent / f"{ws.name}-remote")
            if ctx.mode.ceilings:
                _remote_ceilings(ctx, server, big, small, rep)
        finally:
            if server:
                server.stop()


def _remote_ceilings(ctx: Context, server: S3Server | None, big: Path, small: Path,
                     rep: int) -> None:
    scratch = ctx.ws_root / "ceiling"
    remove(scratch)
    scratch.mkdir(parents=True)
    try:
        if server:
            prefix = f"bench/ceiling-{rep}"
            put = (s3_copy(server.endpoint, "put", big, f"{prefix}/big.bin", scratch)
                   + s3_copy(server.endpoint, "put", small, f"{prefix}/data", scratch))
            get = (s3_copy(server.endpoint, "get", scratch / "big.bin", f"{prefix}/big.bin",
                           scratch)
                   + s3_copy(server.endpoint, "get", scratch / "data", f"{prefix}/data",
                             scratch))
            ctx.run(CEIL, "push to S3", "s3fs", put)
            ctx.run(CEIL, "pull from S3", "s3fs", get)
        remove(scratch)
        scratch.mkdir(parents=True)
        ctx.run(CEIL, "push to local directory", "cp",
                [Cmd(["cp", "-r", str(big), str(small), str(scratch)], scratch)])
    except StepFailed:
        pass
    finally:
        remove(scratch)


# --- scenario 5: model history ------------------------------------------------------------

def scenario_model(ctx: Context) -> None:
    m = ctx.mode
    paths = datagen.model_history(ctx.data / f"model-{m.model_bytes}", m.model_bytes,
                                  m.model_steps, m.model_layers, m.model_trainable, seed=5)
    total = sum(p.stat().st_size for p in paths)
    ctx.notes["5"] = (f"{m.model_steps} safetensors checkpoints of {human(paths[0].stat().st_size)}"
                      f", {m.model_layers} layers of which {m.model_trainable} trained; "
                      f"sum of files {human(total)}")
    ctx.notes["5.sum"] = str(total)

    def body(tool: Tool, ws: Path, rep: int) -> None:
        tool.init_repo(ws)
        cache = tool.cache_dir(ws)
        later = Sample()
        for i, path in enumerate(paths):
            target = ws / "model.safetensors"
            if target.exists():
                _make_writable(target)
            shutil.copyfile(path, target)
            if i == 0:
                ctx.run("5", "add first checkpoint", tool.name,
                        tool.add(ws, ["model.safetensors"]))
                continue
            os.sync()
            one = measure(tool.add(ws, ["model.safetensors"]), ctx.timeout, ctx.env)
            if not one.ok:
                ctx.record("5", f"add checkpoints 2-{len(paths)}", tool.name, one)
                raise StepFailed(one)
            later.wall += one.wall
            later.user += one.user
            later.sys += one.sys
            later.maxrss = max(later.maxrss, one.maxrss)
            later.commands = one.commands
        ctx.record("5", f"add checkpoints 2-{len(paths)}", tool.name, later,
                   datagen.tree_bytes(cache))

    _per_tool(ctx, "5", ctx.tools, body)


# --- scenario 6: scaling ------------------------------------------------------------------

def scenario_scaling(ctx: Context) -> None:
    tools = [t for t in ctx.tools if t.name in ("cas", "dvc")]
    for size in ctx.mode.scaling:
        label = human(size)
        if size == ctx.mode.big and _reuse_big_file_steps(ctx, tools, label):
            # Scenarios 1 and 3 already added and checked out this very file in this run:
            # measuring it again would cost minutes and tell nothing new.
            ctx.log(f"  size {label}: the measurements of scenarios 1 and 3 (same file)")
            continue
        src = datagen.random_file(ctx.data / f"random-{size}.bin", size, seed=1)
        ctx.log(f"  size {label}")

        def body(tool: Tool, ws: Path, rep: int, src: Path = src, label: str = label) -> None:
            tool.init_repo(ws)
            _copy_in(src, ws / "big.bin")
            ctx.run("6", f"add {label}", tool.name, tool.add(ws, ["big.bin"]),
                    lambda: datagen.tree_bytes(tool.cache_dir(ws)))
            remove(ws / "big.bin")
            ctx.run("6", f"checkout {label}", tool.name, tool.checkout(ws, ["big.bin"]))
            _check_same(src, ws / "big.bin", f"{tool.label} checkout")

        _per_tool(ctx, "6", tools, body)
        _ceilings(ctx, f"file of {label}",
                  lambda scratch, src=src: file_ceilings(src, scratch, ctx.xxh))
        if size > 2 * datagen.GiB:
            # Keep the disk tidy: the 4 GiB file is cheap to regenerate and rarely needed.
            src.unlink(missing_ok=True)


def _reuse_big_file_steps(ctx: Context, tools: list[Tool], label: str) -> bool:
    """Copy scenario 1/3's add and checkout samples (and the file ceilings) into scenario 6."""
    pairs = [(("1", "add new file"), f"add {label}"),
             (("3", "checkout from cache"), f"checkout {label}")]
    names = [t.name for t in tools]
    if not all(ctx.results.find(*src, name) for src, _ in pairs for name in names):
        return False
    for (scenario, step), target in pairs:
        for name in names:
            found = ctx.results.find(scenario, step, name)
            assert found is not None
            dest = ctx.results.get("6", target, name)
            dest.samples, dest.stored, dest.errors = (list(found.samples), list(found.stored),
                                                      list(found.errors))
            dest.note = f"same run as scenario {scenario}"
    for ceiling in ("cat", "cp", "xxh128sum"):
        found = ctx.results.find(CEIL, "big file", ceiling)
        if found is not None:
            ctx.results.get(CEIL, f"file of {label}", ceiling).samples = list(found.samples)
    return True


SCENARIOS: dict[str, tuple[str, Callable[[Context], None]]] = {
    "1": ("big file: add, re-add, edit, shifted copy (+3: checkout)", scenario_big),
    "2": ("many small files", scenario_small),
    "4": ("push and pull", scenario_remote),
    "5": ("model history dedup", scenario_model),
    "6": ("scaling", scenario_scaling),
    "7": ("many files of 1 KiB (add, status, re-add, checkout, push, pull)", many_files.run),
}


def python_env(base: Mapping[str, str]) -> dict[str, str]:
    """Environment for measured commands: a fixed Git identity, no pager, no prompts."""
    env = dict(base)
    env.update({
        "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid",
        "GIT_TERMINAL_PROMPT": "0", "PAGER": "cat", "GIT_PAGER": "cat",
        "NO_COLOR": "1", "TERM": "dumb",
    })
    # Measured tools must find the project's `cas` first, then system tools.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env
