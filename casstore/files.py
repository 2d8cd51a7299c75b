"""Storing one file as chunks (plus a recipe) and rebuilding it, verified, from a store."""

from __future__ import annotations

import os
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
from .writeback import BackgroundWriter

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


def restore_file(store: LocalStore, digest: bytes, size: int, out: BinaryIO, *,
                 advance: Callable[[int], None] | None = None) -> None:
    """Write the file's bytes to ``out``, checking every chunk and the whole digest.

    Chunks that sit back to back, uncompressed, in one pack (the usual layout of a file added
    in one go) are read with one pread per run of up to RUN_MAX bytes and written with one
    write; each chunk is still verified against its id. Large files are written on a second
    thread while the next run is read and verified.
    """
    chunks = chunk_list(store, digest, size)
    if not isinstance(store, LocalStore):
        # Other object sources (a cache plus on-demand fetches) read object by object.
        _restore_each(store, chunks, digest, size, out, advance)
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


def _restore_runs(store: LocalStore, chunks: list[tuple[bytes, int]], digest: bytes,
                  size: int, take: Callable[[int], bytearray],
                  write: Callable[..., None], advance: Callable[[int], None] | None) -> None:
    index = store.index()
    rows = index.rows_of(ids_array(cid for cid, _ in chunks))
    if len(rows) and int(rows.min()) < 0:
        missing = chunks[int(np.argmin(rows))][0]
        raise ObjectMissingError(f"chunk {missing.hex()} of {digest.hex()} is not in the cache")
    pack, offset = index.pack[rows].tolist(), index.offset[rows].tolist()
    length, codec = index.length[rows].tolist(), index.codec[rows].tolist()
    if len(rows) and int(index.type[rows].max()) != ObjectType.CHUNK:
        raise CorruptObjectError(f"the recipe of {digest.hex()} names an object that is not a "
                                 "chunk; run 'cas fsck'")
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
            loc = Location(index.packs[pack[i]], ObjectType.CHUNK, Codec.NONE, end - offset[i],
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
