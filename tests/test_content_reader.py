"""ContentReader: byte ranges of stored files, read chunk by chunk from the cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_random

from casstore.reader import ContentReader, same_chunks
from casstore.repo import Repo


@pytest.fixture
def stored(repo: Path, cas) -> tuple[Repo, bytes, object]:
    data = write_random(repo / "blob.bin", 3_000_000, seed=7)
    cas("add", "blob.bin")
    r = Repo(repo)
    ptr = r.load_pointer(repo / "blob.bin.cas")
    yield r, data, ptr
    r.close()


def test_read_at_matches_the_file_at_every_boundary(stored) -> None:
    r, data, ptr = stored
    rd = ContentReader(r.cache, ptr.digest, ptr.size)
    assert len(rd.ids) == ptr.chunks > 10
    cuts = [int(x) for x in rd.ends[:5]]
    for off, n in [(0, 8), (0, ptr.size), (cuts[0] - 3, 7), (cuts[1], 1),
                   (ptr.size - 5, 100), (ptr.size, 10), (12345, 400_000)]:
        assert rd.read_at(off, n) == data[off:off + n]


def test_small_reads_fetch_only_the_covering_chunks(stored) -> None:
    r, data, ptr = stored
    rd = ContentReader(r.cache, ptr.digest, ptr.size)
    rd.read_at(0, 8)
    rd.read_at(8, 100)
    assert rd.chunks_read == 1
    rd.read_at(ptr.size - 10, 10)
    assert rd.chunks_read == 2


def test_file_object_seeks_and_reads(stored) -> None:
    r, data, ptr = stored
    f = ContentReader(r.cache, ptr.digest, ptr.size).open()
    f.seek(-1000, 2)
    assert f.read() == data[-1000:]
    f.seek(500_000)
    assert f.read(70_000) == data[500_000:570_000]
    assert f.tell() == 570_000


def test_same_chunks_proves_equality_only_for_aligned_identical_chunks(stored) -> None:
    r, data, ptr = stored
    a = ContentReader(r.cache, ptr.digest, ptr.size)
    b = ContentReader(r.cache, ptr.digest, ptr.size)
    assert same_chunks(a, b, 100, 100, 200_000) is True
    assert same_chunks(a, b, 100, 101, 200_000) is None
