"""The local store (the cache): the Store over a local directory, plus the pack writer.

Beside the store layout (``casstore.store.store``) the cache holds:
    ROOT/lock                       flock: shared by adders, exclusive for gc
    ROOT/roots/                     root markers (``casstore.store.roots``)
    ROOT/clones/                    registrations of the clones using this cache
A pack is renamed into place only when complete, and its index file is written after it,
so a killed process leaves at worst an unindexed pack (re-indexed by fsck or gc) or a temp
file, never an index entry pointing at missing bytes.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..atomic import fsync_dir, is_tmp_name
from ..errors import CorruptObjectError, ObjectMissingError
from ..lock import store_lock
from ..reporting import SILENT, Reporter
from .backend import DirBackend, Entry
from .index import IdSet, Index, Location
from .objects import Codec, ObjectType, compress
from .packfile import ENTRY_DTYPE, MAGIC, encode_trailer, pack_name
from .store import INDEX, Store

PACK_TARGET = 64 << 20
COMPACT_AFTER = 64  # index files; past this many, merge them into one on the next add


class LocalStore(Store):
    """The store in a local directory (the cache)."""

    def __init__(self, root: Path, *, fsync: bool = True,
                 notify: Callable[[str], None] | None = None, group_shared: bool = False,
                 reporter: Reporter = SILENT) -> None:
        backend = DirBackend(Path(root), fsync=fsync)
        backend.label = f"the cache at {root}"
        super().__init__(backend, reporter=reporter)
        self.root = Path(root)
        self.fsync = fsync
        self.notify = notify
        self.group_shared = group_shared
        self._fds: dict[str, int] = {}
        self._sizes: dict[str, int] = {}

    # layout -------------------------------------------------------------------------
    @property
    def packs_dir(self) -> Path:
        return self.root / "packs"

    @property
    def index_dir(self) -> Path:
        return self.root / "index"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    def pack_path(self, name: str) -> Path:
        return self.packs_dir / name[:2] / f"{name}.pack"

    def ensure(self) -> None:
        for d in (self.packs_dir, self.index_dir, self.tmp_dir):
            d.mkdir(parents=True, exist_ok=True)
        if self.group_shared:
            # setgid folders: what is created inside belongs to the folder's group, and
            # subfolders inherit the bit (packs/ab/ created later included).
            for d in (self.root, self.packs_dir, self.index_dir, self.tmp_dir):
                with contextlib.suppress(OSError):
                    st = os.stat(d)
                    if st.st_mode & 0o2070 != 0o2070:
                        os.chmod(d, (st.st_mode & 0o7777) | 0o2070)

    def lock(self, *, shared: bool = True, timeout: float | None = None
             ) -> contextlib.AbstractContextManager[None]:
        self.ensure()
        return store_lock(self.root / "lock", shared=shared, timeout=timeout,
                          notify=self.notify)

    def list_tmp(self) -> list[Entry]:
        """Packs being written, and temp files of atomic writes anywhere in the store
        (only a gc holding the store exclusively may take them for leftovers)."""
        out = super().list_tmp()
        for folder in (INDEX, "records", "locks"):
            out += [e for e in self.backend.list(folder)
                    if is_tmp_name(e.key.rsplit("/", 1)[-1])]
        return out

    # reading ------------------------------------------------------------------------
    def _fd(self, pack: str) -> int:
        fd = self._fds.get(pack)
        if fd is None:
            try:
                fd = os.open(self.pack_path(pack), os.O_RDONLY)
            except FileNotFoundError:
                raise ObjectMissingError(
                    f"pack {pack} is listed in the index but missing from {self.packs_dir}; "
                    "run 'cas fsck' and fetch the data again") from None
            self._fds[pack] = fd
        return fd

    def _checked_fd(self, loc: Location) -> int:
        fd = self._fd(loc.pack)
        # Bounds come from index files, which may be damaged or crafted: check them against
        # the (immutable) pack's size before anything allocates ``length`` bytes.
        size = self._sizes.get(loc.pack)
        if size is None:
            size = self._sizes[loc.pack] = os.fstat(fd).st_size
        if loc.offset < 0 or loc.length < 0 or loc.offset + loc.length > size:
            raise CorruptObjectError(f"index entry points past the end of pack {loc.pack}; "
                                     "run 'cas fsck'")
        return fd

    def range_fd(self, loc: Location) -> int:
        """A read-only descriptor of the pack holding ``loc``, once ``loc`` is checked to lie
        inside it: for copies the kernel makes straight from the pack (checkout)."""
        return self._checked_fd(loc)

    def read_raw(self, loc: Location) -> bytes:
        data = os.pread(self._checked_fd(loc), loc.length, loc.offset)
        if len(data) != loc.length:
            raise CorruptObjectError(f"pack {loc.pack} is truncated")
        return data

    def read_range(self, pack: str, start: int, end: int) -> bytes:
        if end <= start:
            return b""
        return self.read_raw(Location(pack, 0, 0, 0, start, end - start))

    def read_raw_into(self, loc: Location, buf: bytearray) -> memoryview:
        """Read stored bytes into a reused buffer (big reads into fresh ``bytes`` objects
        cost a page fault per 4 KiB: measured, 2 s of system time per GiB checked out)."""
        view = memoryview(buf)[:loc.length]
        n = os.preadv(self._checked_fd(loc), [view], loc.offset)
        if n != loc.length:
            raise CorruptObjectError(f"pack {loc.pack} is truncated")
        return view

    def close(self) -> None:
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()
        self._sizes.clear()

    # writing ------------------------------------------------------------------------
    def writer(self, target_size: int = PACK_TARGET, *, queue_items: int = 0,
               remember: bool = True) -> PackWriter:
        """A pack writer; ``queue_items`` bounds the ~1 MiB batches waiting for its thread
        (default ``PackWriter.QUEUE_ITEMS``); ``remember=False``: see ``PackWriter``."""
        self.ensure()
        return PackWriter(self, target_size, queue_items=queue_items, remember=remember)

    def commit_pack(self, tmp: Path, name: str, entries: np.ndarray) -> None:
        """Move a finished (already fsynced) pack into place, then publish its index.

        The pack is durable before its index is written, so not even a power cut can leave
        an index naming bytes that never reached the disk.
        """
        dest = self.pack_path(name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)
        if self.fsync:
            fsync_dir(dest.parent)
        self.write_index([name], np.zeros(len(entries), np.uint32), entries, name,
                         invalidate=False)

    def copy_objects(self, wanted: list[tuple[bytes, Location]],
                     reporter: Reporter = SILENT) -> list[str]:
        with self.writer() as w:
            for oid, loc in wanted:
                w.put_stored(oid, loc.type, loc.codec, loc.raw_length, self.read_raw(loc))
        return list(w.packs)

    def compact_index(self) -> bool:
        """Merge many index files into one so that loading stays a few reads."""
        names = self.list_index_names()
        if len(names) <= COMPACT_AFTER:
            return False
        try:
            parts = self.read_index_parts(names)
        except FileNotFoundError:
            return False  # another add is compacting these very files; its result suffices
        idx = Index.merge(parts)
        new = self.write_index(*idx.subset(np.ones(len(idx), bool)))
        for n in names:
            if n != new:
                self.delete_index_file(n)
        return True


class WrittenIds:
    """The ids a pack writer has written: the recent ones in a set, folded into an IdSet
    (16 bytes per id instead of ~90) once there are many, so that fetching or adding a
    million small objects holds about 16 MB of ids, not 90 MB."""

    FOLD = 1 << 16  # ids; below this (most commands) membership stays a set lookup

    def __init__(self) -> None:
        self.recent: set[bytes] = set()
        self.folded = IdSet.empty()

    def add(self, oid: bytes) -> None:
        self.recent.add(oid)
        # Folding merges all ids so far, so it waits for a quarter more of them: the work
        # stays linear overall.
        if len(self.recent) >= max(self.FOLD, len(self.folded) // 4):
            self.folded = self.folded | IdSet.of(self.recent)
            self.recent = set()

    def __contains__(self, oid: bytes) -> bool:
        return oid in self.recent or (len(self.folded) > 0 and oid in self.folded)


_OPEN, _DATA, _CLOSE, _RELEASE, _STOP = range(5)


class PackWriter:
    """Appends objects to packs of about ``target_size`` bytes; use as a context manager.

    The caller's thread decides what goes where (dedup, offsets, pack boundaries); a
    background thread does the file writes, pack hashing and fsync, which release the GIL,
    so chunking and hashing the next bytes overlaps with writing the previous ones.
    """

    QUEUE_ITEMS = 64  # ~1 MiB batches in flight: bounds memory to ~64 MiB
    BATCH_BYTES = 1 << 20
    PIECE = 256 << 10

    def __init__(self, store: LocalStore, target_size: int, *, queue_items: int = 0,
                 remember: bool = True) -> None:
        self.store = store
        self.target_size = target_size
        self.written = WrittenIds()
        # remember=False: ``put_stored`` does not note the ids it writes, for a caller that
        # hands over each id once and never asks ``has`` about them (a fetch, whose ids are
        # unique and absent from the cache): a million ids noted cost ~40 MB and the peaks
        # of folding them.
        self.remember = remember
        self.bytes_written = 0
        self.packs: list[str] = []
        self._open_pack = False
        self._pos = 0
        self._rows: list[tuple[bytes, int, int, int, int, int]] = []
        self._queue: queue.Queue[tuple[int, object]] = queue.Queue(
            queue_items or self.QUEUE_ITEMS)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        # Finished packs waiting for fsync and publication; two keep the disk busy while the
        # writer fills the next, and bound open files and unsynced bytes.
        self._seal_queue: queue.Queue[tuple[BinaryIO, Path, np.ndarray] | None] = \
            queue.Queue(2)
        self._batch: list[bytes | memoryview] = []
        self._batch_bytes = 0

    def __enter__(self) -> PackWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.flush()
        else:
            self.abort()

    def has(self, oid: bytes) -> bool:
        return oid in self.written or self.store.has(oid)

    # caller's side -------------------------------------------------------------------
    def _send(self, op: int, arg: object = None) -> None:
        if self._error is not None:
            raise self._error
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="cas-pack-writer",
                                            daemon=True)
            self._thread.start()
        self._queue.put((op, arg))

    def put(self, oid: bytes, otype: ObjectType, data: bytes | memoryview,
            codec: Codec = Codec.NONE, *, check_store: bool = True) -> bool:
        """Store one object unless present; returns whether bytes were written.

        ``check_store=False``: the caller has just found the cache lacking it, so only this
        writer's own objects are checked (after a fetch of a million objects, looking one
        up would load the whole new index: 60 MB for the few trees written last)."""
        if oid in self.written or (check_store and self.store.has(oid)):
            return False
        stored = compress(data, codec) if codec != Codec.NONE else data
        if codec != Codec.NONE and len(stored) >= len(data):
            stored, codec = data, Codec.NONE
        self.put_stored(oid, otype, codec, len(data), stored)
        return True

    def put_block(self, block: memoryview, ends: list[int], ids: list[bytes],
                  release: Callable[[], None]) -> int:
        """Store the raw chunks of one block (chunk k ends at ``ends[k]``) that are new.

        Membership is checked for the whole block in one vectorised index lookup, and each
        run of consecutive new chunks is handed over in one piece, not chunk by chunk. The
        writer thread writes straight from ``block`` (no copy: measured, copying was a tenth
        of the CPU time of adding a large file) and calls ``release`` once it no longer needs
        it. Returns the bytes written.
        """
        present = self.store.index().contains_many(np.frombuffer(b"".join(ids), dtype="V16"))
        before = self.bytes_written
        run_start = run_end = -1
        run_rows: list[tuple[bytes, int]] = []
        start = 0
        for k, end in enumerate(ends):
            oid = ids[k]
            new = not present[k] and oid not in self.written
            if new:
                if run_end != start:
                    self._put_run(block, run_start, run_end, run_rows)
                    run_start, run_rows = start, []
                run_rows.append((oid, end - start))
                self.written.add(oid)
                run_end = end
            start = end
        self._put_run(block, run_start, run_end, run_rows)
        if self.bytes_written == before:
            release()  # nothing of this block is queued
        else:
            # Queued after the block's pieces: the thread reaches it once they are written.
            self._send_batch()
            self._send(_RELEASE, release)
        return self.bytes_written - before

    def _open(self) -> None:
        if not self._open_pack:
            self._pos = len(MAGIC)
            self._rows = []
            self._open_pack = True
            self._send(_OPEN)

    def _put_run(self, block: memoryview, start: int, end: int,
                 rows: list[tuple[bytes, int]]) -> None:
        if not rows:
            return
        self._open()
        pos = self._pos
        for oid, length in rows:
            self._rows.append((oid, int(ObjectType.CHUNK), int(Codec.NONE), length, pos, length))
            pos += length
        # Views of at most PIECE bytes: the kernel copies a 256 KiB write into the page cache
        # within the CPU caches; 4 MiB writes streamed through memory (measured: an add of
        # 1 GiB took twice as long).
        for a in range(start, end, self.PIECE):
            piece = block[a:min(a + self.PIECE, end)]
            self._batch.append(piece)
            self._batch_bytes += len(piece)
            if self._batch_bytes >= self.BATCH_BYTES:
                self._send_batch()  # batches stay ~1 MiB so the queue bounds memory
        self._pos = pos
        self.bytes_written += end - start
        if self._pos >= self.target_size:
            self._close_pack()

    def put_stored(self, oid: bytes, otype: int, codec: int, raw_length: int,
                   stored: bytes | memoryview) -> None:
        """Append already-encoded bytes as they are (repacking, downloads); no dedup check."""
        self._open()
        self._rows.append((oid, int(otype), int(codec), raw_length, self._pos, len(stored)))
        # The caller may reuse its buffer as soon as we return: keep a copy. Small objects
        # travel to the thread in batches, since a queue hand-off per 4 KiB file costs more
        # than writing it.
        self._batch.append(stored if isinstance(stored, bytes) else bytes(stored))
        self._batch_bytes += len(stored)
        if self._batch_bytes >= self.BATCH_BYTES:
            self._send_batch()
        self._pos += len(stored)
        if self.remember:
            self.written.add(oid)
        self.bytes_written += len(stored)
        if self._pos >= self.target_size:
            self._close_pack()

    def _send_batch(self) -> None:
        if self._batch:
            self._send(_DATA, self._batch)
            self._batch = []
            self._batch_bytes = 0

    def _close_pack(self) -> None:
        if self._open_pack:
            self._send_batch()
            self._send(_CLOSE, np.array(self._rows, dtype=ENTRY_DTYPE))
            self._open_pack = False

    def flush(self) -> None:
        """Finish the open pack and wait until every pack is renamed and indexed."""
        self._close_pack()
        if self._thread is not None:
            self._queue.put((_STOP, None))
            self._thread.join()
            self._thread = None
            self.store.invalidate()
        if self._error is not None:
            raise self._error

    ABORT_WAIT = 1.0  # seconds; an interrupted command must end within 2 s

    def abort(self) -> None:
        """Stop writing; the unfinished pack's temp file is removed.

        Never blocks for long: an interrupted add once hung here for 11 minutes holding the
        cache lock. What is still queued is dropped (with the error set the thread would
        only discard it), which also guarantees room for the stop message; the wait for the
        thread is bounded. A thread still busy after that (an fsync on a slow disk) finishes
        or discards its pack on its own; either leaves the store consistent, as a kill does.
        """
        self._open_pack = False
        self._batch = []
        if self._thread is not None:
            self._error = self._error or _Aborted()
            with contextlib.suppress(queue.Empty):
                while True:
                    self._queue.get_nowait()
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait((_STOP, None))
            with contextlib.suppress(RuntimeError):  # interrupted before it even started
                self._thread.join(self.ABORT_WAIT)
            self._thread = None
        self.store.invalidate()

    # writer thread -------------------------------------------------------------------
    def _run(self) -> None:
        sealer = threading.Thread(target=self._seal_loop, name="cas-pack-sealer", daemon=True)
        sealer.start()
        f = None
        tmp: Path | None = None
        try:
            while True:
                op, arg = self._queue.get()
                if op == _STOP:
                    break
                if op == _RELEASE:
                    arg()  # type: ignore[operator]  # even after an error: the buffer is free
                    continue
                if self._error is not None:
                    continue  # drain so the caller never blocks on a full queue
                try:
                    if op == _OPEN:
                        tmp = self.store.tmp_dir / f"{uuid.uuid4().hex}.pack.tmp"
                        f = open(tmp, "wb")
                        f.write(MAGIC)
                    elif op == _DATA:
                        for piece in arg:  # type: ignore[attr-defined]
                            f.write(piece)  # type: ignore[union-attr]
                    elif op == _CLOSE:
                        entries: np.ndarray = arg  # type: ignore[assignment]
                        f.write(encode_trailer(entries))  # type: ignore[union-attr]
                        f.flush()  # type: ignore[union-attr]
                        # The sealer fsyncs and publishes this pack while we write the next
                        # one: waiting for the disk here stalled the caller (measured, a
                        # quarter of the time of adding 1 GiB).
                        self._seal_queue.put((f, tmp, entries))
                        f, tmp = None, None
                except BaseException as exc:  # re-raised in the caller's thread
                    self._error = exc
        finally:
            self._seal_queue.put(None)
            sealer.join()
            _discard(f, tmp)

    def _seal_loop(self) -> None:
        """Make each finished pack durable, move it into place, then publish its index.

        Packs are sealed one at a time in the order they were written, and a pack's index is
        written only after the pack is fsynced, so no index ever names unwritten bytes.
        """
        while True:
            item = self._seal_queue.get()
            if item is None:
                return
            f, tmp, entries = item
            if self._error is not None:
                _discard(f, tmp)
                continue
            try:
                if self.store.fsync:
                    os.fsync(f.fileno())
                f.close()
                name = pack_name(entries)
                self.store.commit_pack(tmp, name, entries)
                self.packs.append(name)
            except BaseException as exc:
                self._error = exc
                _discard(f, tmp)


def _discard(f: BinaryIO | None, tmp: Path | None) -> None:
    """Close and delete an unfinished pack (after an error or an abort)."""
    if f is not None:
        # After a failed write (disk full) closing flushes the rest and fails again; the
        # first error is already recorded and the temp file goes next.
        with contextlib.suppress(OSError):
            f.close()
    if tmp is not None:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


class _Aborted(Exception):
    pass
