"""Atomic file writes: a reader sees the old file or the new one, never a mix.

Every write goes to a temporary name in the destination's folder (same file system,
so the rename is atomic) and is renamed into place only once complete.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

TMP_SUFFIX = ".cas-tmp"


def tmp_name(dest: Path) -> Path:
    """A unique temporary sibling of ``dest``; the suffix lets cleanup find leftovers."""
    return dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}{TMP_SUFFIX}")


_TMP_RE = re.compile(r"^\..+\.[0-9a-f]{12}" + re.escape(TMP_SUFFIX) + "$", re.DOTALL)


def is_tmp_name(name: str) -> bool:
    """Whether ``name`` is a temporary file of an atomic write (one a killed command left)."""
    return bool(_TMP_RE.match(name))


def remove_stale_tmp(folder: Path, name: str | None = None) -> int:
    """Delete temp files in ``folder`` (only those of ``name``, if given) that interrupted
    atomic writes left; returns how many.

    Only for files one command at a time writes (workspace data, pointers): a concurrent
    writer in the same folder would lose its temp file.
    """
    n = 0
    prefix = f".{name}." if name is not None else "."
    with contextlib.suppress(OSError):
        for p in folder.iterdir():
            if not (p.name.startswith(prefix) and is_tmp_name(p.name)):
                continue
            if name is not None and len(p.name) != len(prefix) + 12 + len(TMP_SUFFIX):
                continue
            if p.is_file() and not p.is_symlink():
                with contextlib.suppress(OSError):
                    p.unlink()
                    n += 1
    return n


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


@contextlib.contextmanager
def atomic_open(dest: Path, *, mode: int | None = None, fsync: bool = False) -> Iterator[BinaryIO]:
    """Open a temp file for writing; on success rename it over ``dest``, else remove it."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
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
        os.replace(tmp, dest)
        if fsync:
            fsync_dir(dest.parent)
    except BaseException:
        f.close()
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(dest: Path, data: bytes, *, mode: int | None = None,
                       fsync: bool = False) -> None:
    """Write ``data`` to ``dest`` atomically."""
    with atomic_open(dest, mode=mode, fsync=fsync) as f:
        f.write(data)


def atomic_write_text(dest: Path, text: str, *, fsync: bool = False) -> None:
    """Write UTF-8 ``text`` to ``dest`` atomically."""
    atomic_write_bytes(dest, text.encode("utf-8"), fsync=fsync)
