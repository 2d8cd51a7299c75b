"""Clones sharing one cache: each registers itself, so gc keeps what every one needs.

``cache.dir`` can point several clones on one machine at one cache. A clone records its
folder under ``CACHE/clones/<id>.json`` the first time it opens the cache; ``cas gc`` on
that cache keeps what every registered clone that still exists (and still uses this
cache) references, and drops the registrations of clones that are gone.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

from .atomic import atomic_write_bytes
from .hashing import digest_bytes

DIRNAME = "clones"
MAX_REGISTRATION = 1 << 16


@dataclass(frozen=True)
class Registration:
    file: Path
    root: Path


def _file(cache_root: Path, root: Path) -> Path:
    return cache_root / DIRNAME / f"{digest_bytes(str(root).encode()).hex()}.json"


def register(cache_root: Path, root: Path) -> None:
    """Record that the clone at ``root`` uses this cache (one stat when already known)."""
    f = _file(cache_root, root)
    if f.exists():
        return
    with contextlib.suppress(OSError):  # a read-only cache still works for reading
        f.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(f, json.dumps({"root": str(root)}).encode())


def registered(cache_root: Path) -> list[Registration]:
    out = []
    folder = cache_root / DIRNAME
    if not folder.is_dir():
        return out
    for f in sorted(folder.glob("*.json")):
        try:
            if f.stat().st_size > MAX_REGISTRATION:
                continue
            doc = json.loads(f.read_bytes())
            root = Path(doc["root"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if f == _file(cache_root, root):
            out.append(Registration(f, root))
    return out


def forget(reg: Registration) -> None:
    with contextlib.suppress(OSError):
        reg.file.unlink()
