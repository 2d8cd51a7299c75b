"""Atomic file writes: a reader sees the old file or the new one, never a mix.

Every write goes to a temporary file on the destination's file system (so the rename is
atomic) and is renamed into place only once complete.

Two kinds of destination:
- inside a store (the cache's index, records): the temp name is a sibling of the
  destination (``.NAME.<12 hex>.cas-tmp``); only casstore writes there, so the pattern is
  unambiguous and gc removes leftovers;
- the working tree (checked-out data, pointers, ``.gitignore``): temp files go to
  ``WorkTmp``, a folder of casstore's own under ``.cas/tmp/work/``. A user's file can never
  be taken for a temp file, whatever its name, so nothing in the working tree is skipped or
  deleted because of its name; and the temp name is short, so a 255-byte file name still
  has a temp name the file system accepts.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import CasError

TMP_SUFFIX = ".cas-tmp"


def tmp_name(dest: Path) -> Path:
    """A unique temporary sibling of ``dest``, for store folders only (where nothing but
    casstore writes); the suffix lets gc find leftovers."""
    return dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}{TMP_SUFFIX}")


_TMP_RE = re.compile(r"^\..+\.[0-9a-f]{12}" + re.escape(TMP_SUFFIX) + "$", re.DOTALL)


def is_tmp_name(name: str) -> bool:
    """Whether ``name`` is a temporary file of an atomic write (one a killed command left)."""
    return bool(_TMP_RE.match(name))


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable; ignored where directories cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _alive(pid_text: str) -> bool:
    """Whether the process named by a temp folder's pid is alive on this machine (True when
    the name holds no pid, or the process is someone else's: unknown counts as alive)."""
    if not pid_text.isdigit():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


class WorkTmp:
    """Temp files for one process's writes into the working tree.

    They live in ``<repo>/.cas/tmp/work/<pid>-<random>/``, a folder this process holds an
    flock on: a command killed at any instant leaves its folder behind, and the next
    command that writes removes every folder whose lock nobody holds. A folder is created
    under a ``.new-<pid>-`` name and renamed once locked, so a cleaner never sees an unlocked
    folder that is still in use; a ``.new-`` folder whose process is gone (killed between
    the two steps) is removed at once.

    A destination on another file system than the repository (a tracked folder that is a
    mount point) cannot be reached by rename; there the temp file is a sibling named
    ``.cas-tmp.<16 hex>`` (created exclusively, never replacing anything). If such a write
    is killed the file stays, visible, and is never deleted by name: ``cas status`` shows it
    and the user removes it.
    """

    STALE_NEW_AFTER = 60.0  # seconds: a '.new-' folder this old lost its creator

    def __init__(self, cas_dir: Path) -> None:
        self.base = Path(cas_dir) / "tmp" / "work"
        self._dir: Path | None = None
        self._dev = -1
        self._lock_fd = -1
        self._n = 0
        self._devs: dict[str, int] = {}

    def _ensure(self) -> Path:
        if self._dir is not None:
            return self._dir
        self.base.mkdir(parents=True, exist_ok=True)
        self.remove_stale()
        for attempt in range(3):
            name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
            new = self.base / f".new-{name}"
            new.mkdir()
            try:
                fd = os.open(new / "lock", os.O_RDWR | os.O_CREAT, 0o600)
            except FileNotFoundError:
                continue  # a cleaner that cannot see this process took it: start again
            fcntl.flock(fd, fcntl.LOCK_EX)
            final = self.base / name
            try:
                os.rename(new, final)
            except FileNotFoundError:
                os.close(fd)
                if attempt == 2:
                    raise
                continue
            self._lock_fd, self._dir, self._dev = fd, final, os.stat(final).st_dev
            return final
        raise CasError(f"cannot create a temporary folder in {self.base}: something keeps "
                       "removing it; check what else cleans that folder")

    def remove_stale(self) -> int:
        """Delete the folders of killed processes; returns how many."""
        n = 0
        try:
            entries = list(os.scandir(self.base))
        except OSError:
            return 0
        for e in entries:
            p = Path(e.path)
            if p == self._dir:
                continue
            if e.name.startswith(".new-"):
                # Not locked yet by design (created, then locked, then renamed): its
                # creator was killed in between if that process is gone, or if the folder
                # is older than any live creator leaves it (a process of another PID
                # namespace sharing the folder is not seen here; it starts again).
                with contextlib.suppress(OSError):
                    if not _alive(e.name[len(".new-"):].partition("-")[0]) or \
                            time.time() - e.stat(follow_symlinks=False).st_mtime \
                            > self.STALE_NEW_AFTER:
                        shutil.rmtree(p, ignore_errors=True)
                        n += 1
                continue
            try:
                fd = os.open(p / "lock", os.O_RDWR)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # its process is alive
            else:
                shutil.rmtree(p, ignore_errors=True)
                n += 1
            finally:
                os.close(fd)
        return n

    def path_for(self, dest: Path) -> Path:
        """A fresh temp path from which ``dest`` can be reached by ``replace``."""
        d = self._ensure()
        # One stat per folder, not per file: checkouts write thousands of small files.
        parent = str(dest.parent)
        dev = self._devs.get(parent)
        if dev is None:
            dev = self._devs[parent] = os.stat(parent).st_dev
        if dev == self._dev:
            self._n += 1
            return d / str(self._n)
        return dest.with_name(f".cas-tmp.{uuid.uuid4().hex[:16]}")

    def open(self, dest: Path) -> tuple[Path, BinaryIO]:
        tmp = self.path_for(dest)
        # Exclusive: a sibling temp name must never truncate a file that is already there.
        return tmp, open(tmp, "xb")

    def replace(self, tmp: Path, dest: Path) -> None:
        """Rename ``tmp`` over ``dest``; across mount points of one file system (EXDEV),
        copy it to a sibling first, then rename that."""
        try:
            os.replace(tmp, dest)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            side = dest.with_name(f".cas-tmp.{uuid.uuid4().hex[:16]}")
            try:
                with open(tmp, "rb") as src, open(side, "xb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                shutil.copymode(tmp, side)
                os.replace(side, dest)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(side)
                raise
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def close(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            os.close(self._lock_fd)
            self._dir, self._lock_fd = None, -1


@contextlib.contextmanager
def atomic_open(dest: Path, *, mode: int | None = None, fsync: bool = False,
                work: WorkTmp | None = None) -> Iterator[BinaryIO]:
    """Open a temp file for writing; on success rename it over ``dest``, else remove it.

    ``work`` is given for destinations in the working tree (see ``WorkTmp``).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if work is not None:
        tmp, f = work.open(dest)
    else:
        tmp = tmp_name(dest)
        f = open(tmp, "wb")
    try:
        yield f
        f.flush()
        if fsync:
            os.fsync(f.fileno())
        f.close()
        if mode is not None:
            os.chmod(tmp, mode)
        if work is not None:
            work.replace(tmp, dest)
        else:
            os.replace(tmp, dest)
        if fsync:
            fsync_dir(dest.parent)
    except BaseException:
        f.close()
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(dest: Path, data: bytes, *, mode: int | None = None,
                       fsync: bool = False, work: WorkTmp | None = None) -> None:
    """Write ``data`` to ``dest`` atomically."""
    with atomic_open(dest, mode=mode, fsync=fsync, work=work) as f:
        f.write(data)


def atomic_write_text(dest: Path, text: str, *, fsync: bool = False,
                      work: WorkTmp | None = None) -> None:
    """Write UTF-8 ``text`` to ``dest`` atomically."""
    atomic_write_bytes(dest, text.encode("utf-8"), fsync=fsync, work=work)
