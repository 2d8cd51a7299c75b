"""Inter-process locks on a store: shared for writers that only add, exclusive for gc.

Adding never conflicts with adding (each process writes its own packs and index files),
so adds share the lock; only deletion (gc, compaction's removals) needs it exclusively.
"""

from __future__ import annotations

import contextlib
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
    """Hold an flock on ``path``; say 'waiting for lock' once the wait passes a second."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
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
