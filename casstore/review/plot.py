"""Metric history as a picture: a chart in the terminal and a self-contained HTML report.

Pure: takes the versions oldest first (labels and values) and returns text. The HTML page
has no script and fetches nothing (inline SVG and CSS only), so it can be attached to a
CI run, mailed, or opened from disk years later and look the same.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["ReportVersion", "html_report", "svg_chart", "terminal_plot"]


def _numbers(values: Sequence[Any]) -> list[float | None]:
    return [float(v) if isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v) else None for v in values]


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def terminal_plot(title: str, labels: Sequence[str], values: Sequence[Any], *,
                  height: int = 8, col: int = 6) -> str:
    """A chart of one metric over versions (oldest left), one column per version: a dot
    per value, the y range on the left, the versions below. Versions without the metric
    leave their column empty."""
    nums = _numbers(values)
    known = [v for v in nums if v is not None]
    if not known:
        return f"{title}: no numeric values"
    lo, hi = min(known), max(known)
    span = hi - lo or 1.0
    rows = [[" "] * (len(nums) * col) for _ in range(height)]
    prev: tuple[int, int] | None = None
    for i, v in enumerate(nums):
        if v is None:
            prev = None
            continue
        r = height - 1 - round((v - lo) / span * (height - 1))
        c = i * col + col // 2
        if prev is not None:
            # A line between two dots: '·' along the way, so a trend reads at a glance.
            pr, pc = prev
            for x in range(pc + 1, c):
                y = round(pr + (r - pr) * (x - pc) / (c - pc))
                rows[y][x] = "·"
            # A steep segment covers more rows than columns: fill those rows too.
            step = 1 if r > pr else -1
            for y in range(pr + step, r, step):
                x = round(pc + (c - pc) * (y - pr) / (r - pr))
                if rows[y][x] == " ":
                    rows[y][x] = "·"
        rows[r][c] = "●"
        prev = (r, c)
    left = max(len(_fmt(hi)), len(_fmt(lo)))
    out = [f"{title}  (min {_fmt(lo)}, max {_fmt(hi)}, last {_fmt(known[-1])})"]
    for j, row in enumerate(rows):
        label = _fmt(hi) if j == 0 else _fmt(lo) if j == height - 1 else ""
        out.append(f"{label.rjust(left)} ┤{''.join(row).rstrip()}")
    out.append(" " * left + " └" + "─" * (len(nums) * col))
    names = "".join(_clip(lbl, col - 1).center(col) for lbl in labels)
    out.append(" " * (left + 2) + names.rstrip())
    return "\n".join(out)


def _clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def svg_chart(title: str, labels: Sequence[str], values: Sequence[Any], *,
              width: int = 640, height: int = 220) -> str:
    """One metric over versions as an inline SVG line chart with its points labelled."""
    nums = _numbers(values)
    known = [v for v in nums if v is not None]
    esc = html.escape
    pad_l, pad_r, pad_t, pad_b = 56, 16, 28, 40
    w, h = width - pad_l - pad_r, height - pad_t - pad_b
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{esc(title)} over versions">',
             f'<text x="{pad_l}" y="18" class="title">{esc(title)}</text>',
             f'<line x1="{pad_l}" y1="{pad_t + h}" x2="{pad_l + w}" y2="{pad_t + h}" '
             'class="axis"/>',
             f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{pad_t + h}" class="axis"/>']
    if known:
        lo, hi = min(known), max(known)
        span = hi - lo or 1.0
        n = len(nums)

        def x(i: int) -> float:
            return pad_l + (w / 2 if n == 1 else w * i / (n - 1))

        def y(v: float) -> float:
            return pad_t + h - (v - lo) / span * h

        parts += [f'<text x="{pad_l - 6}" y="{pad_t + 4}" class="tick" '
                  f'text-anchor="end">{_fmt(hi)}</text>',
                  f'<text x="{pad_l - 6}" y="{pad_t + h + 4}" class="tick" '
                  f'text-anchor="end">{_fmt(lo)}</text>']
        points = [(x(i), y(v)) for i, v in enumerate(nums) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(f'<polyline points="{path}" class="line"/>')
        for i, v in enumerate(nums):
            if v is not None:
                parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="4" class="dot">'
                             f'<title>{esc(labels[i])}: {_fmt(v)}</title></circle>')
        for i, lbl in enumerate(labels):
            parts.append(f'<text x="{x(i):.1f}" y="{pad_t + h + 18}" class="tick" '
                         f'text-anchor="middle">{esc(_clip(lbl, 12))}</text>')
    else:
        parts.append(f'<text x="{pad_l + 8}" y="{pad_t + h / 2}" class="tick">no numeric '
                     'values</text>')
    parts.append("</svg>")
    return "".join(parts)


class ReportVersion:
    """One version as the report shows it (oldest first in the list given to the page)."""

    def __init__(self, label: str, commit: str | None, date: str | None, digest: str,
                 metrics: Mapping[str, Any], params: Mapping[str, Any],
                 data: Mapping[str, Any], message: str | None,
                 aliases: Sequence[str] = ()) -> None:
        self.label, self.commit, self.date, self.digest = label, commit, date, digest
        self.metrics, self.params, self.data = dict(metrics), dict(params), dict(data)
        self.message, self.aliases = message, list(aliases)


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;
color:#1b1f24;max-width:1100px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #d0d7de;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f6f8fa}code{font-size:12px}
.chart{border:1px solid #d0d7de;border-radius:6px;margin:6px 12px 6px 0;background:#fff}
.chart .title{font-weight:600;font-size:13px}.chart .tick{font-size:11px;fill:#57606a}
.chart .axis{stroke:#8c959f}.chart .line{fill:none;stroke:#0969da;stroke-width:2}
.chart .dot{fill:#0969da}.alias{background:#ddf4ff;border-radius:8px;padding:0 6px;
font-size:12px}.changed{color:#9a6700}
"""


def _flat(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in sorted(value, key=str):
        name = f"{prefix}.{k}" if prefix else str(k)
        v = value[k]
        if isinstance(v, Mapping) and v:
            out.update(_flat(v, name))
        else:
            out[name] = v
    return out


def html_report(path: str, versions: Sequence[ReportVersion],
                metrics: Sequence[str] | None = None) -> str:
    """The page: one chart per metric over versions (oldest left), then per version what
    it records, which params changed since the version before, and the data it was trained
    on (digests, with the ones that changed marked)."""
    esc = html.escape
    flat = [_flat(v.metrics) for v in versions]
    names = list(metrics) if metrics else sorted({k for f in flat for k, x in f.items()
                                                  if _numbers([x])[0] is not None})
    labels = [v.label for v in versions]
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{esc(path)}: versions</title>", f"<style>{_CSS}</style></head><body>",
           f"<h1>{esc(path)}</h1>",
           f"<p>{len(versions)} version(s), oldest to newest. Written by <code>cas report"
           "</code>; self-contained (no scripts, no network).</p>", "<h2>Metrics</h2>"]
    if names:
        out.append('<div class="charts">')
        out += [svg_chart(n, labels, [f.get(n) for f in flat]) for n in names]
        out.append("</div>")
    else:
        out.append("<p>No numeric metrics recorded.</p>")
    out += ["<h2>Versions</h2>", "<table><tr><th>Version</th><th>Commit</th><th>Date</th>"
            "<th>Metrics</th><th>Params changed</th><th>Data</th><th>Message</th></tr>"]
    prev_params: dict[str, Any] = {}
    prev_data: dict[str, Any] = {}
    for i, (v, f) in enumerate(zip(versions, flat, strict=True)):
        params = _flat(v.params)
        changes = [k for k in sorted(params.keys() | prev_params.keys())
                   if params.get(k) != prev_params.get(k)]
        pc = "<br>".join(
            f"<code>{esc(k)}</code>: {esc(_s(prev_params.get(k)))} → {esc(_s(params.get(k)))}"
            for k in changes) if i else "<br>".join(
            f"<code>{esc(k)}</code> = {esc(_s(x))}" for k, x in params.items())
        rows = []
        for k, d in sorted(v.data.items()):
            cls = "changed" if i and prev_data.get(k) != d else ""
            rows.append(f'<code>{esc(str(k))}</code> <code class="{cls}">'
                        f"{esc(str(d)[:12])}</code>")
        data = "<br>".join(rows)
        tags = "".join(f' <span class="alias">{esc(a)}</span>' for a in v.aliases)
        mets = "<br>".join(f"{esc(k)} = {esc(_s(x))}" for k, x in f.items())
        out.append(f"<tr><td><b>{esc(v.label)}</b>{tags}</td>"
                   f"<td><code>{esc((v.commit or 'uncommitted')[:10])}</code></td>"
                   f"<td>{esc((v.date or '')[:10])}</td><td>{mets}</td><td>{pc}</td>"
                   f"<td>{data}</td><td>{esc(v.message or '')}</td></tr>")
        prev_params, prev_data = params, dict(v.data)
    out += ["</table>", "</body></html>"]
    return "\n".join(out) + "\n"


def _s(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)
