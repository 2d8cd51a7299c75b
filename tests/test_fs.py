"""The cas:// fsspec filesystem: listing, info, byte ranges and pandas at two revisions."""

from __future__ import annotations

from pathlib import Path

import fsspec
import pytest
from conftest import git, write_random

from casstore.fs import CasFileSystem
from casstore.repo import Repo
from casstore.store.local import LocalStore
from casstore.store.objects import ObjectType

pd = pytest.importorskip("pandas")


def _commit(root: Path, msg: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", msg)


@pytest.fixture
def two_revisions(repo: Path) -> tuple[Path, object, object]:
    (repo / "data").mkdir()
    df1 = pd.DataFrame({"x": range(1000), "y": [i * 0.5 for i in range(1000)]})
    df1.to_parquet(repo / "data" / "train.parquet")
    (repo / "data" / "notes").mkdir()
    (repo / "data" / "notes" / "readme.txt").write_text("first\n")
    write_random(repo / "model.pth", 1_200_000, seed=1)
    with Repo(repo) as r:
        r.add([repo / "data", repo / "model.pth"])
    _commit(repo, "v1")
    git(repo, "tag", "v1")
    df2 = pd.DataFrame({"x": range(5), "z": ["a", "b", "c", "d", "e"]})
    df2.to_parquet(repo / "data" / "train.parquet")
    with Repo(repo) as r:
        r.add([repo / "data"])
    _commit(repo, "v2")
    return repo, df1, df2


def test_pandas_reads_parquet_at_two_revisions(two_revisions) -> None:
    repo, df1, df2 = two_revisions
    old = pd.read_parquet("cas://data/train.parquet",
                          storage_options={"repo": str(repo), "rev": "v1"})
    new = pd.read_parquet("cas://data/train.parquet",
                          storage_options={"repo": str(repo), "rev": "main"})
    pd.testing.assert_frame_equal(old, df1)
    pd.testing.assert_frame_equal(new, df2)


def test_fsspec_open_listing_and_info(two_revisions) -> None:
    repo, _, _ = two_revisions
    with fsspec.open("cas://model.pth", rev="v1", repo=str(repo)) as f:
        assert f.read() == (repo / "model.pth").read_bytes()
    fs = fsspec.filesystem("cas", repo=str(repo), rev="v1")
    assert isinstance(fs, CasFileSystem)
    assert fs.ls("", detail=False) == ["data", "model.pth"]
    assert fs.ls("data", detail=False) == ["data/notes", "data/train.parquet"]
    assert fs.ls("data/notes", detail=False) == ["data/notes/readme.txt"]
    assert fs.cat_file("data/notes/readme.txt") == b"first\n"
    info = fs.info("data/train.parquet")
    assert info["type"] == "file" and info["size"] > 0 and len(info["xxh128"]) == 32
    assert fs.info("data")["type"] == "directory"
    assert fs.isdir("data/notes") and fs.isfile("model.pth")
    assert not fs.exists("data/none.csv")
    with pytest.raises(FileNotFoundError):
        fs.info("nothing/here")
    with pytest.raises(PermissionError):
        fs.open("model.pth", "wb")
    # The same file at another revision has another digest.
    assert fs.ukey("data/train.parquet") != CasFileSystem(
        repo=str(repo), rev="main").ukey("data/train.parquet")


def test_range_reads_decode_only_covering_chunks(repo: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_random(repo / "big.bin", 6_000_000, seed=2)
    with Repo(repo) as r:
        r.add([repo / "big.bin"])
        chunks = r.load_pointer(repo / "big.bin.cas").chunks
    assert chunks is not None and chunks > 40
    counts = {"chunk": 0}
    real_read = LocalStore.read

    def counting_read(self: LocalStore, oid: bytes, *, verify: bool = True):
        otype, out = real_read(self, oid, verify=verify)
        if otype == ObjectType.CHUNK:
            counts["chunk"] += 1
        return otype, out

    monkeypatch.setattr(LocalStore, "read", counting_read)
    fs = CasFileSystem(repo=str(repo), skip_instance_cache=True)
    assert fs.cat_file("big.bin", start=3_000_000, end=3_000_010) == data[3_000_000:3_000_010]
    assert 1 <= counts["chunk"] <= 2
    counts["chunk"] = 0
    assert fs.cat_file("big.bin", start=-100) == data[-100:]
    assert counts["chunk"] <= 2
    counts["chunk"] = 0
    # About 1 MiB in the middle: its covering chunks, not the 6 MB file.
    assert fs.cat_file("big.bin", 2_000_000, 3_000_000) == data[2_000_000:3_000_000]
    assert counts["chunk"] < chunks / 3
    counts["chunk"] = 0
    with fs.open("big.bin") as f:
        f.seek(5_000_000)
        assert f.read(1000) == data[5_000_000:5_001_000]
    assert 1 <= counts["chunk"] <= 2
