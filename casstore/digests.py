"""Digests of what is in the working tree now, through the stat cache where possible."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .hashing import digest_file
from .ignore import IgnoreRules
from .statcache import StatCache
from .tree import TreeEntry, tree_digest
from .workspace import ScannedFile, folder_fingerprint, scan_dir

if TYPE_CHECKING:
    from .repo import Repo


def current_file_digest(repo: Repo, path: Path, st: os.stat_result | None = None) -> bytes:
    st = st or path.stat()
    key = repo.rel(path)
    hit = repo.stat_cache.lookup(key, st)
    if hit is not None:
        return hit[0]
    digest = digest_file(path)
    # Chunk count is unknown without chunking; 0 means "not recorded" and add re-chunks
    # only if the cache lacks the content anyway.
    repo.stat_cache.record(key, st, digest, 0)
    return digest


def scan_tracked(repo: Repo, path: Path, *, follow_symlinks: bool = False,
                 warn: Callable[[str], None] | None = None
                 ) -> tuple[list[ScannedFile], list[str]]:
    """Scan a tracked folder the way 'cas add' reads it: ``.casignore`` applied, links
    skipped unless the folder was added with --follow-symlinks."""
    return scan_dir(path, repo.rel(path), rules=IgnoreRules.load(repo.root),
                    follow_symlinks=follow_symlinks, warn=warn)


def current_dir_entries(repo: Repo, path: Path,
                        scan: tuple[list[ScannedFile], list[str]] | None = None, *,
                        follow_symlinks: bool = False) -> list[TreeEntry]:
    """Tree entries of a folder as it is now; only changed files are read."""
    shown = repo.rel(path)
    files, empty_dirs = scan or scan_tracked(repo, path, follow_symlinks=follow_symlinks)
    known = repo.stat_cache.lookup_many(shown + "/")
    out: list[TreeEntry] = []
    for f in files:
        key = f"{shown}/{f.rel}"
        row = known.get(key)
        if row is not None and row[0] == StatCache._key(f.st):
            digest = row[1]
        else:
            digest = digest_file(f.path)
            repo.stat_cache.record(key, f.st, digest, 0)
        out.append(TreeEntry(f.rel, "x" if f.executable else "f", f.st.st_size, digest))
    out.extend(TreeEntry(d, "d", 0, None) for d in empty_dirs)
    return out


class DirNow:
    """A folder's tree digest now; its entries are computed only when asked for."""

    def __init__(self, repo: Repo, path: Path, *, follow_symlinks: bool = False) -> None:
        self._repo, self._path = repo, path
        shown = repo.rel(path)
        self._scan = scan_tracked(repo, path, follow_symlinks=follow_symlinks)
        fingerprint = folder_fingerprint(*self._scan)
        # A folder whose files are all untouched since its digest was last computed costs
        # one scan and one stat-cache row.
        known = repo.stat_cache.lookup_folder(shown, fingerprint)
        self._entries: list[TreeEntry] | None = None
        if known is None:
            known, _ = tree_digest(self.entries())
            repo.stat_cache.record_folder(shown, fingerprint, known)
        self.digest: bytes = known

    def entries(self) -> list[TreeEntry]:
        if self._entries is None:
            self._entries = current_dir_entries(self._repo, self._path, self._scan)
        return self._entries
