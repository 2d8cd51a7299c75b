"""cas diff: every tracked artifact that differs between two revisions (or a revision and
the working tree), as a reviewer wants to see it on a pull request."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import PointerError
from ..gitutil import pointer_blobs, resolve_rev
from ..pointer import SUFFIX, Pointer
from ..review.compare import compare_meta
from ..review.content import (
    RowOptions,
    chunk_sharing,
    file_changes,
    format_details,
)
from ..review.history import cat_files, has_commits, parse_blob
from ..review.results import DiffEntry, DiffResult
from ..review.rules import ReviewRules, check
from ..review.settings import TableKeys, higher_is_better_hints, review_rules

if TYPE_CHECKING:
    from ..project import Project

WORKTREE = "workspace"


def pointers_at(repo: Project, commit: str, notes: list[str]) -> dict[str, Pointer]:
    """Every pointer of a commit, by repo-relative pointer path; unreadable ones become notes
    (a broken pointer in an old commit must not hide every other change)."""
    paths = sorted(pointer_blobs(repo.root, commit))
    blobs = cat_files(repo.root, [f"{commit}:{p}" for p in paths])
    out = {}
    for p in paths:
        data = blobs.get(f"{commit}:{p}")
        if data is None:
            continue
        try:
            out[p] = parse_blob(data, f"{p} at {commit[:10]}")
        except PointerError as exc:
            notes.append(str(exc))
    return out


def pointers_in_worktree(repo: Project) -> dict[str, Pointer]:
    """Every pointer of the working tree; a conflicted or malformed one stops the diff with
    its one-line message, as it does every command."""
    return {repo.rel(p): repo.load_pointer(p) for p in repo.pointer_files()}


def _version(p: Pointer | None) -> str | None:
    v = (p.meta or {}).get("version") if p is not None else None
    return None if v is None else str(v)


def diff(repo: Project, rev_a: str | None = None, rev_b: str | None = None, *,
         key: str | None = None) -> DiffResult:
    """Artifacts that differ from ``rev_a`` (default HEAD) to ``rev_b`` (default the working
    tree), sorted by path, with the review rules each one breaks. ``key`` ("id" or "a,b")
    matches table rows (else ``review.tables.<path>.key``, else rows match by content)."""
    rules = review_rules(repo)  # first: a malformed rule fails before any work
    rows = RowOptions(keys=TableKeys(repo, key))
    notes: list[str] = []
    name_a = rev_a or "HEAD"
    commit_a: str | None = None
    if rev_a is None and not has_commits(repo.root):
        old: dict[str, Pointer] = {}  # a repository without commits: everything is added
        name_a = "(no commits)"
    else:
        commit_a = resolve_rev(repo.root, name_a)
        old = pointers_at(repo, commit_a, notes)
    if rev_b is None:
        commit_b = None
        new = pointers_in_worktree(repo)
    else:
        commit_b = resolve_rev(repo.root, rev_b)
        new = pointers_at(repo, commit_b, notes)
    result = DiffResult(old=name_a, new=rev_b or WORKTREE, old_commit=commit_a,
                        new_commit=commit_b, notes=notes, rules=bool(rules))

    removed = {p: old[p] for p in old.keys() - new.keys()}
    added = {p: new[p] for p in new.keys() - old.keys()}
    # The same content under a new name is a rename, not a removal plus an addition.
    renames: dict[str, str] = {}
    by_digest = {(ptr.kind, ptr.digest): p for p, ptr in sorted(removed.items())}
    for p, ptr in sorted(added.items()):
        src = by_digest.pop((ptr.kind, ptr.digest), None)
        if src is not None:
            renames[p] = src
    for p in sorted(old.keys() | new.keys()):
        if p in renames.values():
            continue
        a = old.get(renames.get(p, p))
        b = new.get(p)
        if a is not None and b is not None and a.to_dict() == b.to_dict():
            result.unchanged += 1
            continue
        result.entries.append(_entry(repo, p, a, b, renames.get(p), notes, rules, rows))
    result.entries.sort(key=lambda e: e.path)
    return result


def _entry(repo: Project, rel: str, a: Pointer | None, b: Pointer | None, renamed_from: str | None,
           notes: list[str], rules: ReviewRules, rows: RowOptions) -> DiffEntry:
    ref = b if b is not None else a
    assert ref is not None
    status = ("renamed" if renamed_from else "added" if a is None else "removed" if b is None
              else "modified")
    e = DiffEntry(path=rel[:-len(SUFFIX)], pointer=rel, status=status, kind=ref.kind,
                  old_path=renamed_from[:-len(SUFFIX)] if renamed_from else None,
                  old_size=a.size if a else None, new_size=b.size if b else None,
                  old_digest=a.digest.hex() if a else None,
                  new_digest=b.digest.hex() if b else None,
                  old_version=_version(a), new_version=_version(b))
    if (a is not None and a.meta) or (b is not None and b.meta):
        e.meta = compare_meta(a.meta if a else None, b.meta if b else None,
                              higher_is_better_hints=higher_is_better_hints(repo))
        if a is not None and b is not None:
            e.regressions = check(e.path, e.meta, rules)
    store = repo.cache
    if ref.kind == "dir" or (a is not None and a.kind == "dir"):
        e.files = file_changes(store, a, b)
    if a is not None and b is not None and a.digest != b.digest:
        sharing = chunk_sharing(store, a, b)
        e.new_bytes = sharing.new_bytes if sharing else None
        details = format_details(store, a, b, e.files, notes, e.path, repo.reporter, rows)
        e.tensors, e.table, e.tables = details.tensors, details.table, details.tables
        e.tensor_files = details.tensor_files
    return e
