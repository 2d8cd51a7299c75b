"""Storing one file as chunks (plus a recipe) and rebuilding it, verified, from a store."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Protocol

import numpy as np
import xxhash

from .chunker import Chunker
from .errors import CasError, CorruptObjectError, ObjectMissingError
from .hashing import digest_bytes
from .recipe import decode_recipe, encode_recipe
from .store.index import Location, ids_array
from .store.local import LocalStore, PackWriter
from .store.objects import Codec, ObjectType, compress
from .writeback import BackgroundWriter, WrittenHasher

COMPRESS_PROBE_MIN = 4096
COMPRESS_WORTH = 0.9  # keep zstd only when the probe shrinks by more than 10%


@dataclass(frozen=True)
class StoredFile:
    digest: bytes
    size: int
    chunks: int
    new_bytes: int  # bytes this call wrote to the store (after dedup and compression)
    stat: os.stat_result | None = None  # the file's stat after reading, for the stat cache


class CodecChooser:
    """Decides whether zstd pays, from a probe of the data.

    "auto" probes the first chunk of each large file (model weights and media rarely
    compress, and then cost no compression time at all). Small files are probed only every
    SMALL_REPROBE files, reusing the last verdict in between: probing each 4 KiB file of a
    20,000-file folder would cost more than storing it.
    """

    SMALL_REPROBE = 32

    def __init__(self, policy: str = "auto") -> None:
        self.policy = policy
        self._small_left = 0
        self._small_codec = Codec.NONE

    @staticmethod
    def _probe(sample: bytes | memoryview) -> Codec:
        if len(sample) < COMPRESS_PROBE_MIN:
            return Codec.NONE
        return Codec.ZSTD if len(compress(sample, Codec.ZSTD)) < COMPRESS_WORTH * len(sample) \
            else Codec.NONE

    def choose(self, sample: bytes | memoryview, *, small: bool = False) -> Codec:
        if self.policy == "none":
            return Codec.NONE
        if self.policy == "zstd":
            return Codec.ZSTD
        if not small:
            return self._probe(sample)
        if self._small_left > 0:
            self._small_left -= 1
            return self._small_codec if len(sample) >= COMPRESS_PROBE_MIN else Codec.NONE
        self._small_codec = self._probe(sample)
        self._small_left = self.SMALL_REPROBE
        return self._small_codec


class _Hasher(Protocol):
    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...


def store_file(path: str | os.PathLike[str], writer: PackWriter, chunker: Chunker, *,
               compression: str | CodecChooser = "auto",
               advance: Callable[[int], None] | None = None,
               also: _Hasher | None = None) -> StoredFile:
    """Chunk, hash and store ``path``; bytes are read once.

    ``also`` (e.g. a SHA-256) is fed the very bytes the XXH3 digest is computed from, so
    the two digests of a pointer always describe the same content, even if the file is
    appended to meanwhile (a second read could see other bytes).
    """
    chooser = compression if isinstance(compression, CodecChooser) else \
        CodecChooser(compression)
    before = writer.bytes_written
    with open(path, "rb", buffering=0) as f:
        st = os.fstat(f.fileno())
        if st.st_size < chunker.params.min:
            # Below the minimum chunk size a file is exactly one chunk: one read, one hash.
            data = f.read()
            digest = digest_bytes(data)
            if also is not None:
                also.update(data)
            writer.put(digest, ObjectType.CHUNK, data, chooser.choose(data, small=True))
            now = _check_unchanged(path, st, len(data))
            if advance:
                advance(len(data))
            return StoredFile(digest, len(data), 1, writer.bytes_written - before, now)
        whole = xxhash.xxh3_128()
        ids: list[bytes] = []
        lengths: list[int] = []
        codec: Codec | None = None
        size = 0
        for block, ends in chunker.cut_blocks(f):
            whole.update(block)
            if also is not None:
                also.update(block)
            starts = [0, *ends[:-1]]
            block_ids = [digest_bytes(block[a:b]) for a, b in zip(starts, ends, strict=True)]
            if codec is None:
                codec = chooser.choose(block[:ends[0]])
            if codec == Codec.NONE:
                writer.put_block(block, ends, block_ids, release=chunker.keep())
            else:
                for cid, a, b in zip(block_ids, starts, ends, strict=True):
                    writer.put(cid, ObjectType.CHUNK, block[a:b], codec)
            ids.extend(block_ids)
            lengths.extend(b - a for a, b in zip(starts, ends, strict=True))
            size += len(block)
            if advance:
                advance(len(block))
    now = _check_unchanged(path, st, size)
    digest = whole.digest()
    if len(ids) > 1:
        writer.put(digest, ObjectType.RECIPE, encode_recipe(ids, lengths), Codec.ZSTD)
    return StoredFile(digest, size, len(ids), writer.bytes_written - before, now)


def hash_file(path: str | os.PathLike[str], also: _Hasher) -> tuple[bytes, int]:
    """XXH3-128 and size of ``path``, feeding ``also`` the same bytes in the same pass."""
    h = xxhash.xxh3_128()
    buf = bytearray(4 << 20)
    view = memoryview(buf)
    size = 0
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
            also.update(view[:n])
            size += n
    return h.digest(), size


def _check_unchanged(path: str | os.PathLike[str], st: os.stat_result,
                     size: int) -> os.stat_result:
    now = os.stat(path)
    if size != st.st_size or now.st_size != st.st_size or now.st_mtime_ns != st.st_mtime_ns:
        raise CasError(f"{os.fspath(path)} changed while it was being added; "
                       "wait for the writer to finish, then add it again")
    return now


def chunk_list(store: LocalStore, digest: bytes, size: int) -> list[tuple[bytes, int]]:
    """The (chunk id, length) list that rebuilds a file, from its recipe or itself."""
    loc = store.locate(digest)
    if loc is None:
        raise ObjectMissingError(f"content {digest.hex()} is not in the cache")
    if loc.type == ObjectType.CHUNK:
        return [(digest, size)]
    if loc.type != ObjectType.RECIPE:
        raise CorruptObjectError(f"object {digest.hex()} is a tree where a file was expected")
    _, data = store.read(digest, verify=False)
    rows = decode_recipe(data, expect_size=size)
    return [(r["id"].tobytes(), int(r["length"])) for r in rows]


# Bytes read with one pread when a file's chunks lie back to back in a pack. Measured: 8 MiB
# runs made the kernel's copies stream through the CPU caches (1 GiB checkout 1.05 s); 1 MiB
# runs stay in them (0.62 s).
RUN_MAX = 1 << 20
WRITE_AHEAD_MIN = 8 << 20  # files from this size are written on a second thread
RANGE_MIN = 8 << 20  # files from this size are copied by the kernel (see _restore_ranges)
RANGE_PIECE = 1 << 20  # bytes per copy_file_range call, handed to the hasher as they land
# copy_file_range refused for this pair of files, not failed: no such system call (ENOSYS, or
# EPERM from a container's seccomp filter), files on two file systems on older kernels
# (EXDEV), a file system or descriptor that cannot (EOPNOTSUPP, EINVAL, EBADF). The same bytes
# then go through a buffer; anything else (EIO, ENOSPC) is a real error and is raised.
_NO_KERNEL_COPY = frozenset({errno.ENOSYS, errno.EPERM, errno.EXDEV, errno.EOPNOTSUPP,
                             errno.ENOTSUP, errno.EINVAL, errno.EBADF})


def restore_file(store: LocalStore, digest: bytes, size: int, out: BinaryIO, *,
                 advance: Callable[[int], None] | None = None) -> None:
    """Write the file's bytes to ``out``, checking the whole digest (and every chunk read
    through a buffer).

    A large file written to a regular file is copied by the kernel, range by range, from the
    packs (``_restore_ranges``). Otherwise chunks that sit back to back, uncompressed, in one
    pack (the usual layout of a file added in one go) are read with one pread per run of up to
    RUN_MAX bytes and written with one write; each chunk is verified against its id. Large
    files are then written on a second thread while the next run is read and verified.
    """
    chunks = chunk_list(store, digest, size)
    if not isinstance(store, LocalStore):
        # Other object sources (a cache plus on-demand fetches) read object by object.
        _restore_each(store, chunks, digest, size, out, advance)
        return
    if size >= RANGE_MIN and _restore_ranges(store, chunks, digest, size, out, advance):
        return
    if size >= WRITE_AHEAD_MIN:
        with BackgroundWriter(out, RUN_MAX + (1 << 20)) as writer:
            _restore_runs(store, chunks, digest, size, writer.take, writer.write, advance)
        return
    buf = bytearray(min(size, RUN_MAX + (1 << 20)))  # reused by every run

    def take(n: int) -> bytearray:
        nonlocal buf
        if n > len(buf):  # chunks bigger than the default parameters allow
            buf = bytearray(n)
        return buf

    def write(data: bytes | bytearray, length: int, *, pooled: bool) -> None:
        out.write(memoryview(data)[:length])

    _restore_runs(store, chunks, digest, size, take, write, advance)


@dataclass(frozen=True)
class _Rows:
    """Where each chunk of a file is stored, from one vectorised index lookup."""

    packs: list[str]  # pack name per chunk
    offset: list[int]
    length: list[int]  # stored length
    codec: list[int]


def _chunk_rows(store: LocalStore, chunks: list[tuple[bytes, int]], digest: bytes) -> _Rows:
    index = store.index()
    rows = index.rows_of(ids_array(cid for cid, _ in chunks))
    if len(rows) and int(rows.min()) < 0:
        missing = chunks[int(np.argmin(rows))][0]
        raise ObjectMissingError(f"chunk {missing.hex()} of {digest.hex()} is not in the cache")
    if len(rows) and int(index.type[rows].max()) != ObjectType.CHUNK:
        raise CorruptObjectError(f"the recipe of {digest.hex()} names an object that is not a "
                                 "chunk; run 'cas fsck'")
    names = index.packs
    return _Rows([names[p] for p in index.pack[rows].tolist()], index.offset[rows].tolist(),
                 index.length[rows].tolist(), index.codec[rows].tolist())


def _file_fd(out: BinaryIO) -> int | None:
    """The descriptor behind ``out`` if it is a regular file, else None (a pipe, a hashing
    wrapper, an in-memory buffer)."""
    fileno = getattr(out, "fileno", None)
    if fileno is None:
        return None
    try:
        fd = fileno()
        return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return None


def _restore_ranges(store: LocalStore, chunks: list[tuple[bytes, int]], digest: bytes,
                    size: int, out: BinaryIO, advance: Callable[[int], None] | None) -> bool:
    """Rebuild the file with the kernel copying pack ranges into it; False if ``out`` cannot
    be written this way (nothing was written then, and the caller uses the buffered path).

    Consecutive uncompressed chunks stored back to back in one pack are one byte range: one
    ``copy_file_range`` per RANGE_PIECE moves them from the pack's page cache to the file's,
    with no copy through this process (file systems that share extents may not copy at all).
    Compressed chunks are read, verified and written at their offset. The bytes are then
    verified where it matters, in the file itself: a second thread hashes what the file holds
    right behind the copies (``WrittenHasher``, read back from the page cache), and the digest
    must equal the pointer's before the caller may rename the file into place. Chunks are not
    hashed one by one on this path: the whole-file digest covers every byte of every chunk,
    and on a mismatch the damaged chunk is looked for, to name it.
    """
    fd = _file_fd(out)
    if fd is None:
        return False
    out.flush()
    start = os.lseek(fd, 0, os.SEEK_CUR)
    if os.fstat(fd).st_size != start:
        return False  # not appending at the end: keep the plain writes
    rows = _chunk_rows(store, chunks, digest)
    try:
        hasher = WrittenHasher(fd, start)
    except OSError:
        return False  # no /proc to read the file back through: keep the plain writes
    copier = _RangeCopier(fd)
    with hasher:
        pos = start
        i, n = 0, len(chunks)
        while i < n:
            if rows.codec[i] == Codec.NONE:
                j, end = i, rows.offset[i]
                while (j < n and rows.packs[j] == rows.packs[i] and rows.codec[j] == Codec.NONE
                       and rows.offset[j] == end):
                    if rows.length[j] != chunks[j][1]:
                        raise CorruptObjectError(
                            f"chunk {chunks[j][0].hex()} has the wrong length in the index; "
                            "run 'cas fsck'")
                    end += rows.length[j]
                    j += 1
                loc = Location(rows.packs[i], ObjectType.CHUNK, Codec.NONE, end - rows.offset[i],
                               rows.offset[i], end - rows.offset[i])
                src = store.range_fd(loc)
                for a in range(loc.offset, end, RANGE_PIECE):
                    count = min(RANGE_PIECE, end - a)
                    copier.copy(src, a, count, pos, loc.pack)
                    pos += count
                    hasher.written(pos)
                    if advance:
                        advance(count)
                i = j
            else:
                cid, want = chunks[i]
                _, data = store.read(cid)
                if len(data) != want:
                    raise CorruptObjectError(f"chunk {cid.hex()} has the wrong length")
                _pwrite_all(fd, data, pos)
                pos += want
                hasher.written(pos)
                if advance:
                    advance(want)
                i += 1
        whole, hashed = hasher.digest()
    if pos - start != size or hashed != pos or whole != digest:
        _name_damage(store, chunks)
        raise CorruptObjectError(f"rebuilt content does not match digest {digest.hex()}")
    os.lseek(fd, pos, os.SEEK_SET)  # where the plain writes would have left it
    return True


class _RangeCopier:
    """Copies byte ranges from packs into one file: ``copy_file_range`` where the kernel
    accepts it, else pread + pwrite through one reused buffer."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.kernel = hasattr(os, "copy_file_range")
        self._buf: bytearray | None = None

    def copy(self, src: int, offset: int, count: int, dest: int, pack: str) -> None:
        while count:
            done = -1
            if self.kernel:
                try:
                    done = os.copy_file_range(src, self.fd, count, offset, dest)
                except OSError as exc:
                    if exc.errno not in _NO_KERNEL_COPY:
                        raise
                    self.kernel = False  # this pair of files never will; nothing was copied
            if done < 0:
                if self._buf is None:
                    self._buf = bytearray(RANGE_PIECE)
                view = memoryview(self._buf)[:min(count, len(self._buf))]
                done = os.preadv(src, [view], offset)
                _pwrite_all(self.fd, view[:done], dest)
            if done == 0:
                raise CorruptObjectError(f"pack {pack} is truncated")
            offset, dest, count = offset + done, dest + done, count - done


def _pwrite_all(fd: int, data: bytes | bytearray | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def _name_damage(store: LocalStore, chunks: list[tuple[bytes, int]]) -> None:
    """After a digest mismatch: raise the error naming the first damaged chunk, if one is."""
    seen: set[bytes] = set()
    for cid, want in chunks:
        if cid in seen:
            continue
        seen.add(cid)
        _, data = store.read(cid)  # raises, naming the object and its pack, on a mismatch
        if len(data) != want:
            raise CorruptObjectError(f"chunk {cid.hex()} has the wrong length")


def _restore_runs(store: LocalStore, chunks: list[tuple[bytes, int]], digest: bytes,
                  size: int, take: Callable[[int], bytearray],
                  write: Callable[..., None], advance: Callable[[int], None] | None) -> None:
    rows = _chunk_rows(store, chunks, digest)
    pack, offset, length, codec = rows.packs, rows.offset, rows.length, rows.codec
    whole = xxhash.xxh3_128()
    written = 0
    i, n = 0, len(chunks)
    while i < n:
        j, end = i + 1, offset[i] + length[i]
        if codec[i] == Codec.NONE:
            while (j < n and pack[j] == pack[i] and codec[j] == Codec.NONE
                   and offset[j] == end and end - offset[i] < RUN_MAX):
                end += length[j]
                j += 1
            loc = Location(pack[i], ObjectType.CHUNK, Codec.NONE, end - offset[i],
                           offset[i], end - offset[i])
            buf = take(loc.length)
            view = store.read_raw_into(loc, buf)
            pos = 0
            for k in range(i, j):
                cid, want = chunks[k]
                if length[k] != want or digest_bytes(view[pos:pos + want]) != cid:
                    raise CorruptObjectError(
                        f"object {cid.hex()} in pack {loc.pack} is corrupt (hash mismatch)")
                pos += want
            whole.update(view)
            write(buf, loc.length, pooled=True)
            count = loc.length
        else:
            cid, want = chunks[i]
            _, data = store.read(cid)
            if len(data) != want:
                raise CorruptObjectError(f"chunk {cid.hex()} has the wrong length")
            whole.update(data)
            write(data, len(data), pooled=False)
            count = len(data)
        written += count
        if advance:
            advance(count)
        i = j
    _check_rebuilt(whole, written, size, digest)


def _restore_each(store: LocalStore, chunks: list[tuple[bytes, int]], digest: bytes, size: int,
                  out: BinaryIO, advance: Callable[[int], None] | None) -> None:
    whole = xxhash.xxh3_128()
    written = 0
    for cid, length in chunks:
        _, data = store.read(cid)
        if len(data) != length:
            raise CorruptObjectError(f"chunk {cid.hex()} has the wrong length")
        whole.update(data)
        out.write(data)
        written += length
        if advance:
            advance(length)
    _check_rebuilt(whole, written, size, digest)


def _check_rebuilt(whole: xxhash.xxh3_128, written: int, size: int, digest: bytes) -> None:
    """The last line of defence: the rebuilt bytes must be the file the pointer names."""
    if written != size or whole.digest() != digest:
        raise CorruptObjectError(f"rebuilt content does not match digest {digest.hex()}")
