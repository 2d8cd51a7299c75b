"""Compare two pointer ``meta`` blocks: metrics, params, data lineage, environment.

Pure: takes two dicts (as read from ``meta:`` in two pointer versions) and
returns dataclasses; the renderers turn them into text for a terminal, a
Markdown table for a pull-request comment, or JSON-able dicts for ``--json``.
Nested params/metrics are flattened to dotted names (``optimizer.lr``) so a
reviewer sees one row per value that changed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "LOWER_IS_BETTER_PATTERN",
    "MetaComparison",
    "MetricDelta",
    "ValueChange",
    "compare_meta",
    "flatten",
    "higher_is_better",
    "render_markdown",
    "render_text",
    "to_dict",
]

#: Metric names matching this (case-insensitive) are treated as lower-is-better by default.
LOWER_IS_BETTER_PATTERN = re.compile(r"loss|error|perplexity|mae|mse|rmse|latency", re.I)


def higher_is_better(name: str, hints: Mapping[str, bool] | None = None) -> bool:
    """Whether a larger value of metric ``name`` is an improvement.

    An explicit ``hints[name]`` wins; otherwise names containing loss, error,
    perplexity, mae, mse, rmse or latency are lower-is-better and all others
    higher-is-better (accuracy, f1, auc, bleu...).
    """
    if hints and name in hints:
        return bool(hints[name])
    return LOWER_IS_BETTER_PATTERN.search(name) is None


@dataclass(frozen=True)
class MetricDelta:
    """One metric in either version.

    ``delta = new - old`` and ``percent = delta / |old| * 100`` are set only
    when both values are numbers (bools are not), and ``percent`` only when
    ``old != 0``. ``arrow`` is ``↑``, ``↓`` or ``=`` (the raw direction, empty
    when not comparable); ``improved`` is True/False when the direction is
    known and the values differ, None otherwise. ``status`` is one of
    ``added``, ``removed``, ``changed``, ``unchanged``.
    """

    name: str
    old: Any
    new: Any
    status: str
    delta: float | int | None = None
    percent: float | None = None
    arrow: str = ""
    higher_is_better: bool = True
    improved: bool | None = None


@dataclass(frozen=True)
class ValueChange:
    """A param, env entry or data-lineage pointer that was ``added``, ``removed`` or ``changed``.

    ``old`` is None when added, ``new`` is None when removed. For data lineage
    the values are the data pointers' digests.
    """

    name: str
    status: str
    old: Any = None
    new: Any = None


@dataclass(frozen=True)
class MetaComparison:
    """Everything that differs between two ``meta`` blocks (unchanged params are omitted)."""

    old_version: str | None
    new_version: str | None
    metrics: list[MetricDelta] = field(default_factory=list)
    params: list[ValueChange] = field(default_factory=list)
    data: list[ValueChange] = field(default_factory=list)
    env: list[ValueChange] = field(default_factory=list)
    old_message: str | None = None
    new_message: str | None = None

    @property
    def has_changes(self) -> bool:
        """True when anything other than the version string differs."""
        return bool(
            any(m.status != "unchanged" for m in self.metrics)
            or self.params
            or self.data
            or self.env
        )


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts to dotted keys: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``.

    Lists are kept as values (compared whole): their elements have no names.
    An empty dict is kept as a value so that it is not silently lost.
    """
    if not isinstance(value, Mapping) or (not value and prefix):
        return {prefix: value} if prefix else {}
    out: dict[str, Any] = {}
    for key in sorted(value, key=str):
        name = f"{prefix}.{key}" if prefix else str(key)
        out.update(flatten(value[key], name))
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _metric(name: str, old: Any, new: Any, hints: Mapping[str, bool] | None) -> MetricDelta:
    hib = higher_is_better(name, hints)
    if old is None and new is not None:
        return MetricDelta(name, old, new, "added", higher_is_better=hib)
    if new is None and old is not None:
        return MetricDelta(name, old, new, "removed", higher_is_better=hib)
    if _is_number(old) and _is_number(new):
        delta = new - old
        if isinstance(delta, float):
            delta = round(delta, 12)  # hide float noise like 0.1 + 0.2 in the output
        percent = round(delta / abs(old) * 100, 6) if old != 0 else None
        arrow = "↑" if new > old else "↓" if new < old else "="
        improved = None if new == old else ((new > old) == hib)
        status = "unchanged" if new == old else "changed"
        return MetricDelta(name, old, new, status, delta, percent, arrow, hib, improved)
    status = "unchanged" if old == new else "changed"
    arrow = "=" if old == new else ""
    return MetricDelta(name, old, new, status, arrow=arrow, higher_is_better=hib)


def _changes(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[ValueChange]:
    a, b = flatten(old or {}), flatten(new or {})
    out = []
    for name in sorted(a.keys() | b.keys()):
        if name not in b:
            out.append(ValueChange(name, "removed", old=a[name]))
        elif name not in a:
            out.append(ValueChange(name, "added", new=b[name]))
        elif a[name] != b[name] or type(a[name]) is not type(b[name]):
            out.append(ValueChange(name, "changed", a[name], b[name]))
    return out


def compare_meta(
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    *,
    higher_is_better_hints: Mapping[str, bool] | None = None,
) -> MetaComparison:
    """Compare two pointer ``meta`` blocks (``None`` means no meta at all).

    Reads the keys ``version``, ``message``, ``metrics``, ``params``, ``data``
    (pointer path -> digest) and ``env``; other keys are ignored. Metrics are
    all listed (unchanged too, since a reviewer wants to see them); params,
    data and env list only what differs.
    """
    old, new = old or {}, new or {}
    ma, mb = flatten(old.get("metrics") or {}), flatten(new.get("metrics") or {})
    metrics = [
        _metric(n, ma.get(n), mb.get(n), higher_is_better_hints)
        for n in sorted(ma.keys() | mb.keys())
    ]
    return MetaComparison(
        old_version=_opt_str(old.get("version")),
        new_version=_opt_str(new.get("version")),
        metrics=metrics,
        params=_changes(old.get("params"), new.get("params")),
        data=_changes(old.get("data"), new.get("data")),
        env=_changes(old.get("env"), new.get("env")),
        old_message=_opt_str(old.get("message")),
        new_message=_opt_str(new.get("message")),
    )


def _opt_str(v: Any) -> str | None:
    return None if v is None else str(v)


# -- rendering ------------------------------------------------------------------------


def fmt_value(v: Any) -> str:
    """Format a value for humans: ``None`` as ``-``, floats with up to 6 significant digits."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True, separators=(",", ":"))
    return str(v)


def _fmt_delta(m: MetricDelta) -> str:
    if m.delta is None:
        return ""
    sign = "+" if m.delta > 0 else ""
    text = f"{sign}{fmt_value(m.delta)}"
    if m.percent is not None:
        text += f" ({sign}{m.percent:.2f}%)"
    return text


def _verdict(m: MetricDelta) -> str:
    if m.improved is None:
        return ""
    return "better" if m.improved else "worse"


def _short(v: Any) -> str:
    # Digests are 32 hex digits; 12 are plenty to tell versions apart in a table.
    s = fmt_value(v)
    return s[:12] if re.fullmatch(r"[0-9a-f]{32,64}", s) else s


def render_text(c: MetaComparison) -> str:
    """Plain-text report for a terminal."""
    lines = [f"version: {fmt_value(c.old_version)} -> {fmt_value(c.new_version)}"]
    if c.metrics:
        lines.append("metrics:")
        for m in c.metrics:
            extra = " ".join(x for x in (m.arrow, _fmt_delta(m), _verdict(m)) if x)
            if m.status in ("added", "removed"):
                extra = m.status
            lines.append(f"  {m.name}: {fmt_value(m.old)} -> {fmt_value(m.new)}  {extra}".rstrip())
    for title, rows in (("params", c.params), ("data", c.data), ("env", c.env)):
        if rows:
            lines.append(f"{title}:")
            for r in rows:
                lines.append(f"  {r.name}: {_short(r.old)} -> {_short(r.new)}  ({r.status})")
    if not c.has_changes:
        lines.append("no changes in metrics, params, data or environment")
    return "\n".join(lines)


def _md_cell(v: Any) -> str:
    # Pipes and newlines would break the Markdown table a PR comment renders.
    return str(v).replace("|", "\\|").replace("\n", " ")


def _md_code(v: Any) -> str:
    # A missing side is a plain dash; a value is code so digests and names stay literal.
    return "-" if v is None else f"`{_md_cell(_short(v))}`"


def render_markdown(c: MetaComparison, *, title: str | None = None) -> str:
    """Markdown a reviewer reads on a pull request: one table per section that has rows."""
    out: list[str] = []
    if title:
        out += [f"### {_md_cell(title)}", ""]
    out += [f"**Version:** `{fmt_value(c.old_version)}` → `{fmt_value(c.new_version)}`", ""]
    if c.metrics:
        out += ["| Metric | Old | New | Δ | Δ % | |", "|---|---:|---:|---:|---:|:---:|"]
        for m in c.metrics:
            delta = "" if m.delta is None else ("+" if m.delta > 0 else "") + fmt_value(m.delta)
            pct = "" if m.percent is None else f"{'+' if m.percent > 0 else ''}{m.percent:.2f}%"
            mark = m.arrow
            if m.improved is not None:
                mark += " ✅" if m.improved else " ⚠️"
            if m.status in ("added", "removed"):
                mark = m.status
            out.append(
                f"| {_md_cell(m.name)} | {_md_cell(fmt_value(m.old))} | "
                f"{_md_cell(fmt_value(m.new))} | {delta} | {pct} | {mark} |"
            )
        out.append("")
    for title_, rows in (("Param", c.params), ("Data", c.data), ("Env", c.env)):
        if rows:
            out += [f"| {title_} | Old | New | Change |", "|---|---|---|---|"]
            for r in rows:
                out.append(
                    f"| {_md_cell(r.name)} | {_md_code(r.old)} | {_md_code(r.new)} | {r.status} |"
                )
            out.append("")
    if not c.has_changes:
        out += ["_No changes in metrics, params, data or environment._", ""]
    return "\n".join(out).rstrip() + "\n"


def to_dict(c: MetaComparison) -> dict[str, Any]:
    """A JSON-able dict (for ``--json``), with the same field names as the dataclasses."""
    d = asdict(c)
    d["has_changes"] = c.has_changes
    return d
