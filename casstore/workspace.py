"""Finding pointers and scanning tracked directories in the working tree."""

from __future__ import annotations

import os
import stat as statmod
import subprocess
from dataclasses import dataclass
from pathlib import Path

import xxhash

from .atomic import TMP_SUFFIX, is_tmp_name
from .errors import PathError
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


def scan_dir(root: Path, display: str) -> tuple[list[ScannedFile], list[str]]:
    """Regular files and empty folders below ``root``; symlinks and specials are refused.

    Links are refused rather than followed: following one could pull data from outside the
    repository into the store, and restoring one could write outside the target folder.
    """
    files: list[ScannedFile] = []
    empty_dirs: list[str] = []

    def walk(d: str | Path, rel: str) -> None:
        try:
            it = sorted(os.scandir(d), key=lambda e: e.name)
        except PermissionError:
            raise PathError(f"cannot read folder {display}/{rel}; check its permissions") \
                from None
        # A killed checkout's temp file is not data (the next checkout removes it).
        it = [e for e in it if not (e.name.endswith(TMP_SUFFIX) and is_tmp_name(e.name)
                                    and e.is_file(follow_symlinks=False))]
        if not it and rel:
            empty_dirs.append(rel)
        for e in it:
            r = f"{rel}/{e.name}" if rel else e.name
            if "\n" in e.name or "\r" in e.name:
                raise PathError(f"{display}/{r!r} has a newline in its name; rename it")
            # Regular files first: they are nearly every entry, and the no-follow checks
            # already tell a link from a file or folder.
            if e.is_file(follow_symlinks=False):
                files.append(ScannedFile(r, e.path, e.stat(follow_symlinks=False)))
            elif e.is_dir(follow_symlinks=False):
                walk(e.path, r)
            elif e.is_symlink():
                raise PathError(f"{display}/{r} is a symbolic link; casstore tracks regular "
                                "files only: replace the link with the file or remove it")
            else:
                raise PathError(f"{display}/{r} is not a regular file (device, socket or "
                                "pipe); remove it from the tracked folder")

    walk(root, "")
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


def find_pointers(root: Path) -> list[Path]:
    """All pointer files in the working tree, sorted, without entering tracked data."""
    if (root / ".git").exists():
        try:
            out = subprocess.run(
                ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others",
                 "--exclude-standard", "--", f"*{SUFFIX}"],
                capture_output=True, check=True, timeout=120).stdout
            found = {root / p for p in out.decode("utf-8", "surrogateescape").split("\0") if p}
            return sorted(p for p in found if p.is_file() and ".cas" not in p.relative_to(
                root).parts[:-1])
        except (OSError, subprocess.SubprocessError):
            pass
    result: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        names = set(filenames)
        # Do not descend into tracked folders (their pointer sits beside them).
        dirnames[:] = sorted(n for n in dirnames if n not in SKIP_DIRS
                             and f"{n}{SUFFIX}" not in names)
        result.extend(d / n for n in sorted(filenames) if n.endswith(SUFFIX)
                      and n != SUFFIX)
    return sorted(result)
