"""The textconv diff driver: ``git diff`` on a pointer shows a readable summary.

Git runs ``cas textconv FILE`` for each side of a ``*.cas`` diff and diffs the outputs, so
a review shows the human size, digest, version, metrics and the files of a folder (from
the pointer's inline entries, or from the folder's tree when the local cache has it).
Text that is not a valid pointer is shown as it is, so a broken pointer stays visible.
"""

from __future__ import annotations

from itertools import islice
from typing import TYPE_CHECKING, Any

from ..errors import CasError
from ..pointer import Pointer, parse_pointer_text
from ..store.objects import ObjectType
from ..tree import walk
from ..units import human_bytes

if TYPE_CHECKING:
    from ..project import Project

MAX_FILES = 2000  # a diff of a huge folder lists this many files, then a count


def _flat(prefix: str, v: Any, out: list[str]) -> None:
    if isinstance(v, dict):
        for k in sorted(v, key=str):
            _flat(f"{prefix}.{k}" if prefix else str(k), v[k], out)
    else:
        out.append(f"  {prefix}: {v}")


def _files(ptr: Pointer, repo: Project | None) -> list[str] | None:
    if ptr.entries is not None:
        rows = []
        for e in ptr.entries:
            path = e.get("path", "?")
            if "size" in e:
                rows.append(f"  {path}  {human_bytes(int(e['size']))}  {e.get('xxh128', '')}")
            else:
                rows.append(f"  {path}")
        return rows
    if repo is None:
        return None
    # start-up: the store's trees bring numpy (~100 modules); Git runs this for every
    # pointer it shows, and only folder pointers need them
    from ..store.trees import tree_loader

    try:
        loc = repo.cache.locate(ptr.digest)
        if loc is None or loc.type != ObjectType.TREE:
            return None
        # Only the first rows are read: the trees of the folders they are in.
        entries = list(islice(walk(tree_loader(repo.cache), ptr.digest), MAX_FILES))
    except CasError:
        return None
    rows = [f"  {e.path}/" if e.kind == "d" else
            f"  {e.path}  {human_bytes(e.size)}  {e.digest.hex() if e.digest else ''}"
            for e in entries]
    total = ptr.files if ptr.files is not None else len(entries)
    if total > len(entries):
        rows.append(f"  ... and {total - len(entries)} more")
    return rows


def summarize(text: str, name: str = "pointer", repo: Project | None = None) -> str:
    """The readable form of pointer ``text`` (or ``text`` itself if it is not a pointer)."""
    try:
        ptr = parse_pointer_text(text, name)
    except CasError:
        return text
    lines = [f"path: {ptr.path}",
             f"kind: {ptr.kind}",
             f"size: {human_bytes(ptr.size)} ({ptr.size} bytes)",
             f"xxh128: {ptr.digest.hex()}"]
    if ptr.sha256:
        lines.append(f"sha256: {ptr.sha256}")
    if ptr.kind == "file" and ptr.chunks is not None:
        lines.append(f"chunks: {ptr.chunks}")
    if ptr.executable:
        lines.append("executable: yes")
    meta = dict(ptr.meta or {})
    if "version" in meta:
        lines.append(f"version: {meta.pop('version')}")
    for key in ("metrics", "params", "data", "env"):
        if key in meta:
            lines.append(f"{key}:")
            _flat("", meta.pop(key), lines)
    if meta:
        lines.append("meta:")
        _flat("", meta, lines)
    if ptr.source:
        lines.append("source:")
        _flat("", ptr.source, lines)
    if ptr.kind == "dir":
        lines.append(f"files: {ptr.files if ptr.files is not None else '?'}")
        rows = _files(ptr, repo)
        if rows:
            lines.extend(rows)
    return "\n".join(lines) + "\n"
