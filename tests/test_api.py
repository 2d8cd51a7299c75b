"""casstore.open and the object sources behind it, used as a library (no CLI)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from conftest import git, write_random

import casstore
from casstore import sources
from casstore.repo import Repo
from casstore.sources import StoreBackend


@pytest.fixture
def lib_repo(tmp_path: Path) -> Path:
    root = tmp_path / "lib"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    Repo.init(root).close()
    return root


def _commit(root: Path, msg: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", msg)


def test_open_reads_seeks_and_closes(lib_repo: Path) -> None:
    data = write_random(lib_repo / "model.pth", 2_000_000, seed=1)
    with Repo(lib_repo) as r:
        r.add([lib_repo / "model.pth"])
    with casstore.open("model.pth", repo=lib_repo) as f:
        assert f.readable() and f.seekable() and not f.writable()
        assert f.read(10) == data[:10]
        f.seek(1_500_000)
        assert f.tell() == 1_500_000
        buf = bytearray(1000)
        assert f.readinto(buf) == 1000 and bytes(buf) == data[1_500_000:1_501_000]
        f.seek(-5, io.SEEK_END)
        assert f.read() == data[-5:]
        assert f.read() == b""
    assert f.closed
    with pytest.raises(ValueError):
        f.read(1)


def test_open_at_a_revision_without_checkout(lib_repo: Path) -> None:
    v1 = write_random(lib_repo / "model.pth", 700_000, seed=1)
    (lib_repo / "data").mkdir()
    t1 = write_random(lib_repo / "data" / "train.bin", 300_000, seed=2)
    with Repo(lib_repo) as r:
        r.add([lib_repo / "model.pth", lib_repo / "data"])
    _commit(lib_repo, "v1")
    git(lib_repo, "tag", "v1")
    v2 = write_random(lib_repo / "model.pth", 800_000, seed=3)
    t2 = write_random(lib_repo / "data" / "train.bin", 200_000, seed=4)
    with Repo(lib_repo) as r:
        r.add([lib_repo / "model.pth", lib_repo / "data"])
    _commit(lib_repo, "v2")
    with casstore.open("model.pth", rev="v1", repo=lib_repo) as f:
        assert f.read() == v1
    with casstore.open("model.pth", rev="main", repo=lib_repo) as f:
        assert f.read() == v2
    with casstore.open("data/train.bin", rev="v1", repo=lib_repo) as f:
        assert f.read() == t1
    # The workspace (no rev) follows the pointers on disk.
    with casstore.open(lib_repo / "data" / "train.bin", repo=lib_repo) as f:
        assert f.read() == t2


def test_open_refuses_what_it_cannot_read(lib_repo: Path) -> None:
    (lib_repo / "data").mkdir()
    write_random(lib_repo / "data" / "a.bin", 1000, seed=1)
    (lib_repo / "plain.txt").write_text("not tracked")
    with Repo(lib_repo) as r:
        r.add([lib_repo / "data"])
    with pytest.raises(casstore.PathError, match="not tracked"):
        casstore.open("plain.txt", repo=lib_repo)
    with pytest.raises(casstore.PathError, match="folder"):
        casstore.open("data", repo=lib_repo)
    with pytest.raises(casstore.PathError, match="not in tracked folder"):
        casstore.open("data/b.bin", repo=lib_repo)
    with pytest.raises(casstore.UsageError, match="read-only"):
        casstore.open("data/a.bin", repo=lib_repo, mode="wb")
    with pytest.raises(casstore.CasError, match="unknown Git revision"):
        casstore.open("data/a.bin", repo=lib_repo, rev="no-such-branch")


def test_small_reads_decode_only_the_chunks_they_cover(lib_repo: Path) -> None:
    data = write_random(lib_repo / "big.bin", 4_000_000, seed=5)
    with Repo(lib_repo) as r:
        r.add([lib_repo / "big.bin"])
        chunks = r.load_pointer(lib_repo / "big.bin.cas").chunks
    assert chunks is not None and chunks > 20
    with casstore.open("big.bin", repo=lib_repo) as f:
        f.seek(2_000_000)
        assert f.read(100) == data[2_000_000:2_000_100]
        assert f.read(100) == data[2_000_100:2_000_200]
        # 200 bytes lie in one chunk, or two when a boundary falls inside them.
        assert 1 <= f.reader.chunks_read <= 2
        covering = f.reader.span(2_000_000, 200)[1]
        assert f.reader.chunks_read == len(covering)


def test_missing_chunks_come_from_a_backend_and_stay_in_the_cache(
        lib_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_random(lib_repo / "big.bin", 3_000_000, seed=6)
    with Repo(lib_repo) as r:
        r.add([lib_repo / "big.bin"])
    _commit(lib_repo, "data")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(lib_repo), str(clone))
    origin = Repo(lib_repo)
    # Stand in for a remote: the first repository's cache serves the clone.
    monkeypatch.setattr(sources, "remote_backend",
                        lambda repo, remote=None: StoreBackend(origin.cache))
    try:
        with Repo(clone) as r:
            assert not r.cache.list_packs()
            with casstore.open("big.bin", repo=r) as f:
                f.seek(1_000_000)
                assert f.read(10) == data[1_000_000:1_000_010]
                assert f.reader.chunks_read <= 2
            r.cache.invalidate()
            chunks = [oid for oid in r.cache.index().ids()]
            ptr = r.load_pointer(clone / "big.bin.cas")
            # Only the chunks read were fetched; the recipe stays out of the cache, which
            # must not claim it can rebuild a file it holds only part of.
            assert 1 <= len(chunks) <= 2
            assert not r.cache.has(ptr.digest)
            assert r.status()[0].states == ["missing", "not in cache"]
            with casstore.open("big.bin", repo=r) as f:
                assert f.read() == data
    finally:
        origin.close()


def test_ensure_writes_recipes_only_after_their_chunks(lib_repo: Path, tmp_path: Path) -> None:
    from casstore.reachability import Root
    from casstore.sources import ObjectSource

    data = write_random(lib_repo / "big.bin", 1_500_000, seed=7)
    with Repo(lib_repo) as r:
        r.add([lib_repo / "big.bin"])
        ptr = r.load_pointer(lib_repo / "big.bin.cas")
        (tmp_path / "other").mkdir()
        other = Repo.init(tmp_path / "other")
        with Repo(lib_repo) as origin:
            src = ObjectSource(other.cache, StoreBackend(origin.cache))
            fetched = src.ensure([Root(ptr.digest, "file", ptr.size, "big.bin")])
        assert fetched == (ptr.chunks or 0) + 1
        assert other.cache.has(ptr.digest) and not src.memory
        out = io.BytesIO()
        from casstore.files import restore_file

        restore_file(other.cache, ptr.digest, ptr.size, out)
        assert out.getvalue() == data
        other.close()


def test_zip_archives_read_through_open_like_torch_load_does(lib_repo: Path) -> None:
    # torch.save writes a zip archive and torch.load reads it with seeks: zipfile does too.
    import pickle
    import zipfile

    import numpy as np

    weights = np.random.default_rng(0).standard_normal(300_000).astype(np.float32)
    (lib_repo / "models").mkdir()
    with zipfile.ZipFile(lib_repo / "models" / "ckpt.zip", "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"epoch": 3}))
        z.writestr("archive/data/0", weights.tobytes())
    with Repo(lib_repo) as r:
        r.add([lib_repo / "models" / "ckpt.zip"])
    _commit(lib_repo, "ckpt")
    (lib_repo / "models" / "ckpt.zip").unlink()  # no workspace copy needed
    with Repo(lib_repo) as r, r.open("models/ckpt.zip", rev="HEAD") as f, \
            zipfile.ZipFile(f) as z:
        assert pickle.loads(z.read("archive/data.pkl")) == {"epoch": 3}
        got = np.frombuffer(z.read("archive/data/0"), dtype=np.float32)
        assert np.array_equal(got, weights)
