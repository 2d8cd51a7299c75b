"""A pointer's states along Git history (following renames), plus the working tree's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import PointerError
from ..gitutil import cat_file_batch, git, is_git_repo
from ..pointer import Pointer, parse_pointer_bytes, read_pointer


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


def _log(root: Path, pointer_rel: str, rev: str) -> list[tuple[str, str, list[str]]]:
    """(commit, date, candidate paths) for every commit of ``rev`` that changed the pointer,
    newest first.

    ``git log --follow`` finds the names the pointer had (renames), but it skips merge
    commits, and a merge that resolved a conflict records a state of its own. So a second
    plain ``git log`` over all those names lists the commits, merges included.
    """
    raw = git(root, "-c", "core.quotepath=off", "log", "--follow", "--format=",
              "--name-only", rev, "--", pointer_rel).decode("utf-8", "surrogateescape")
    names = list(dict.fromkeys([pointer_rel] + [ln for ln in raw.splitlines() if ln.strip()]))
    raw = git(root, "log", "--format=%H %cI", rev, "--", *names).decode()
    out = []
    for line in raw.splitlines():
        commit, _, date = line.partition(" ")
        if commit:
            out.append((commit, date, names))
    return out


def cat_files(root: Path, specs: list[str]) -> dict[str, bytes | None]:
    """Contents of ``rev:path`` specs in one 'git cat-file --batch' call (None: absent, or
    not a file)."""
    return {spec: got[1] if got is not None and got[0] == b"blob" else None
            for spec, got in cat_file_batch(root, specs).items()}


def parse_blob(data: bytes, name: str) -> Pointer:
    """A pointer from bytes found in Git (untrusted, like any pointer)."""
    return parse_pointer_bytes(data, name)


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
    blobs = cat_files(root, [f"{c}:{p}" for c, _, names in commits for p in names])
    for commit, date, names in commits:
        # The newest name that exists in the commit is the pointer's name there.
        path = next((p for p in names if blobs.get(f"{commit}:{p}") is not None), None)
        if path is None:
            continue  # the pointer was deleted in this commit
        data = blobs[f"{commit}:{path}"]
        try:
            ptr = parse_blob(data, f"{path} at {commit[:10]}")
        except PointerError as exc:
            if skipped is not None:
                skipped.append(str(exc))
            continue
        out.append(PointerState(path, commit, date, ptr))
    return out
