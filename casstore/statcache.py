"""The stat cache: (path, inode, size, mtime, ctime) -> digest, so unchanged files cost
a stat, not a read. Stored in SQLite under .cas/state/, which is machine-local."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

SCHEMA = """CREATE TABLE IF NOT EXISTS stat (
    path TEXT PRIMARY KEY, ino INTEGER, size INTEGER, mtime INTEGER, ctime INTEGER,
    digest BLOB, chunks INTEGER);
DROP TABLE IF EXISTS folder;
CREATE TABLE IF NOT EXISTS folder2 (path TEXT PRIMARY KEY, fingerprint BLOB, digest BLOB,
    size INTEGER, files INTEGER);
CREATE TABLE IF NOT EXISTS tree1 (v1 BLOB PRIMARY KEY, v2 BLOB, size INTEGER,
    files INTEGER);"""
# folder2 holds one row per folder of a tracked folder (its version 2 tree); the version 1
# 'folder' table (one row per tracked folder) is dropped. tree1 maps an old (version 1)
# tree to the version 2 tree of the same content.
QUERY_BATCH = 500  # names per 'IN (...)' query: well under SQLite's variable limit


class StatCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[str, int, int, int, int, bytes, int]] = []
        self._folders: list[tuple[str, bytes, bytes, int, int]] = []

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._db = sqlite3.connect(self.path, timeout=30)
                self._db.executescript(SCHEMA)
            except sqlite3.DatabaseError:
                # The stat cache is only an accelerator: a damaged one is rebuilt.
                with contextlib.suppress(OSError):
                    self.path.unlink()
                self._db = sqlite3.connect(self.path, timeout=30)
                self._db.executescript(SCHEMA)
        return self._db

    @staticmethod
    def _key(st: os.stat_result) -> tuple[int, int, int, int]:
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def lookup(self, path: str, st: os.stat_result) -> tuple[bytes, int] | None:
        """(digest, chunks) if ``path`` is unchanged since it was last hashed."""
        row = self._conn().execute(
            "SELECT ino, size, mtime, ctime, digest, chunks FROM stat WHERE path = ?",
            (path,)).fetchone()
        if row is None or tuple(row[:4]) != self._key(st):
            return None
        return bytes(row[4]), int(row[5])

    def lookup_names(self, paths: list[str]
                     ) -> dict[str, tuple[tuple[int, int, int, int], bytes, int]]:
        """The rows of ``paths`` (one folder's files), in a few queries."""
        out: dict[str, tuple[tuple[int, int, int, int], bytes, int]] = {}
        conn = self._conn()
        for i in range(0, len(paths), QUERY_BATCH):
            part = paths[i:i + QUERY_BATCH]
            rows = conn.execute(
                "SELECT path, ino, size, mtime, ctime, digest, chunks FROM stat WHERE path IN "
                f"({','.join('?' * len(part))})", part).fetchall()
            for r in rows:
                out[r[0]] = ((r[1], r[2], r[3], r[4]), bytes(r[5]), int(r[6]))
        return out

    def lookup_folder(self, path: str, fingerprint: bytes) -> tuple[bytes, int, int] | None:
        """A folder's tree digest, bytes and files if nothing in or below it changed since
        they were computed (``fingerprint`` covers its own files' stat keys and its
        subfolders' digests): one row answers for a whole folder."""
        row = self._conn().execute(
            "SELECT fingerprint, digest, size, files FROM folder2 WHERE path = ?",
            (path,)).fetchone()
        if row is None or bytes(row[0]) != fingerprint:
            return None
        return bytes(row[1]), int(row[2]), int(row[3])

    def record_folder(self, path: str, fingerprint: bytes, digest: bytes, size: int,
                      files: int) -> None:
        self._folders.append((path, fingerprint, digest, size, files))
        if len(self._folders) >= 1000:
            self.flush()

    def lookup_v1(self, v1: bytes) -> tuple[bytes, int, int] | None:
        """The version 2 tree (digest, bytes, files) of the same content as version 1 tree
        ``v1``, if computed before."""
        row = self._conn().execute("SELECT v2, size, files FROM tree1 WHERE v1 = ?",
                                   (v1,)).fetchone()
        return None if row is None else (bytes(row[0]), int(row[1]), int(row[2]))

    def record_v1(self, v1: bytes, v2: bytes, size: int, files: int) -> None:
        try:
            with self._conn() as conn:
                conn.execute("INSERT OR REPLACE INTO tree1 VALUES (?,?,?,?)",
                             (v1, v2, size, files))
        except sqlite3.OperationalError:
            pass  # read-only or busy: the cache is an accelerator, losing entries is safe

    def record(self, path: str, st: os.stat_result, digest: bytes, chunks: int) -> None:
        self._pending.append((path, *self._key(st), digest, chunks))
        if len(self._pending) >= 5000:
            self.flush()

    def flush(self) -> None:
        if not self._pending and not self._folders:
            return
        conn = self._conn()
        try:
            with conn:
                conn.executemany("INSERT OR REPLACE INTO stat VALUES (?,?,?,?,?,?,?)",
                                 self._pending)
                conn.executemany("INSERT OR REPLACE INTO folder2 VALUES (?,?,?,?,?)",
                                 self._folders)
        except sqlite3.OperationalError:
            pass  # read-only or busy: the cache is an accelerator, losing entries is safe
        self._pending.clear()
        self._folders.clear()

    def close(self) -> None:
        self.flush()
        if self._db is not None:
            self._db.close()
            self._db = None
