"""Checkout of large files by kernel copies of pack ranges (files._restore_ranges).

The range path is forced on small files here (RANGE_MIN lowered, RANGE_PIECE small so that
one run takes several copies); the command-line tests use a file above the real threshold.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import write_random

from casstore import files
from casstore.chunker import Chunker
from casstore.errors import CorruptObjectError
from casstore.files import CodecChooser, chunk_list, restore_file, store_file
from casstore.store.local import LocalStore
from casstore.store.objects import Codec

MiB = 1 << 20


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStore]:
    s = LocalStore(tmp_path / "cache", fsync=False)
    s.ensure()
    yield s
    s.close()


@pytest.fixture
def ranges(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every file takes the range path in small pieces; returns the byte counts the kernel
    was asked to copy, one per call."""
    monkeypatch.setattr(files, "RANGE_MIN", 0)
    monkeypatch.setattr(files, "RANGE_PIECE", 96 << 10)
    calls: list[int] = []
    real = os.copy_file_range

    def counting(src: int, dst: int, count: int, offset_src: int | None = None,
                 offset_dst: int | None = None) -> int:
        calls.append(count)
        return real(src, dst, count, offset_src, offset_dst)

    monkeypatch.setattr(os, "copy_file_range", counting)
    return calls


def add(store: LocalStore, path: Path, compression: str = "none") -> files.StoredFile:
    with store.writer() as w:
        stored = store_file(path, w, Chunker(), compression=CodecChooser(compression))
    store.invalidate()
    return stored


def restore(store: LocalStore, stored: files.StoredFile, dest: Path) -> bytes:
    with open(dest, "xb") as out:
        restore_file(store, stored.digest, stored.size, out)
    return dest.read_bytes()


def compressible(size: int, seed: int) -> bytes:
    # Sixteen byte values: zstd halves it, and content-defined cuts still find boundaries.
    return np.random.default_rng(seed).integers(0, 16, size, dtype=np.uint8).tobytes()


def codecs_of(store: LocalStore, stored: files.StoredFile) -> list[int]:
    locs = [store.locate(cid) for cid, _ in chunk_list(store, stored.digest, stored.size)]
    return [int(loc.codec) for loc in locs if loc is not None]


def test_uncompressed_file_is_copied_by_the_kernel_byte_identical(
        store: LocalStore, tmp_path: Path, ranges: list[int]) -> None:
    data = write_random(tmp_path / "model.bin", 3 * MiB, seed=1)
    stored = add(store, tmp_path / "model.bin")
    assert stored.chunks > 10
    assert restore(store, stored, tmp_path / "out.bin") == data
    # One pack, chunks back to back: copies of whole pieces, not one per chunk.
    assert sum(ranges) == len(data) and len(ranges) < stored.chunks


def test_mixed_compressed_and_uncompressed_chunks(store: LocalStore, tmp_path: Path,
                                                  ranges: list[int]) -> None:
    first = compressible(2 * MiB, seed=2)
    (tmp_path / "a.bin").write_bytes(first)
    add(store, tmp_path / "a.bin", compression="zstd")  # its chunks are stored compressed
    # Same first half, then new random bytes stored raw: one file, both kinds of chunk.
    data = first[:MiB] + np.random.default_rng(3).bytes(2 * MiB) + first[:300_000]
    (tmp_path / "b.bin").write_bytes(data)
    stored = add(store, tmp_path / "b.bin")
    kinds = codecs_of(store, stored)
    assert Codec.ZSTD in kinds and Codec.NONE in kinds
    assert restore(store, stored, tmp_path / "out.bin") == data
    assert 0 < sum(ranges) < len(data)  # compressed chunks were written, not copied


def test_chunk_repeated_inside_a_file(store: LocalStore, tmp_path: Path,
                                      ranges: list[int]) -> None:
    rng = np.random.default_rng(4)
    block, tail = rng.bytes(MiB), rng.bytes(MiB)
    data = block + tail + block + block  # the repeats point back into the pack
    (tmp_path / "r.bin").write_bytes(data)
    stored = add(store, tmp_path / "r.bin")
    ids = [cid for cid, _ in chunk_list(store, stored.digest, stored.size)]
    assert len(set(ids)) < len(ids)
    assert restore(store, stored, tmp_path / "out.bin") == data
    assert sum(ranges) == len(data)  # the repeated ranges are copied again, from the pack


def _flip_byte_in_pack(store: LocalStore, needle: bytes) -> None:
    pack = next(store.packs_dir.rglob("*.pack"))
    raw = bytearray(pack.read_bytes())
    pos = raw.find(needle)
    assert pos > 0
    raw[pos + len(needle) // 2] ^= 0x40
    pack.write_bytes(bytes(raw))
    store.close()  # drop the cached descriptor: the next read opens the damaged pack


def test_damaged_pack_byte_is_named_and_nothing_is_accepted(
        store: LocalStore, tmp_path: Path, ranges: list[int]) -> None:
    data = write_random(tmp_path / "model.bin", 3 * MiB, seed=5)
    stored = add(store, tmp_path / "model.bin")
    _flip_byte_in_pack(store, data[2 * MiB:2 * MiB + 64])
    with pytest.raises(CorruptObjectError, match="hash mismatch") as info:
        restore(store, stored, tmp_path / "out.bin")
    assert "\n" not in str(info.value)
    assert ranges  # the damage went through a kernel copy and was caught after it


def test_what_the_file_holds_is_verified_not_what_was_asked(
        store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file system whose copy_file_range writes wrong bytes (such bugs have shipped) is
    caught: the digest is computed from the written file, and the chunks are intact."""
    monkeypatch.setattr(files, "RANGE_MIN", 0)
    write_random(tmp_path / "model.bin", 2 * MiB, seed=6)
    stored = add(store, tmp_path / "model.bin")
    real = os.copy_file_range

    def faulty(src: int, dst: int, count: int, offset_src: int | None = None,
               offset_dst: int | None = None) -> int:
        done = real(src, dst, count, offset_src, offset_dst)
        assert offset_dst is not None
        os.pwrite(dst, b"\0", offset_dst + done // 2)
        return done

    monkeypatch.setattr(os, "copy_file_range", faulty)
    with pytest.raises(CorruptObjectError, match="rebuilt content does not match"):
        restore(store, stored, tmp_path / "out.bin")


@pytest.mark.parametrize("code", [errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM])
def test_refused_kernel_copy_falls_back_to_reads_and_writes(
        store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    monkeypatch.setattr(files, "RANGE_MIN", 0)
    monkeypatch.setattr(files, "RANGE_PIECE", 96 << 10)
    first = compressible(MiB, seed=7)
    (tmp_path / "a.bin").write_bytes(first)
    add(store, tmp_path / "a.bin", compression="zstd")
    data = first[:500_000] + np.random.default_rng(8).bytes(2 * MiB)
    (tmp_path / "b.bin").write_bytes(data)
    stored = add(store, tmp_path / "b.bin")
    calls: list[int] = []

    def refusing(src: int, dst: int, count: int, offset_src: int | None = None,
                 offset_dst: int | None = None) -> int:
        calls.append(count)
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "copy_file_range", refusing)
    assert restore(store, stored, tmp_path / "out.bin") == data
    assert len(calls) == 1  # asked once per file, then the buffer path for the rest


def test_real_copy_errors_are_raised_not_hidden(store: LocalStore, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "RANGE_MIN", 0)
    write_random(tmp_path / "model.bin", MiB, seed=9)
    stored = add(store, tmp_path / "model.bin")

    def full(*args: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "copy_file_range", full)
    with pytest.raises(OSError) as info:
        restore(store, stored, tmp_path / "out.bin")
    assert info.value.errno == errno.ENOSPC


def test_output_that_is_not_a_regular_file_uses_the_buffered_path(
        store: LocalStore, tmp_path: Path, ranges: list[int]) -> None:
    data = write_random(tmp_path / "model.bin", 2 * MiB, seed=10)
    stored = add(store, tmp_path / "model.bin")
    r, w = os.pipe()
    got = bytearray()
    import threading

    def drain() -> None:
        with os.fdopen(r, "rb") as f:
            got.extend(f.read())

    t = threading.Thread(target=drain)
    t.start()
    with os.fdopen(w, "wb") as out:
        restore_file(store, stored.digest, stored.size, out)
    t.join()
    assert bytes(got) == data and not ranges


# --- through the command: the real threshold, the real temp file and rename -------------

def test_checkout_of_a_damaged_large_file_leaves_the_old_file_in_place(
        repo: Path, cas: Callable[..., object]) -> None:
    size = files.RANGE_MIN + 3 * MiB
    data = write_random(repo / "big.bin", size, seed=11)
    cas("add", "big.bin")
    old = write_random(repo / "big.bin", size, seed=12)  # a local edit, not in the cache
    cache = LocalStore(repo / ".cas" / "cache")
    _flip_byte_in_pack(cache, data[size - MiB:size - MiB + 64])
    r = cas("checkout", "--force", "big.bin", check=False)
    assert r.returncode == 1  # type: ignore[attr-defined]
    err = r.stderr  # type: ignore[attr-defined]
    assert "corrupt" in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert (repo / "big.bin").read_bytes() == old
    assert not list(repo.glob(".cas-tmp*"))
    assert not [p for p in (repo / ".cas" / "tmp").rglob("*") if p.is_file()
                and p.name != "lock"]


def test_checkout_of_a_large_file_restores_it(repo: Path, cas: Callable[..., object]) -> None:
    data = write_random(repo / "big.bin", files.RANGE_MIN + 5 * MiB + 17, seed=13)
    cas("add", "big.bin")
    (repo / "big.bin").unlink()
    cas("checkout")
    assert (repo / "big.bin").read_bytes() == data
    r = cas("status")
    assert "modified" not in r.stdout and "missing" not in r.stdout  # type: ignore[attr-defined]
