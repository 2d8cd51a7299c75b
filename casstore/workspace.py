"""Finding pointers and scanning tracked directories in the working tree."""

from __future__ import annotations

import contextlib
import operator
import os
import stat as statmod
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import xxhash

from .errors import PathError
from .ignore import IgnoreRules
from .pointer import SUFFIX

SKIP_DIRS = {".git", ".cas"}
_by_name = operator.attrgetter("name")
# A file's stat key in a folder fingerprint: inode, size, mtime, ctime (ns), exec bit.
_STAT_KEY = struct.Struct("<QQqqI")
# Where os.scandir takes an open folder (POSIX), its entries are stat-ed relative to it.
_SCANDIR_FD = os.scandir in os.supports_fd
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


@dataclass(slots=True)
class Folder:
    """One folder of a tracked folder as it is on disk: its regular files (name, path,
    stat) and its subfolders (name, path), each sorted by name. ``rel`` is the folder's
    path below the tracked folder ('' for the tracked folder itself)."""

    rel: str
    path: str
    files: list[tuple[str, str, os.stat_result]]
    dirs: list[tuple[str, str]]
    fp: bytes | None = None  # the fingerprint, once computed

    def fingerprint(self) -> bytes:
        """XXH3-128 over the names, exec bits and stat keys (inode, size, mtime, ctime) of
        the files and the names of the subfolders: equal fingerprints mean no file here was
        touched since, with the same guarantee as the per-file stat cache."""
        if self.fp is None:
            self.fp = self._fingerprint()
        return self.fp

    def _fingerprint(self) -> bytes:
        pack = _STAT_KEY.pack
        parts = [b"cas-folder 2\n"]
        parts += [n.encode("utf-8", "surrogateescape") + b"\0"
                  + pack(st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                         st.st_mode & 0o100) for n, _, st in self.files]
        parts += [n.encode("utf-8", "surrogateescape") + b"/\0" for n, _ in self.dirs]
        return xxhash.xxh3_128_digest(b"".join(parts))


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


class FolderReader:
    """Reads the folders of one tracked folder, one at a time (``display`` is its
    root-relative path, which ``.casignore`` patterns in ``rules`` are matched against).

    Symbolic links are skipped (``warn`` is told once per link) rather than followed:
    following one could pull data from outside the repository into the store, and
    restoring one could write outside the target folder; failing the whole add over one
    stray link (a notebook's shortcut, a venv's python) helped nobody. With
    ``follow_symlinks`` a link is read as what it points to (a file's content, a folder's
    files), each real folder once, so a link cycle ends. Devices, sockets and pipes are
    refused. Callers walk with their own stack, so any depth the file system allows is
    read. casstore's own temp files never live in the working tree (see
    ``casstore.atomic``), so only ``.casignore`` skips entries by name.
    """

    def __init__(self, root: Path, display: str, *, rules: IgnoreRules | None = None,
                 follow_symlinks: bool = False,
                 warn: Callable[[str], None] | None = None) -> None:
        self.root = root
        self.display = display
        self.rules = rules if rules else None
        self.follow = follow_symlinks
        self.warn = warn
        self.seen_dirs: set[tuple[int, int]] = set()
        if follow_symlinks:
            with contextlib.suppress(OSError):  # checkout reads a folder it is creating
                st0 = os.stat(root)
                self.seen_dirs.add((st0.st_dev, st0.st_ino))

    def _note(self, msg: str) -> None:
        if self.warn is not None:
            self.warn(msg)

    def read(self, path: str, rel: str) -> Folder:
        """The folder at ``path`` (``rel`` below the tracked folder)."""
        display = self.display
        # Stat each file relative to the open folder (fstatat), not by its whole path: the
        # kernel then resolves one name per file, not every folder above it (-15 % of the
        # system time of a status of a million files).
        fd = -1
        try:
            if _SCANDIR_FD:
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | _O_CLOEXEC)
            return self._entries(path, rel, sorted(os.scandir(fd if fd >= 0 else path),
                                                   key=_by_name))
        except PermissionError:
            raise PathError(f"cannot read folder {display}/{rel}; check its permissions") \
                from None
        finally:
            if fd >= 0:
                os.close(fd)

    def _entries(self, path: str, rel: str, entries: list[os.DirEntry[str]]) -> Folder:
        display = self.display
        base = f"{display}/{rel}/" if rel else f"{display}/"
        prefix = path if path.endswith(os.sep) else path + os.sep
        out = Folder(rel, path, [], [])
        names = self.rules.name_sets() if self.rules is not None else None
        if names is not None and any(part in names[0] or part in names[1]
                                     for part in f"{display}/{rel}".split("/")):
            return out  # the folder itself is ignored, as 'matches' would find
        # Names are checked one by one only if the folder has one that may be refused: one
        # test of all of them together costs less than four per name.
        joined = "\0".join([e.name for e in entries])
        suspect = not joined.isascii() or "\n" in joined or "\r" in joined \
            or "\\" in joined
        files = out.files
        for e in entries:
            name = e.name
            if names is not None:
                if name in names[0] or (name in names[1]
                                        and e.is_dir(follow_symlinks=self.follow)):
                    continue
            elif self.rules is not None and self.rules.matches(
                    base + name, is_dir=e.is_dir(follow_symlinks=self.follow)):
                continue
            if suspect and (not name.isascii() or "\n" in name or "\r" in name
                            or "\\" in name):
                check_name(name, base + name)
            # Regular files first: they are nearly every entry, and the no-follow checks
            # already tell a link from a file or folder.
            if e.is_file(follow_symlinks=False):
                files.append((name, prefix + name, e.stat(follow_symlinks=False)))
                continue
            shown = base + name
            if e.is_dir(follow_symlinks=False):
                out.dirs.append((name, prefix + name))
            elif e.is_symlink():
                if not self.follow:
                    self._note(f"skipped {shown}: a symbolic link (add with "
                               "--follow-symlinks to store what it points to)")
                    continue
                try:
                    st = os.stat(prefix + name)
                except OSError:
                    self._note(f"skipped {shown}: a symbolic link to nothing")
                    continue
                if statmod.S_ISREG(st.st_mode):
                    files.append((name, prefix + name, st))
                elif statmod.S_ISDIR(st.st_mode):
                    if (st.st_dev, st.st_ino) in self.seen_dirs:
                        self._note(f"skipped {shown}: a link back to a folder already read")
                        continue
                    self.seen_dirs.add((st.st_dev, st.st_ino))
                    out.dirs.append((name, prefix + name))
                else:
                    raise PathError(f"{shown} links to something that is not a regular "
                                    "file or folder; remove it from the tracked folder")
            else:
                raise PathError(f"{shown} is not a regular file (device, socket or "
                                "pipe); remove it from the tracked folder")
        return out


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
