"""casstore.open and cas:// on a fresh clone whose cache is empty: data comes from the remote."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import git, run_cas, write_random

import casstore
from casstore.repo import Repo


@pytest.fixture
def pushed(repo: Path, cas, tmp_path: Path) -> tuple[Path, bytes, bytes]:
    remote = tmp_path / "remote"
    remote.mkdir()
    cas("remote", "add", "origin", str(remote), "--default")
    model = write_random(repo / "model.bin", 3_000_000, seed=1)
    train = write_random(repo / "data" / "train.bin", 500_000, seed=2)
    cas("add", "model.bin", "data")
    cas("push")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v1")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    return clone, model, train


def test_open_on_an_empty_cache_reads_only_what_it_needs(pushed) -> None:
    clone, model, train = pushed
    with Repo(clone) as r:
        assert not r.cache.list_packs()
        with casstore.open("model.bin", repo=r) as f:
            f.seek(2_000_000)
            assert f.read(1000) == model[2_000_000:2_001_000]
            assert 1 <= f.reader.chunks_read <= 2
        r.cache.invalidate()
        held = len(r.cache.index())
        ptr = r.load_pointer(clone / "model.bin.cas")
        assert held <= 2 < (ptr.chunks or 0)
        assert not r.cache.has(ptr.digest)  # no recipe for a file it holds a part of
        with casstore.open("data/train.bin", repo=r) as f:
            assert f.read() == train


def test_fsspec_reads_through_the_remote_and_pull_completes_the_cache(pushed) -> None:
    clone, model, _ = pushed
    import fsspec

    fs = fsspec.filesystem("cas", repo=str(clone), rev="HEAD", skip_instance_cache=True)
    assert fs.cat_file("model.bin", 100, 200) == model[100:200]
    assert fs.ls("data", detail=False) == ["data/train.bin"]
    # A later pull still works and completes the cache.
    run_cas(clone, "pull")
    assert (clone / "model.bin").read_bytes() == model
    assert run_cas(clone, "fsck").returncode == 0
