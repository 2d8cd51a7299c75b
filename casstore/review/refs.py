"""Naming one state of a pointer: ``PATH``, ``PATH@VERSION`` or ``PATH@GITREV``."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CasError, PathError, UsageError
from ..gitutil import git, git_ok, resolve_rev
from ..pointer import SUFFIX, read_pointer
from .history import PointerState, cat_files, has_commits, parse_blob, pointer_history

if TYPE_CHECKING:
    from ..project import Project


def pointer_rel_for(repo: Project, typed: str) -> str:
    """Repo-relative pointer path for a data or pointer path typed by the user."""
    if not typed:
        raise UsageError("empty path; name a tracked file, e.g. model.safetensors")
    rel = repo.rel(Path(os.path.abspath(typed)))
    if rel == ".":
        raise PathError("name a tracked file or folder, not the repository itself")
    return rel if rel.endswith(SUFFIX) else rel + SUFFIX


def _same_version(recorded: str, wanted: str) -> bool:
    a, b = recorded.strip(), wanted.strip()
    if a == b or a.lstrip("vV") == b.lstrip("vV"):
        return True
    # Git-hash versions may be typed longer or shorter than recorded.
    hexa = re.fullmatch(r"[0-9a-f]{7,40}", a.lower()) and re.fullmatch(r"[0-9a-f]{7,40}",
                                                                       b.lower())
    return bool(hexa) and (a.lower().startswith(b.lower()) or b.lower().startswith(a.lower()))


def _is_ancestor(root: Path, older: str, newer: str) -> bool:
    return git_ok(root, "merge-base", "--is-ancestor", older, newer)


def resolve(repo: Project, spec: str) -> PointerState:
    """The pointer state ``spec`` names.

    ``PATH`` is the working tree's pointer; ``PATH@X`` is the newest state in the pointer's
    history (working tree included) whose recorded version is X, or else the pointer at Git
    revision X (a branch, tag, commit, ``HEAD~2``...). A path containing '@' that exists as
    it is typed is taken as a path.
    """
    typed, at, label = spec, "", ""
    if "@" in spec and not os.path.lexists(spec) \
            and not os.path.lexists(spec + SUFFIX):
        typed, _, label = spec.rpartition("@")
        at = "@"
    rel = pointer_rel_for(repo, typed)
    if not at:
        work = repo.root / rel
        if not work.is_file():
            raise PathError(f"{typed} is not tracked (no {rel}); use PATH@VERSION or "
                            "PATH@GITREV for a past state")
        repo.load_pointer(work)  # the same checks as every command (links, conflicts)
        return PointerState(rel, None, None, read_pointer(work, rel))
    if not label:
        raise UsageError(f"{spec}: nothing after '@'; write PATH@VERSION or PATH@GITREV")
    history = pointer_history(repo.root, rel)
    for st in history:
        if st.version is not None and _same_version(st.version, label):
            return st
    alias = alias_commit(repo.root, rel[:-len(SUFFIX)], label)
    if alias is not None:
        data = cat_files(repo.root, [f"{alias}:{rel}"]).get(f"{alias}:{rel}")
        if data is not None:
            return PointerState(rel, alias, _date(repo.root, alias),
                                parse_blob(data, f"{rel} at {typed}@{label}"))
    if not has_commits(repo.root):
        raise CasError(f"{typed} has no version {label} (and the Git repository has no "
                       f"commits); see 'cas log {typed}'")
    try:
        commit = resolve_rev(repo.root, label)
    except CasError:
        raise CasError(f"{typed} has no version {label} and {label!r} is not a Git revision; "
                       f"see 'cas log {typed}'") from None
    data = cat_files(repo.root, [f"{commit}:{rel}"]).get(f"{commit}:{rel}")
    if data is not None:
        return PointerState(rel, commit, _date(repo.root, commit),
                            parse_blob(data, f"{rel} at {label}"))
    # Renamed since: the newest committed state that is in the revision's history.
    for st in history:
        if st.commit and _is_ancestor(repo.root, st.commit, commit):
            return PointerState(st.path, commit, _date(repo.root, commit), st.pointer)
    raise CasError(f"{typed} did not exist at {label}; see 'cas log {typed}'")


def alias_tag(data_rel: str, name: str) -> str:
    """The Git tag of an alias (or a version tag): ``PATH@NAME``."""
    return f"{data_rel}@{name}"


def alias_commit(root: Path, data_rel: str, name: str) -> str | None:
    """The commit the tag ``PATH@NAME`` points at, or None."""
    if not has_commits(root):
        return None
    out = git(root, "rev-parse", "--verify", "--quiet",
              f"refs/tags/{alias_tag(data_rel, name)}^{{commit}}", check=False)
    return out.decode().strip() or None


def aliases_of(root: Path, data_rel: str) -> dict[str, str]:
    """{name: commit} of every tag ``PATH@NAME`` (aliases and version tags alike)."""
    if not has_commits(root):
        return {}
    prefix = f"refs/tags/{data_rel}@"
    raw = git(root, "for-each-ref", "--format=%(refname)%00%(*objectname)%00%(objectname)",
              prefix + "*").decode("utf-8", "surrogateescape")
    out = {}
    for line in raw.splitlines():
        ref, peeled, obj = line.split("\0")
        if ref.startswith(prefix):
            out[ref[len(prefix):]] = peeled or obj
    return out


def _date(root: Path, commit: str) -> str:
    return git(root, "show", "-s", "--format=%cI", commit).decode().strip()
