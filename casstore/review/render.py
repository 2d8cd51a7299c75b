"""Text and Markdown reports of ``cas compare`` and ``cas diff`` results.

The Markdown is what a pull-request comment shows: a summary table first, details folded
in ``<details>`` blocks so that a large change stays readable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..units import human_bytes, plural
from . import compare as metacmp
from . import tables, tensors

if TYPE_CHECKING:
    from .content import ChunkSharing, FileChanges
    from .results import CompareResult, DiffEntry, DiffResult
    from .rules import Regression

#: Hidden marker that lets a CI job find and update its own earlier comment.
COMMENT_MARKER = "<!-- cas-diff -->"
MAX_LISTED = 50  # file names listed per folder and kind of change


def _signed_bytes(n: int) -> str:
    return ("+" if n > 0 else "-" if n < 0 else "±") + human_bytes(abs(n))


def _size_change(old: int | None, new: int | None) -> str:
    if old is None:
        return human_bytes(new)
    if new is None:
        return human_bytes(old)
    if old == new:
        return human_bytes(new)
    return f"{human_bytes(old)} → {human_bytes(new)} ({_signed_bytes(new - old)})"


def _sharing(c: ChunkSharing) -> str:
    return (f"{c.shared_chunks} of {c.new_chunks} chunks shared "
            f"({c.shared_share * 100:.1f}% of bytes), {human_bytes(c.new_bytes)} new")


def _files_summary(f: FileChanges) -> str:
    return (f"{len(f.added)} added, {len(f.removed)} removed, {len(f.modified)} modified"
            + (" (from the pointers' file lists)" if f.source == "entries" else ""))


def _names(kind: str, names: list[str], prefix: str, sign: str) -> list[str]:
    out = [f"  {sign} {prefix}/{n}" for n in names[:MAX_LISTED]]
    if len(names) > MAX_LISTED:
        out.append(f"  ... and {len(names) - MAX_LISTED} more {kind}")
    return out


def _code(s: str) -> str:
    """Inline code that no name can break out of: file names come from contributors' pointers,
    and a backtick, pipe or newline in one must not rewrite the comment around it."""
    text = _html(s.replace("\n", " ").replace("\r", " ")).replace("|", "&#124;")
    return f"<code>{text}</code>"


def _md_names(kind: str, names: list[str], prefix: str) -> list[str]:
    out = [f"- {kind}: {_code(f'{prefix}/{n}')}" for n in names[:MAX_LISTED]]
    if len(names) > MAX_LISTED:
        out.append(f"- … and {len(names) - MAX_LISTED} more {kind}")
    return out


def _indent(text: str, by: str = "  ") -> list[str]:
    return [by + line if line else line for line in text.splitlines()]


# -- compare --------------------------------------------------------------------------

def regression_lines(regressions: list[Regression]) -> list[str]:
    """One line per broken review rule (the gate's output in a CI log)."""
    return [f"regression: {g.line()}" for g in regressions]


def _regressions_md(regressions: list[Regression], rules: bool) -> list[str]:
    """The block a reviewer must not miss: above the summary, never folded."""
    if not regressions:
        return ["**Regressions:** none (review rules in `.cas/config.yaml` pass)", ""] \
            if rules else []
    out = [f"#### ❌ Regressions: {plural(len(regressions), 'review rule')} broken", "",
           "| Artifact | Metric | Old | New | Allowed |", "|---|---|---:|---:|---|"]
    for g in regressions:
        new = "missing" if g.new is None else metacmp.fmt_value(g.new)
        out.append(f"| {_code(g.artifact)} | {_code(g.metric)} | "
                   f"{metacmp.fmt_value(g.old)} | {new} | {g.allowed} |")
    return out + [""]


def _tensor_files_text(prefix: str, files: dict[str, Any]) -> list[str]:
    lines = []
    for name, t in files.items():
        lines.append(f"tensors {prefix}/{name}:")
        lines += _indent(tensors.render_text(t))
    return lines


def _tensor_files_md(prefix: str, files: dict[str, Any]) -> list[str]:
    out = []
    for name, t in files.items():
        out += [_code(f"{prefix}/{name}"), ""]
        out += tensors.render_markdown(t).rstrip().splitlines() + [""]
    return out


def compare_text(r: CompareResult) -> str:
    lines = [f"{r.old.label} -> {r.new.label}"]
    lines += metacmp.render_text(r.meta).splitlines()
    lines += ["  " + line for line in regression_lines(r.regressions)]
    if r.same_content:
        lines.append("content: identical")
    else:
        lines.append(f"content: {r.old.digest[:12]} -> {r.new.digest[:12]}, "
                     f"size {_size_change(r.old.size, r.new.size)}")
        if r.chunks:
            lines.append(f"  {_sharing(r.chunks)}")
    if r.lineage:
        lines.append("data lineage:")
        for c in r.lineage:
            lines.append(f"  {c.pointer}: {c.status}{_lineage_detail(c.detail)}")
    if r.files:
        lines.append(f"files: {_files_summary(r.files)}")
        lines += _names("added", r.files.added, r.new.path, "+")
        lines += _names("removed", r.files.removed, r.new.path, "-")
        lines += _names("modified", r.files.modified, r.new.path, "~")
    if r.tensors:
        lines.append("tensors:")
        lines += _indent(tensors.render_text(r.tensors))
    if r.table:
        lines.append("table:")
        lines += _indent(tables.render_text(r.table))
    for name, t in r.tables.items():
        lines.append(f"table {r.new.path}/{name}:")
        lines += _indent(tables.render_text(t))
    lines += _tensor_files_text(r.new.path, r.tensor_files)
    lines += [f"note: {n}" for n in r.notes]
    return "\n".join(lines)


def _lineage_detail(d: dict[str, Any]) -> str:
    if not d:
        return ""
    if d.get("kind") == "dir":
        return (f" ({plural(d['files_added'], 'file')} added, {d['files_removed']} removed, "
                f"{d['files_modified']} modified; {human_bytes(d['bytes_changed'])} in "
                "changed files)")
    return (f" ({_size_change(d['old_size'], d['new_size'])}, {human_bytes(d['new_bytes'])} "
            "new)")


def compare_markdown(r: CompareResult) -> str:
    out = [f"### {_code(r.old.label)} → {_code(r.new.label)}", ""]
    out += _regressions_md(r.regressions, r.rules)
    out += metacmp.render_markdown(r.meta).rstrip().splitlines()
    out.append("")
    if r.same_content:
        out += ["**Content:** identical", ""]
    else:
        text = (f"**Content:** `{r.old.digest[:12]}` → `{r.new.digest[:12]}`, "
                f"{_size_change(r.old.size, r.new.size)}")
        if r.chunks:
            text += f"; {_sharing(r.chunks)}"
        out += [text, ""]
    if r.lineage:
        out += ["| Data | Change | Detail |", "|---|---|---|"]
        for c in r.lineage:
            out.append(f"| {_code(c.pointer)} | {c.status} | "
                       f"{_lineage_detail(c.detail).strip(' ()')} |")
        out.append("")
    if r.files:
        out += [f"**Files:** {_files_summary(r.files)}", ""]
        out += _md_names("added", r.files.added, r.new.path)
        out += _md_names("removed", r.files.removed, r.new.path)
        out += _md_names("modified", r.files.modified, r.new.path)
        out.append("")
    if r.tensors:
        out += tensors.render_markdown(r.tensors).rstrip().splitlines() + [""]
    if r.table:
        out += tables.render_markdown(r.table).rstrip().splitlines() + [""]
    for name, t in r.tables.items():
        out += [_code(f"{r.new.path}/{name}"), ""]
        out += tables.render_markdown(t).rstrip().splitlines() + [""]
    out += _tensor_files_md(r.new.path, r.tensor_files)
    out += [f"> {n}" for n in r.notes]
    return "\n".join(out).rstrip() + "\n"


# -- diff -----------------------------------------------------------------------------

def _version_change(e: DiffEntry) -> str:
    if e.old_version == e.new_version:
        return e.new_version or ""
    return f"{e.old_version or '-'} → {e.new_version or '-'}"


def _entry_line(e: DiffEntry) -> str:
    name = e.path + ("/" if e.kind == "dir" else "")
    head = f"{e.status}: {name}"
    if e.status == "renamed":
        head += f" (from {e.old_path})"
    parts = [f"size {_size_change(e.old_size, e.new_size)}"]
    if e.old_digest and e.new_digest and e.old_digest != e.new_digest:
        parts.append(f"xxh128 {e.old_digest[:12]} -> {e.new_digest[:12]}")
    if e.new_bytes is not None:
        parts.append(f"{human_bytes(e.new_bytes)} new")
    if e.old_version != e.new_version:
        parts.append(f"version {e.old_version or '-'} -> {e.new_version or '-'}")
    return f"{head}  ({', '.join(parts)})"


def diff_text(r: DiffResult) -> str:
    if not r.entries:
        return f"No tracked data changed between {r.old} and {r.new} ({r.unchanged} unchanged)."
    lines = [f"{len(r.entries)} changed between {r.old} and {r.new} ({r.unchanged} unchanged)"]
    for e in r.entries:
        lines.append(_entry_line(e))
        if e.files:
            lines.append(f"  files: {_files_summary(e.files)}")
            lines += _names("added", e.files.added, e.path, "  +")
            lines += _names("removed", e.files.removed, e.path, "  -")
            lines += _names("modified", e.files.modified, e.path, "  ~")
        if e.meta:
            for m in e.meta.metrics:
                if m.status != "unchanged":
                    verdict = "" if m.improved is None else \
                        " better" if m.improved else " worse"
                    lines.append(f"  metric {m.name}: {metacmp.fmt_value(m.old)} -> "
                                 f"{metacmp.fmt_value(m.new)} {m.arrow}{verdict}".rstrip())
            for p in e.meta.params:
                lines.append(f"  param {p.name}: {metacmp.fmt_value(p.old)} -> "
                             f"{metacmp.fmt_value(p.new)}")
        if e.tensors:
            lines += _indent(tensors.render_text(e.tensors))
        if e.table:
            lines += _indent(tables.render_text(e.table), "    ")
        for name, t in e.tables.items():
            lines.append(f"  table {e.path}/{name}:")
            lines += _indent(tables.render_text(t), "    ")
        lines += _indent("\n".join(_tensor_files_text(e.path, e.tensor_files)))
    lines += regression_lines(r.regressions)
    lines += [f"note: {n}" for n in r.notes]
    return "\n".join(lines)


def _md(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def diff_markdown(r: DiffResult) -> str:
    """The pull-request comment."""
    out = [COMMENT_MARKER, f"### Data and model changes: {_code(r.old)} → {_code(r.new)}", ""]
    if not r.entries:
        out += [f"No tracked data changed ({plural(r.unchanged, 'artifact')} unchanged).", ""]
        return "\n".join(out)
    out += _regressions_md(r.regressions, r.rules)
    out += ["| Artifact | Change | Size | New bytes | Version |",
            "|---|---|---:|---:|---|"]
    for e in r.entries:
        name = _code(e.path + ("/" if e.kind == "dir" else ""))
        change = e.status
        if e.status == "renamed":
            change += f" from {_code(e.old_path or '')}"
        if e.files and e.files.count:
            change += f" ({_files_summary(e.files)})"
        new_bytes = human_bytes(e.new_bytes) if e.new_bytes is not None else ""
        out.append(f"| {name} | {_md(change)} | {_size_change(e.old_size, e.new_size)} | "
                   f"{new_bytes} | {_md(_version_change(e))} |")
    out += [""]
    if r.unchanged:
        out += [f"{plural(r.unchanged, 'other tracked artifact')} unchanged.", ""]
    for e in r.entries:
        body: list[str] = []
        if e.files and e.files.count:
            body += _md_names("added", e.files.added, e.path)
            body += _md_names("removed", e.files.removed, e.path)
            body += _md_names("modified", e.files.modified, e.path)
            body.append("")
        if e.meta and (e.meta.has_changes or e.old_version != e.new_version):
            body += metacmp.render_markdown(e.meta).rstrip().splitlines() + [""]
        if e.tensors:
            body += tensors.render_markdown(e.tensors).rstrip().splitlines() + [""]
        if e.table:
            body += tables.render_markdown(e.table).rstrip().splitlines() + [""]
        for name, t in e.tables.items():
            body += [_code(f"{e.path}/{name}"), ""]
            body += tables.render_markdown(t).rstrip().splitlines() + [""]
        body += _tensor_files_md(e.path, e.tensor_files)
        if body:
            name = _code(e.path + ("/" if e.kind == "dir" else ""))
            out += [f"<details><summary>{name}: {e.status}</summary>",
                    "", *body, "</details>", ""]
    out += [f"> {_md(n)}" for n in r.notes]
    return "\n".join(out).rstrip() + "\n"


def _html(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
