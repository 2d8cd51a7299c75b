"""Reading pointer files out of Git history without checking anything out."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import CasError
from .pointer import SUFFIX


def git(root: Path, *args: str, check: bool = True, input: bytes | None = None) -> bytes:
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                              input=input, timeout=600)
    except FileNotFoundError:
        raise CasError("git is not installed; install it to use Git revisions") from None
    if check and proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise CasError(f"git {' '.join(args[:2])} failed: {msg[-1] if msg else 'no output'}")
    return proc.stdout


def git_ok(root: Path, *args: str) -> bool:
    """Whether git succeeds: for the commands that answer by exit code alone
    (check-ignore, check-ref-format, merge-base --is-ancestor, ls-files --error-unmatch)."""
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                              timeout=600).returncode == 0
    except FileNotFoundError:
        raise CasError("git is not installed; install it to use Git revisions") from None


def is_git_repo(root: Path) -> bool:
    try:
        git(root, "rev-parse", "--git-dir")
        return True
    except CasError:
        return False


def resolve_rev(root: Path, rev: str) -> str:
    if rev.startswith("-"):
        raise CasError(f"{rev!r} is not a Git revision")
    out = git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    if not out.strip():
        raise CasError(f"unknown Git revision {rev!r}; check 'git log' or 'git branch -a'")
    return out.decode().strip()


@dataclass(frozen=True)
class RevSelection:
    """Which Git revisions count besides the working tree: ``revs`` by name, every branch
    (remote-tracking ones too), every tag, or every commit. One value, built once (the
    CLI's ``--rev/--all-branches/--all-tags/--all-commits``), handed down to whatever reads
    pointers out of history (gc, fsck, push, fetch)."""

    revs: tuple[str, ...] = ()
    all_branches: bool = False
    all_tags: bool = False
    all_commits: bool = False

    def __post_init__(self) -> None:
        # A list or a generator given for revs would make the value unhashable or
        # consumed once; the selection is a plain value.
        object.__setattr__(self, "revs", tuple(self.revs))

    def __bool__(self) -> bool:
        """Whether anything beyond the working tree is selected."""
        return bool(self.revs) or self.all_branches or self.all_tags or self.all_commits


NO_REVISIONS = RevSelection()
"""No revision: only the working tree's pointers."""
EVERY_REF = RevSelection(all_branches=True, all_tags=True)
"""Every branch and tag this clone knows (what fsck counts as needed)."""


def revisions(root: Path, select: RevSelection) -> list[str]:
    """Commit ids of the revisions ``select`` names."""
    out: list[str] = [resolve_rev(root, r) for r in select.revs]
    if select.all_commits:
        out += git(root, "rev-list", "--all").decode().split()
    else:
        if select.all_branches:
            # Remote-tracking branches too: a teammate's pushed, unmerged branch is known
            # here only as refs/remotes/<remote>/<branch>, and its data is live.
            out += git(root, "for-each-ref", "--format=%(objectname)", "refs/heads",
                       "refs/remotes").decode().split()
        if select.all_tags:
            out += git(root, "for-each-ref", "--format=%(objectname)", "refs/tags").decode() \
                .split()
    return list(dict.fromkeys(out))


def head_info(root: Path) -> tuple[str | None, str | None]:
    """(commit, branch) of HEAD, each None when there is none (not a Git repository, no
    commit yet, a detached HEAD). One git call: it runs on every push."""
    try:
        out = git(root, "rev-parse", "HEAD", "--symbolic-full-name", "HEAD", check=False)
    except CasError:
        return None, None  # git is not installed: a push needs no Git
    lines = out.decode("utf-8", "replace").split()
    if len(lines) != 2:
        return None, None
    branch = lines[1].removeprefix("refs/heads/") if lines[1].startswith("refs/heads/") \
        else None
    return lines[0], branch


def pointer_blobs(root: Path, commit: str) -> dict[str, str]:
    """{repo-relative pointer path: blob id} for every pointer file in ``commit``."""
    raw = git(root, "ls-tree", "-r", "-z", "--full-tree", commit)
    out: dict[str, str] = {}
    for rec in raw.split(b"\0"):
        if not rec:
            continue
        meta, _, path = rec.partition(b"\t")
        parts = meta.split()
        name = path.decode("utf-8", "surrogateescape")
        if len(parts) == 3 and parts[1] == b"blob" and name.endswith(SUFFIX) \
                and not name.startswith(".cas/"):
            out[name] = parts[2].decode()
    return out


def cat_file_batch(root: Path, specs: list[str]) -> dict[str, tuple[bytes, bytes] | None]:
    """(type, content) of each object ``specs`` names (an object id or ``rev:path``), in one
    'git cat-file --batch' call; None for a spec Git reports missing or ambiguous."""
    if not specs:
        return {}
    raw = git(root, "cat-file", "--batch", input=("\n".join(specs) + "\n").encode())
    out: dict[str, tuple[bytes, bytes] | None] = {}
    pos = 0
    for spec in specs:
        nl = raw.index(b"\n", pos)
        header = raw[pos:nl]
        pos = nl + 1
        # "<spec> missing" repeats the spec, which may hold spaces: match the end.
        if header.endswith((b" missing", b" ambiguous")):
            out[spec] = None
            continue
        _, otype, size = header.rsplit(b" ", 2)
        n = int(size)
        out[spec] = (otype, raw[pos:pos + n])
        pos += n + 1
    return out


def read_blobs(root: Path, blob_ids: Iterable[str]) -> dict[str, bytes]:
    """Contents of many blobs in one 'git cat-file --batch' call (missing ones left out)."""
    found = cat_file_batch(root, list(dict.fromkeys(blob_ids)))
    return {oid: got[1] for oid, got in found.items() if got is not None}
