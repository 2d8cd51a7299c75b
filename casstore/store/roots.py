"""Root markers: empty files ``ROOT/roots/ab/<id>`` saying "this pointer's content is here".

They let ``cas status`` answer "in cache?" with one stat per pointer, without loading the
index (and numpy and pyarrow with it), which is most of its start-up time. A marker is only
ever a positive hint written after the objects are committed (by add, checkout, or a status
that consulted the index); gc removes the markers of what it deletes, and a missing marker
just means asking the index.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

DIRNAME = "roots"


def marker(store_root: Path, oid: bytes) -> Path:
    h = oid.hex()
    return store_root / DIRNAME / h[:2] / h


def known(store_root: Path, oid: bytes) -> bool:
    return os.path.exists(marker(store_root, oid))


def remember(store_root: Path, oids: Iterable[bytes]) -> None:
    """Create markers; failures are ignored since markers are only an accelerator."""
    for oid in oids:
        m = marker(store_root, oid)
        with contextlib.suppress(OSError):
            m.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(m, os.O_WRONLY | os.O_CREAT, 0o666))


def prune(store_root: Path, keep: Callable[[bytes], bool]) -> int:
    """Remove markers whose object ``keep`` says is gone; returns how many."""
    base = store_root / DIRNAME
    n = 0
    if not base.is_dir():
        return 0
    for sub in base.iterdir():
        for m in sub.iterdir() if sub.is_dir() else ():
            try:
                oid = bytes.fromhex(m.name)
            except ValueError:
                oid = b""
            if len(oid) != 16 or not keep(oid):
                with contextlib.suppress(OSError):
                    m.unlink()
                    n += 1
    return n
