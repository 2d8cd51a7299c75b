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
CREATE TABLE IF NOT EXISTS folder (path TEXT PRIMARY KEY, fingerprint BLOB, digest BLOB);"""


class StatCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[str, int, int, int, int, bytes, int]] = []

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

    def lookup_many(self, prefix: str) -> dict[str, tuple[tuple[int, int, int, int], bytes, int]]:
        """All entries under a folder prefix in one query (for big directories)."""
        rows = self._conn().execute(
            "SELECT path, ino, size, mtime, ctime, digest, chunks FROM stat "
            "WHERE path >= ? AND path < ?", (prefix, prefix + "\uffff")).fetchall()
        return {r[0]: ((r[1], r[2], r[3], r[4]), bytes(r[5]), int(r[6])) for r in rows}

    def lookup_folder(self, path: str, fingerprint: bytes) -> bytes | None:
        """A folder's tree digest if none of its files changed since it was computed.

        The fingerprint covers every name and every file's stat key (see
        ``folder_fingerprint``), so one row answers for a whole folder: checking 20,000 rows
        one by one and re-encoding the tree took a third of 'cas status'.
        """
        row = self._conn().execute("SELECT fingerprint, digest FROM folder WHERE path = ?",
                                   (path,)).fetchone()
        if row is None or bytes(row[0]) != fingerprint:
            return None
        return bytes(row[1])

    def record_folder(self, path: str, fingerprint: bytes, digest: bytes) -> None:
        try:
            with self._conn() as conn:
                conn.execute("INSERT OR REPLACE INTO folder VALUES (?,?,?)",
                             (path, fingerprint, digest))
        except sqlite3.OperationalError:
            pass  # read-only or busy: the cache is an accelerator, losing entries is safe

    def record(self, path: str, st: os.stat_result, digest: bytes, chunks: int) -> None:
        self._pending.append((path, *self._key(st), digest, chunks))
        if len(self._pending) >= 5000:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        conn = self._conn()
        try:
            with conn:
                conn.executemany("INSERT OR REPLACE INTO stat VALUES (?,?,?,?,?,?,?)",
                                 self._pending)
        except sqlite3.OperationalError:
            pass  # read-only or busy: the cache is an accelerator, losing entries is safe
        self._pending.clear()

    def close(self) -> None:
        self.flush()
        if self._db is not None:
            self._db.close()
            self._db = None
