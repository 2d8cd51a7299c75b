"""A pointer's states along Git history (following renames), plus the working tree's."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CasError, PointerError
from ..gitutil import git, is_git_repo
from ..pointer import MAX_POINTER_BYTES, Pointer, parse_pointer_text, read_pointer


@dataclass(frozen=True)
class PointerState:
    """One pointer as it was in one commit (``commit`` None: as it is in the working tree)."""

    path: str  # repo-relative pointer path at that commit
    commit: str | None
    date: str | None  # committer date, ISO 8601, from Git (pointers hold no timestamps)
    pointer: Pointer

    @property
    def meta(self) -> dict[str, Any]:
        return self.pointer.meta or {}

    @property
    def version(self) -> str | None:
        v = self.meta.get("version")
        return None if v is None else str(v)

    @property
    def where(self) -> str:
        """Short name of the commit, or 'workspace'."""
        return self.commit[:10] if self.commit else "workspace"


def has_commits(root: Path) -> bool:
    if not is_git_repo(root):
        return False
    out = git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False)
    return bool(out.strip())


def _log(root: Path, pointer_rel: str, rev: str) -> list[tuple[str, str, str]]:
    """(commit, date, path at that commit) for every commit of ``rev`` touching the pointer,
    newest first. Renames are followed, so older entries may carry older names."""
    raw = git(root, "-c", "core.quotepath=off", "log", "--follow", "--format=%x1e%H %cI",
              "--name-only", rev, "--", pointer_rel).decode("utf-8", "surrogateescape")
    out: list[tuple[str, str, str]] = []
    current = pointer_rel
    for rec in raw.split("\x1e"):
        lines = [ln for ln in rec.splitlines() if ln.strip()]
        if not lines:
            continue
        commit, _, date = lines[0].partition(" ")
        # A merge lists no names; it keeps the name its newer neighbour had.
        if len(lines) > 1:
            current = lines[-1]
        out.append((commit, date, current))
    return out


def cat_files(root: Path, specs: list[str]) -> dict[str, bytes | None]:
    """Contents of ``rev:path`` specs in one 'git cat-file --batch' call (None: absent)."""
    if not specs:
        return {}
    proc = subprocess.run(["git", "-C", str(root), "cat-file", "--batch"],
                          input=("\n".join(specs) + "\n").encode(), capture_output=True,
                          timeout=600)
    if proc.returncode != 0:
        raise CasError("git cat-file failed: "
                       + proc.stderr.decode("utf-8", "replace").strip()[:200])
    raw = proc.stdout
    out: dict[str, bytes | None] = {}
    pos = 0
    for spec in specs:
        nl = raw.index(b"\n", pos)
        header = raw[pos:nl]
        pos = nl + 1
        if header.endswith(b" missing") or header.endswith(b" ambiguous"):
            out[spec] = None
            continue
        parts = header.rsplit(b" ", 2)
        size = int(parts[2])
        out[spec] = raw[pos:pos + size] if parts[1] == b"blob" else None
        pos += size + 1
    return out


def parse_blob(data: bytes, name: str) -> Pointer:
    """A pointer from bytes found in Git (untrusted, like any pointer)."""
    if len(data) > MAX_POINTER_BYTES:
        raise PointerError(f"{name} is larger than 1 MiB; pointer files are small YAML files")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PointerError(f"{name} is not UTF-8 text") from None
    return parse_pointer_text(text, name)


def pointer_history(root: Path, pointer_rel: str, *, rev: str = "HEAD",
                    workspace: bool = True, skipped: list[str] | None = None
                    ) -> list[PointerState]:
    """The pointer's states, newest first: the working tree's (when ``workspace`` and the
    file exists; a conflicted or malformed working pointer raises PointerError), then one per
    commit of ``rev`` that changed it. Commits that deleted it are left out; committed
    pointers that cannot be parsed are left out and described in ``skipped``."""
    out: list[PointerState] = []
    work = root / pointer_rel
    if workspace and work.is_file():
        out.append(PointerState(pointer_rel, None, None, read_pointer(work, pointer_rel)))
    if not has_commits(root):
        return out
    commits = _log(root, pointer_rel, rev)
    blobs = cat_files(root, [f"{c}:{p}" for c, _, p in commits])
    for commit, date, path in commits:
        data = blobs.get(f"{commit}:{path}")
        if data is None:
            continue  # the pointer was deleted in this commit
        try:
            ptr = parse_blob(data, f"{path} at {commit[:10]}")
        except PointerError as exc:
            if skipped is not None:
                skipped.append(str(exc))
            continue
        out.append(PointerState(path, commit, date, ptr))
    return out
