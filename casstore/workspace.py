"""Finding pointers and scanning tracked directories in the working tree."""

from __future__ import annotations

import contextlib
import json
import operator
import os
import select
import signal
import stat as statmod
import struct
import subprocess
import sys
from collections import deque
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
    # Read by a ReadHelper: ``fp`` and ``dirs`` are known, ``files`` is empty and the
    # folder must be read again where its files are needed.
    partial: bool = False

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


# The helper's program: the parent's casstore first on the path, then serve_reads.
# Only on POSIX, where a pipe can be waited on with a time limit.
HELPER_OK = os.name == "posix"
# Seconds an answer may take before the helper is given up and its folders are read by the
# walk itself (one folder's listing and stats take milliseconds).
HELPER_PATIENCE = 30.0
HELPER_ANSWER_MAX = 1 << 26  # bytes of one answer (a folder's subfolder names)
_HELPER_CODE = ("import sys; sys.path.insert(0, sys.argv[1]); "
                "from casstore.workspace import serve_reads; serve_reads()")


class ReadHelper:
    """A second process that reads folders of one tracked folder for a walk: listing and
    stat-ing every file is most of a status or re-add of a million files, and it spreads
    over two cores only across processes (threads each release and take back the GIL
    around every stat, which cost more CPU than it saved).

    ``ask`` hands it a folder (path, rel); ``answer`` gives that folder back ``partial``
    (its fingerprint and subfolders), or None when the caller must read it itself: the
    helper answers only for plain folders, and refers anything it would have to warn
    about or refuse (a link, a special file, an unreadable folder, a name that may be
    refused, a '.git' or a pointer) back to the caller, whose own read reports it exactly
    as without a helper. A helper that fails is dropped; its folders are read by the
    caller. Requests and answers are JSON lines, answered in order.
    """

    def __init__(self, root: Path, display: str, repo_root: Path) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.asked: deque[str] = deque()  # paths asked and not yet answered, in order
        self.answers: dict[str, Folder | None] = {}  # answered, not yet taken
        self.buf = bytearray()  # what the helper wrote past the last answer taken
        here = str(Path(__file__).resolve().parent.parent)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _HELPER_CODE, here], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True)
            self._send({"root": str(root), "display": display, "repo": str(repo_root)})
        except (OSError, ValueError):
            self.close()

    @property
    def alive(self) -> bool:
        return self.proc is not None

    def __len__(self) -> int:
        return len(self.asked)

    def _send(self, msg: object) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(msg).encode("ascii") + b"\n")
        self.proc.stdin.flush()

    def ask(self, path: str, rel: str) -> bool:
        """Hand over a folder; False if the helper is gone (read it yourself)."""
        if self.proc is None:
            return False
        try:
            self._send([path, rel])
        except (OSError, ValueError):
            self.close()
            return False
        self.asked.append(path)
        return True

    def _receive(self) -> tuple[str, Folder | None]:
        """The next answer: the folder asked for first of those not yet answered."""
        assert self.proc is not None and self.proc.stdout is not None
        path = self.asked.popleft()
        fd = self.proc.stdout.fileno()
        while (end := self.buf.find(b"\n")) < 0:
            if len(self.buf) > HELPER_ANSWER_MAX:
                raise ValueError("an answer too long")
            if not select.select([fd], [], [], HELPER_PATIENCE)[0]:
                raise TimeoutError("the helper does not answer")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise ValueError("the helper ended")
            self.buf += chunk
        msg = json.loads(self.buf[:end])
        del self.buf[:end + 1]
        if msg is None:
            return path, None
        fp, names = bytes.fromhex(msg["fp"]), msg["dirs"]
        if len(fp) != 16 or not isinstance(names, list) \
                or not all(isinstance(n, str) and n and "/" not in n for n in names):
            raise ValueError("a malformed answer")
        prefix = path if path.endswith(os.sep) else path + os.sep
        return path, Folder("", path, [], [(n, prefix + n) for n in names], fp, True)

    def answer(self, path: str, rel: str) -> Folder | None:
        """The folder at ``path`` as read by the helper, or None: read it yourself."""
        if path not in self.answers:
            if path not in self.asked:
                return None
            try:
                while path not in self.answers:
                    done, folder = self._receive()
                    self.answers[done] = folder
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                self.close()
                return None
        folder = self.answers.pop(path)
        if folder is not None:
            folder.rel = rel
        return folder

    def close(self) -> None:
        proc, self.proc = self.proc, None
        self.asked.clear()
        self.answers.clear()
        if proc is None:
            return
        # The helper ends at the end of its input, or when it can no longer write an
        # answer nobody will read.
        for pipe in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError, ValueError):
                if pipe is not None:
                    pipe.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def serve_reads() -> None:
    """The ReadHelper's side: read each folder asked for on stdin, answer on stdout."""
    # Ctrl-C reaches the whole process group: the parent decides; the helper ends when
    # its input does.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    conf = json.loads(inp.readline())
    notes: list[str] = []
    reader = FolderReader(Path(conf["root"]), conf["display"],
                          rules=IgnoreRules.load(Path(conf["repo"])), warn=notes.append)
    for line in inp:
        path, rel = json.loads(line)
        notes.clear()
        try:
            folder = reader.read(path, rel)
        except Exception:  # noqa: BLE001 - the parent reads it again and reports it
            folder = None
        answer: object = None
        if folder is not None and not notes:
            names = [n for n, _, _ in folder.files] + [n for n, _ in folder.dirs]
            joined = "\0" + "\0".join(names).lower() + "\0"
            # What 'cas add' refuses is refused by the parent's own read of the folder.
            if "\0.git\0" not in joined and SUFFIX + "\0" not in joined:
                answer = {"fp": folder.fingerprint().hex(),
                          "dirs": [n for n, _ in folder.dirs]}
        out.write(json.dumps(answer).encode("ascii") + b"\n")
        out.flush()


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
