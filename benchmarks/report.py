"""Markdown and JSON output: machine, targets met or missed, headline ratios, then details."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

from benchmarks.modes import Mode, human
from benchmarks.results import Results, StepResult

TOOL_ORDER = ["cas", "dvc", "gitlfs", "cat", "cp", "tar", "xxh128sum", "s3fs"]
TOOL_LABEL = {"cas": "casstore", "dvc": "DVC", "gitlfs": "Git LFS", "cat": "cat", "cp": "cp",
              "tar": "tar", "xxh128sum": "xxh128sum", "s3fs": "s3fs (raw)"}
SCENARIO_TITLE = {
    "1": "1. One big file",
    "2": "2. Many small files",
    "3": "3. Checkout of the big file from the cache",
    "4": "4. Push and pull",
    "5": "5. Model history (fine-tune with frozen layers)",
    "6": "6. Scaling",
    "7": "7. Many files (1 KiB each)",
    "ceilings": "Ceilings (same bytes, no version control)",
}


def machine() -> dict[str, object]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem, "kernel": platform.release(),
            "python": platform.python_version()}


def filesystem(path: Path) -> str:
    for argv in (["findmnt", "-n", "-o", "FSTYPE", "--target", str(path)],
                 ["df", "--output=fstype", str(path)]):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
        except OSError:
            continue
        lines = [x.strip() for x in out.splitlines() if x.strip() and x.strip() != "Type"]
        if lines:
            return lines[-1]
    return "unknown"


# --- targets ------------------------------------------------------------------------------

@dataclass
class Target:
    text: str
    value: float | None
    threshold: float
    higher_is_better: bool
    unit: str = "x"
    why_missing: str = ""

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        if self.higher_is_better:
            return self.value >= self.threshold
        return self.value <= self.threshold

    def verdict(self) -> str:
        if self.value is None:
            return f"not measured ({self.why_missing or 'a tool was unavailable or failed'})"
        shown = _fmt_value(self.value, self.unit)
        need = _fmt_value(self.threshold, self.unit)
        if self.met:
            return f"**met**: {shown} (target {'≥' if self.higher_is_better else '≤'} {need})"
        if self.higher_is_better:
            factor = self.threshold / self.value if self.value else float("inf")
        else:
            factor = self.value / self.threshold if self.threshold else float("inf")
        return f"**missed**: {shown} vs {need} needed (short by a factor of {factor:.2f})"

    def to_json(self) -> dict[str, object]:
        return {"target": self.text, "value": self.value, "threshold": self.threshold,
                "higher_is_better": self.higher_is_better, "unit": self.unit, "met": self.met}


def _fmt_value(value: float, unit: str) -> str:
    if unit == "bytes":
        return human(value)
    if unit == "MB":
        return f"{value / 1e6:.0f} MB"
    return f"{value:.2f}{unit}"


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def targets(results: Results, mode: Mode) -> list[Target]:
    w = results.wall
    big = human(mode.big)
    add_cas = w("1", "add new file", "cas")
    edit = "re-add after 1 MiB edit in the middle"
    out = [
        Target(f"add {big} new: ≥ 5x faster than `dvc add`", _ratio(w("1", "add new file", "dvc"),
               add_cas), 5, True),
        Target(f"add {big} new: within 2x of `cp` (casstore ÷ cp)",
               _ratio(add_cas, w("ceilings", "big file", "cp")), 2, False),
        Target("re-add after a 1 MiB edit: ≥ 10x faster than DVC",
               _ratio(w("1", edit, "dvc"), w("1", edit, "cas")), 10, True),
    ]
    stored = results.find("1", edit, "cas")
    out.append(Target("re-add after a 1 MiB edit: bytes stored ≤ 1.5 MiB",
                      float(stored.stored_median()) if stored and stored.stored else None,
                      1.5 * 2**20, False, unit="bytes"))
    for step, need in (("add", 5), ("status, nothing changed", 5),
                       ("checkout into empty workspace", 3)):
        out.append(Target(f"{mode.small_count:,} small files, {step}: ≥ {need}x faster than DVC",
                          _ratio(w("2", step, "dvc"), w("2", step, "cas")), need, True))
    co = w("3", "checkout from cache", "cas")
    out.append(Target(f"checkout {big}: no slower than `dvc checkout` (DVC ÷ casstore)",
                      _ratio(w("3", "checkout from cache", "dvc"), co), 1, True))
    out.append(Target(f"checkout {big}: within 1.5x of `cp` (casstore ÷ cp)",
                      _ratio(co, w("ceilings", "big file", "cp")), 1.5, False))
    if mode.scaling:
        largest = human(max(mode.scaling))
        peaks = [r.peak_rss() for step in (f"add {largest}", f"checkout {largest}")
                 if (r := results.find("6", step, "cas")) is not None]
        peak = max((p for p in peaks if p is not None), default=None)
        out.append(Target(f"peak RSS of add/checkout of a {largest} file under 300 MB",
                          float(peak) if peak is not None else None, 300e6, False,
                          unit="MB"))
    # Say "not run" rather than "unavailable or failed" for scenarios left out with --only.
    ran = {scenario for scenario, _step, _tool in results.steps}
    needs = ["1", "1", "1", "1", "2", "2", "2", "3", "3", "6"]
    for target, scenario in zip(out, needs, strict=False):  # no RSS target without scaling
        if target.value is None and scenario not in ran:
            target.why_missing = f"scenario {scenario} not in this run"
    return out + many_files_targets(results)


MANY_STEPS = ("add", "status, nothing changed", "status, one file changed",
              "re-add after one file changed", "checkout into empty workspace", "push to S3",
              "fsck", "fsck --remote", "gc", "gc --remote", "pull from S3")


def _many_counts(results: Results) -> list[int]:
    """File counts scenario 7 measured casstore at."""
    counts = set()
    for scenario, step, tool in results.steps:
        if scenario == "7" and tool == "cas" and " · " in step:
            counts.add(int(step.rsplit(" · ", 1)[1].split()[0].replace(",", "")))
    return sorted(counts)


def many_files_targets(results: Results) -> list[Target]:
    """Issue 15's targets, at the largest file count casstore ran (a million in full mode)."""
    counts = _many_counts(results)
    if not counts:
        return []
    n = counts[-1]

    def find(step: str, tool: str = "cas", count: int = n) -> StepResult | None:
        return results.find("7", f"{step} · {count:,} files", tool)

    out = []
    peaks = [(step, r.peak_rss()) for step in MANY_STEPS if (r := find(step)) is not None]
    worst = max(((p, s) for s, p in peaks if p is not None), default=None)
    out.append(Target(f"{n:,} files: peak RSS of every command ≤ 400 MB"
                      + (f" (largest: {worst[1]})" if worst else ""),
                      float(worst[0]) if worst else None, 400e6, False, unit="MB"))
    readd = find("re-add after one file changed")
    out.append(Target(f"{n:,} files: a one-file edit stores ≤ 256 KiB (file and metadata)",
                      float(readd.stored_median()) if readd and readd.stored else None,
                      256 * 1024, False, unit="bytes"))
    out.append(Target(f"{n:,} files: re-add after a one-file edit ≤ 10 s",
                      readd.median("wall") if readd else None, 10, False, unit=" s"))
    noop = find("status, nothing changed")
    out.append(Target(f"{n:,} files: no-op status ≤ 5 s", noop.median("wall") if noop else None,
                      5, False, unit=" s"))
    peer_n = 100_000 if 100_000 in counts else n
    cas_add, dvc_add = find("add", count=peer_n), find("add", "dvc", peer_n)
    out.append(Target(f"{peer_n:,} files: add ≥ 10x faster than DVC",
                      _ratio(dvc_add.median("wall") if dvc_add else None,
                             cas_add.median("wall") if cas_add else None), 10, True,
                      why_missing="" if dvc_add else f"DVC not run at {peer_n:,} files"))
    return out


def many_files_table(results: Results) -> list[str]:
    """Scenario 7: seconds and peak RSS of each step against the file count, per tool."""
    counts = sorted(set(_many_counts(results)) | {
        int(step.rsplit(" · ", 1)[1].split()[0].replace(",", ""))
        for sc, step, _t in results.steps if sc == "7" and " · " in step
        and not step.startswith("setup")})
    if not counts:
        return []
    rows = ["| step | tool | " + " | ".join(f"{n:,} files: s, peak RSS" for n in counts) + " |",
            "|---|---|" + "---:|" * len(counts)]
    for step in MANY_STEPS:
        for tool in ("cas", "dvc", "gitlfs"):
            cells = []
            for n in counts:
                r = results.find("7", f"{step} · {n:,} files", tool)
                rss = r.peak_rss() if r else None
                cells.append("—" if r is None else
                             f"{_secs(r)}, {'—' if rss is None else human(rss)}")
            if any(c != "—" for c in cells):
                rows.append(f"| {step} | {TOOL_LABEL[tool]} | " + " | ".join(cells) + " |")
    for tool in ("cp", "tar"):
        cells = []
        for n in counts:
            r = results.find("ceilings", f"many files copy · {n:,} files", tool)
            cells.append("—" if r is None else f"{_secs(r)}, —")
        if any(c != "—" for c in cells):
            rows.append(f"| copy the tree (ceiling) | {tool} | " + " | ".join(cells) + " |")
    return rows


# --- tables --------------------------------------------------------------------------------

def _secs(r: StepResult | None) -> str:
    if r is None:
        return "—"
    med = r.median("wall")
    if med is None:
        if r.note.startswith("did not finish"):
            return r.note
        if r.errors:
            return "failed"
        return "not available" if r.note.startswith("not available") else "—"
    mm = r.minmax("wall")
    if mm and len(r.ok_samples) > 1:
        return f"{med:.3f} ({mm[0]:.3f}–{mm[1]:.3f})"
    return f"{med:.3f}"


def _cell_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def headline(results: Results) -> list[str]:
    """Per step: casstore time, peers' times and the ratios we quote (wall and CPU)."""
    rows = ["| scenario · step | casstore s | DVC s | Git LFS s | DVC ÷ cas | DVC ÷ cas, CPU | "
            "Git LFS ÷ cas | Git LFS ÷ cas, CPU |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for (scenario, step, tool), r in ordered(results):
        if tool != "cas" or step == "setup" or scenario == "ceilings":
            continue
        dvc, lfs = results.find(scenario, step, "dvc"), results.find(scenario, step, "gitlfs")
        cells = []
        for peer in (dvc, lfs):
            for attr in ("wall", "cpu"):
                cells.append(_cell_ratio(_ratio(peer.median(attr) if peer else None,
                                                r.median(attr))))
        rows.append(f"| {scenario} · {step} | {_secs(r)} | {_secs(dvc)} | {_secs(lfs)} | "
                    + " | ".join(cells) + " |")
    return rows


def ceiling_ratios(results: Results) -> list[str]:
    """casstore against the machine: >1 means casstore is slower than the raw tool."""
    pairs: list[tuple[str, str, str, str]] = [
        ("1", "add new file", "big file", "add new file"),
        ("3", "checkout from cache", "big file", "checkout from cache"),
        ("2", "add", "small files", "small files add"),
        ("2", "checkout into empty workspace", "small files", "small files checkout"),
        ("4", "push to S3", "push to S3", "push to S3"),
        ("4", "pull from S3", "pull from S3", "pull from S3"),
    ]
    for (scenario, step, _tool), _r in ordered(results):
        if scenario == "6" and _tool == "cas":
            size = step.split(" ", 1)[1]
            pairs.append(("6", step, f"file of {size}", step))
    rows = ["| casstore step | casstore s | ÷ cat | ÷ cp | ÷ xxh128sum | ÷ raw s3fs |",
            "|---|---:|---:|---:|---:|---:|"]
    for scenario, step, ceiling_step, label in pairs:
        cas = results.wall(scenario, step, "cas")
        if cas is None:
            continue
        cells = [_cell_ratio(_ratio(cas, results.wall("ceilings", ceiling_step, t)))
                 for t in ("cat", "cp", "xxh128sum", "s3fs")]
        rows.append(f"| {scenario} · {label} | {cas:.3f} | " + " | ".join(cells) + " |")
    return rows


def ordered(results: Results) -> list[tuple[tuple[str, str, str], StepResult]]:
    """Scenarios in issue order, steps in the order they ran, tools casstore first."""
    order = ["1", "3", "2", "4", "5", "6", "7", "ceilings"]
    first_seen: dict[tuple[str, str], int] = {}
    for scenario, step, _tool in results.steps:
        first_seen.setdefault((scenario, step), len(first_seen))

    def key(item: tuple[tuple[str, str, str], StepResult]) -> tuple[int, int, int]:
        (scenario, step, tool), _r = item
        s = order.index(scenario) if scenario in order else 99
        t = TOOL_ORDER.index(tool) if tool in TOOL_ORDER else 99
        return s, first_seen[(scenario, step)], t

    return sorted(results.steps.items(), key=key)


def details(results: Results, notes: dict[str, str]) -> list[str]:
    lines: list[str] = []
    current = None
    for (scenario, step, tool), r in ordered(results):
        if scenario != current:
            current = scenario
            lines += ["", f"### {SCENARIO_TITLE.get(scenario, scenario)}", ""]
            if scenario in notes:
                lines += [notes[scenario], ""]
            lines += ["| step | tool | wall s, median (min–max) | CPU s | peak RSS | stored |",
                      "|---|---|---:|---:|---:|---:|"]
        cpu = r.median("cpu")
        rss = r.peak_rss()
        stored = r.stored_median()
        err = f" ({r.note})" if r.note and not r.ok_samples else ""
        if r.errors:
            first = r.errors[0].splitlines()
            err = f" ({len(r.errors)} failed: {first[0][:80] if first else ''})"
        lines.append(
            f"| {step} | {TOOL_LABEL.get(tool, tool)} | {_secs(r)}{err} | "
            f"{'—' if cpu is None else f'{cpu:.3f}'} | "
            f"{'—' if rss is None else human(rss)} | {'—' if stored is None else human(stored)} |")
    return lines


def scaling_table(results: Results, mode: Mode) -> list[str]:
    """Time and peak RSS against file size: memory must stay flat as files grow."""
    sources: list[tuple[int, tuple[str, str], tuple[str, str]]] = []
    if mode.big not in mode.scaling:
        sources.append((mode.big, ("1", "add new file"), ("3", "checkout from cache")))
    for size in mode.scaling:
        sources.append((size, ("6", f"add {human(size)}"), ("6", f"checkout {human(size)}")))
    rows = ["| file size | tool | add s | add peak RSS | checkout s | checkout peak RSS |",
            "|---:|---|---:|---:|---:|---:|"]
    for size, add, co in sorted(sources):
        for tool in ("cas", "dvc"):
            a, c = results.find(*add, tool), results.find(*co, tool)
            if a is None and c is None:
                continue
            ra, rc = a.peak_rss() if a else None, c.peak_rss() if c else None
            rows.append(f"| {human(size)} | {TOOL_LABEL[tool]} | {_secs(a)} | "
                        f"{'—' if ra is None else human(ra)} | {_secs(c)} | "
                        f"{'—' if rc is None else human(rc)} |")
    return rows if len(rows) > 2 else []


def model_dedup(results: Results, notes: dict[str, str]) -> list[str]:
    total = int(notes.get("5.sum", "0"))
    if not total:
        return []
    rows = ["| tool | bytes stored after all versions | sum of files | dedup ratio |",
            "|---|---:|---:|---:|"]
    for tool in ("cas", "dvc", "gitlfs"):
        stored = next((r.stored_median() for (sc, _s, t), r in results.steps.items()
                       if sc == "5" and t == tool and r.stored), None)
        if stored:
            rows.append(f"| {TOOL_LABEL[tool]} | {human(stored)} | {human(total)} | "
                        f"{total / stored:.2f}x |")
    return rows


def render(results: Results, mode: Mode, meta: dict[str, object],
           notes: dict[str, str], checks: list[Target]) -> str:
    mach = meta["machine"]
    assert isinstance(mach, dict)
    versions = meta["versions"]
    assert isinstance(versions, dict)
    lines = [
        f"# casstore benchmarks — {mode.name} mode",
        "",
        *([f"**Status:** {meta['status']}.", ""] if meta.get("status", "complete") != "complete"
          else []),
        f"Run {meta['started']} UTC, {mode.reps} repetition(s) per step; times are the median "
        f"wall-clock seconds with (min–max). Harness time {meta['duration_s']:.0f} s "
        f"(per scenario: {_per_scenario(meta.get('scenario_seconds'))}). "
        "Page cache warm for every tool alike.",
        "",
        f"**Machine:** {mach['cpu']}, {mach['cores']} cores, {human(float(mach['memory']))} "
        f"memory, work dir on {meta['filesystem']}, Linux {mach['kernel']}, "
        f"Python {mach['python']}.",
        "",
        f"**Load average** (1 min) at start {meta.get('load_start', '?')}, at end "
        f"{meta.get('load_end', '?')}: other work on the machine inflates wall times, so the "
        "CPU-time ratios are shown next to the wall-time ones.",
        "",
        "**Versions:** " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        "",
    ]
    unavailable = meta.get("unavailable") or {}
    assert isinstance(unavailable, dict)
    if unavailable:
        lines += ["**Not available in this run:** " + "; ".join(
            f"{TOOL_LABEL.get(k, k)}: {v}" for k, v in unavailable.items()), ""]
    if mode.big != mode.issue_big or mode.small_count != mode.issue_small_count:
        lines += [f"**Sizes differ from the issue in {mode.name} mode:** big file "
                  f"{human(mode.big)} (issue: {human(mode.issue_big)}), {mode.small_count:,} "
                  f"small files (issue: {mode.issue_small_count:,}); scaling sizes "
                  f"{', '.join(human(s) for s in mode.scaling)}"
                  + (f"; push/pull moves a {human(mode.remote_big or mode.big)} file and "
                     f"{mode.remote_small_count or mode.small_count:,} small files"
                     if mode.remote_big or mode.remote_small_count else "")
                  + ". Targets are checked at these sizes.", ""]
    lines += ["## Targets", "", "| target | result |", "|---|---|"]
    lines += [f"| {t.text} | {t.verdict()} |" for t in checks]
    lines += ["", "## casstore against DVC and Git LFS",
              "", "Ratios are peer time ÷ casstore time: above 1 means casstore is faster.", ""]
    lines += headline(results)
    lines += ["", "## casstore against the machine's ceilings", "",
              "casstore time ÷ ceiling time: 1.0 would be as fast as the raw tool.", ""]
    lines += ceiling_ratios(results)
    scaling = scaling_table(results, mode)
    if scaling:
        lines += ["", "## Scaling: time and peak memory against file size", ""] + scaling
    many = many_files_table(results)
    if many:
        lines += ["", "## Many files: time and peak memory against the file count", "",
                  notes.get("7", ""), ""] + many
    dedup = model_dedup(results, notes)
    if dedup:
        lines += ["", "## Model history: storage", "", notes.get("5", ""), ""] + dedup
    lines += ["", "## Details"] + details(results, notes)
    return "\n".join(lines) + "\n"


def _per_scenario(seconds: object) -> str:
    if not isinstance(seconds, dict) or not seconds:
        return "n/a"
    return ", ".join(f"{k}: {float(v):.0f} s" for k, v in seconds.items())


def write(out_dir: Path, stamp: str, mode: Mode, markdown: str, payload: dict[str, object],
          results: Results, checks: list[Target]) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / f"{stamp}-{mode.name}.md"
    js = out_dir / f"{stamp}-{mode.name}.json"
    payload = dict(payload, targets=[t.to_json() for t in checks],
                   results=[r.to_json() for r in results.steps.values()])
    _atomic(js, json.dumps(payload, indent=1, default=str) + "\n")
    _atomic(md, markdown)
    _atomic(out_dir / f"latest-{mode.name}.md", markdown)
    return md, js


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)

