"""Finding pointers and scanning tracked directories in the working tree."""

from __future__ import annotations

import os
import stat as statmod
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import xxhash

from .errors import PathError
from .ignore import IgnoreRules
from .pointer import SUFFIX

SKIP_DIRS = {".git", ".cas"}


@dataclass(frozen=True)
class ScannedFile:
    rel: str  # '/'-separated, relative to the scanned directory
    path: str  # a plain string: a Path per file cost a third of 'cas status' on 20,000 files
    st: os.stat_result

    @property
    def executable(self) -> bool:
        return bool(self.st.st_mode & statmod.S_IXUSR)


def check_name(name: str, shown: str) -> None:
    """Refuse a name casstore could record but not restore faithfully, with the reason.

    Trees and pointers are UTF-8 text with one entry per line, and a backslash is a folder
    separator on Windows (the tree format refuses it), so such names are refused when the
    data is added rather than discovered when it cannot be checked out.
    """
    if name.isascii():
        if "\n" in name or "\r" in name:
            raise PathError(f"{shown!r} has a newline in its name; rename it (casstore's "
                            "pointers, trees and .gitignore lines are line-based)")
        if "\\" in name:
            raise PathError(f"{shown} has a backslash in its name, which casstore does not "
                            "record (Windows reads it as a folder separator); rename it")
        return
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        # os.scandir hands undecodable bytes over as surrogates (PEP 383).
        raw = os.fsencode(shown)
        raise PathError(f"{raw!r} is not a valid UTF-8 name; casstore records names as "
                        "UTF-8 text: rename it (e.g. with convmv)") from None
    check_name(name.encode("ascii", "replace").decode(), shown)


def scan_dir(root: Path, display: str, *, rules: IgnoreRules | None = None,
             follow_symlinks: bool = False,
             warn: Callable[[str], None] | None = None) -> tuple[list[ScannedFile], list[str]]:
    """Regular files and empty folders below ``root`` (``display`` is its root-relative
    path, which ``.casignore`` patterns in ``rules`` are matched against).

    Symbolic links are skipped (``warn`` is told once per link) rather than followed:
    following one could pull data from outside the repository into the store, and
    restoring one could write outside the target folder; failing the whole add over one
    stray link (a notebook's shortcut, a venv's python) helped nobody. With
    ``follow_symlinks`` a link is read as what it points to (a file's content, a folder's
    files), each real folder once, so a link cycle ends. Devices, sockets and pipes are
    refused. The walk keeps its own stack: any depth the file system allows (thousands of
    nested folders) is scanned, where recursion stopped at Python's limit. casstore's own
    temp files never live in the working tree (see ``casstore.atomic``), so only
    ``.casignore`` skips entries by name.
    """
    files: list[ScannedFile] = []
    empty_dirs: list[str] = []
    use_rules = rules if rules else None
    seen_dirs: set[tuple[int, int]] = set()

    def listing(d: str | Path, rel: str) -> list[os.DirEntry[str]]:
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except PermissionError:
            raise PathError(f"cannot read folder {display}/{rel}; check its permissions") \
                from None
        if use_rules is None:
            return entries
        base = f"{display}/{rel}/" if rel else f"{display}/"
        return [e for e in entries
                if not use_rules.matches(base + e.name,
                                         is_dir=e.is_dir(follow_symlinks=follow_symlinks))]

    if follow_symlinks:
        st0 = os.stat(root)
        seen_dirs.add((st0.st_dev, st0.st_ino))
    # Depth-first in name order, the order recursion gave (folder fingerprints depend on it).
    stack: list[tuple[str, Iterator[os.DirEntry[str]]]] = []
    first = listing(root, "")
    stack.append(("", iter(first)))
    while stack:
        rel, it = stack[-1]
        e = next(it, None)
        if e is None:
            stack.pop()
            continue
        r = f"{rel}/{e.name}" if rel else e.name
        check_name(e.name, f"{display}/{r}")
        # Regular files first: they are nearly every entry, and the no-follow checks
        # already tell a link from a file or folder.
        if e.is_file(follow_symlinks=False):
            files.append(ScannedFile(r, e.path, e.stat(follow_symlinks=False)))
        elif e.is_dir(follow_symlinks=False):
            inner = listing(e.path, r)
            if not inner:
                empty_dirs.append(r)
            stack.append((r, iter(inner)))
        elif e.is_symlink():
            if not follow_symlinks:
                if warn is not None:
                    warn(f"skipped {display}/{r}: a symbolic link (add with "
                         "--follow-symlinks to store what it points to)")
                continue
            try:
                st = os.stat(e.path)
            except OSError:
                if warn is not None:
                    warn(f"skipped {display}/{r}: a symbolic link to nothing")
                continue
            if statmod.S_ISREG(st.st_mode):
                files.append(ScannedFile(r, e.path, st))
            elif statmod.S_ISDIR(st.st_mode):
                if (st.st_dev, st.st_ino) in seen_dirs:
                    if warn is not None:
                        warn(f"skipped {display}/{r}: a link back to a folder already read")
                    continue
                seen_dirs.add((st.st_dev, st.st_ino))
                inner = listing(e.path, r)
                if not inner:
                    empty_dirs.append(r)
                stack.append((r, iter(inner)))
            else:
                raise PathError(f"{display}/{r} links to something that is not a regular "
                                "file or folder; remove it from the tracked folder")
        else:
            raise PathError(f"{display}/{r} is not a regular file (device, socket or "
                            "pipe); remove it from the tracked folder")
    return files, empty_dirs


def folder_fingerprint(files: list[ScannedFile], empty_dirs: list[str]) -> bytes:
    """XXH3-128 over every name, exec bit and stat key (inode, size, mtime, ctime) of a scan.

    Equal fingerprints mean no file was touched since, with the same guarantee as the
    per-file stat cache; the names are '/'-joined and newline-free (scan_dir checks).
    """
    lines = [f"{f.rel}\0{f.st.st_ino} {f.st.st_size} {f.st.st_mtime_ns} {f.st.st_ctime_ns} "
             f"{f.st.st_mode & 0o100}" for f in files]
    lines.extend(f"{d}/" for d in empty_dirs)
    return xxhash.xxh3_128_digest("\n".join(lines).encode("utf-8", "surrogateescape"))


def find_pointers(root: Path, *, repo_root: Path | None = None) -> list[Path]:
    """All pointer files below ``root``, sorted, without entering tracked data.

    Files that ``.casignore`` (at ``repo_root``, default ``root``) matches are not pointers,
    whatever their suffix: ``docs/algebra.cas`` must not break every command.
    """
    top = repo_root or root
    rules = IgnoreRules.load(top)

    def kept(p: Path) -> bool:
        return not rules or not rules.matches(p.relative_to(top).as_posix())

    if (root / ".git").exists():
        try:
            out = subprocess.run(
                ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others",
                 "--exclude-standard", "--", f"*{SUFFIX}"],
                capture_output=True, check=True, timeout=120).stdout
            found = {root / p for p in out.decode("utf-8", "surrogateescape").split("\0") if p}
            return sorted(p for p in found if p.is_file() and ".cas" not in p.relative_to(
                root).parts[:-1] and kept(p))
        except (OSError, subprocess.SubprocessError):
            pass
    result: list[Path] = []
    # Its own stack rather than os.walk, which recurses once per level before Python 3.12
    # (a tree 1,200 folders deep ended in RecursionError).
    todo = [root]
    while todo:
        d = todo.pop()
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        names = {e.name for e in entries}
        for e in entries:
            p = Path(e.path)
            if e.is_dir(follow_symlinks=False):
                # Do not descend into tracked folders (their pointer sits beside them).
                if e.name in SKIP_DIRS or f"{e.name}{SUFFIX}" in names:
                    continue
                if rules and rules.matches(p.relative_to(top).as_posix(), is_dir=True):
                    continue
                todo.append(p)
            elif e.name.endswith(SUFFIX) and e.name != SUFFIX and e.is_file() and kept(p):
                result.append(p)
    return sorted(result)
