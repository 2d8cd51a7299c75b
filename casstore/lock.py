"""Inter-process locks on a store: shared for writers that only add, exclusive for gc.

Adding never conflicts with adding (each process writes its own packs and index files),
so adds share the lock; only deletion (gc, compaction's removals) needs it exclusively.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import LockTimeoutError

WAIT_NOTICE_AFTER = 1.0


@contextlib.contextmanager
def store_lock(path: Path, *, shared: bool, timeout: float | None = None,
               notify: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold an flock on ``path``; say 'waiting for lock' once the wait passes a second.

    A shared (reader's) lock also works on a cache this user cannot write (``chmod -R a-w``,
    a read-only mount, a cache owned by another account): see ``_open_for_lock``.
    """
    fd = _open_for_lock(path, shared)
    if fd is None:
        yield
        return
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    start = time.monotonic()
    told = False
    try:
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - start
                if not told and waited >= WAIT_NOTICE_AFTER and notify is not None:
                    notify(f"waiting for lock on {path} (another cas command is running)")
                    told = True
                if timeout is not None and waited > timeout:
                    raise LockTimeoutError(
                        f"gave up waiting for {path} after {timeout:.0f}s; another cas command "
                        "holds it: wait for it to finish, then retry") from None
                time.sleep(0.05)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


def _open_for_lock(path: Path, shared: bool) -> int | None:
    """The lock file's descriptor; ``None`` when a reader may go ahead without one.

    flock needs no write access, so a reader that cannot open the lock for writing opens it
    read-only and still takes its shared lock: a gc run by someone who can write the cache
    waits for it as usual. Only when the file does not exist and cannot be created does a
    reader go on unlocked. That is safe for reading: nobody has ever locked this cache, a
    reader changes nothing in it, and everything it reads is verified against its id (a pack
    deleted under it gives a clean "missing" error, never wrong data). Writers (add, gc)
    still need the write access they are about to use, and fail with one line without it.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        if not shared or exc.errno not in _NOT_WRITABLE:
            raise
    try:
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
