"""Real clients of the cas:// filesystem: DuckDB, pyarrow.dataset, pandas and Dask read a
tracked folder of Parquet files, in the working tree and at a Git revision, and each result
is checked against the original files."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import git, run_cas

duckdb = pytest.importorskip("duckdb")
fsspec = pytest.importorskip("fsspec")


def _write_parts(folder: Path, seed: int, n: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    frames = []
    for i in range(n):
        df = pd.DataFrame({"id": np.arange(i * 1000, i * 1000 + 1000, dtype=np.int64),
                           "x": rng.random(1000), "part": i})
        df.to_parquet(folder / f"part{i}.parquet", index=False)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df[["id", "x", "part"]].sort_values("id").reset_index(drop=True)


@pytest.fixture
def versions(repo: Path) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    """ds/ tracked at tag v1 (3 parts, seed 1) and in the working tree (4 parts, seed 2);
    the workspace copy of the data is deleted, so every read goes through casstore."""
    v1 = _write_parts(repo / "ds", seed=1)
    run_cas(repo, "add", "ds")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "v1")
    git(repo, "tag", "v1")
    shutil.rmtree(repo / "ds")
    now = _write_parts(repo / "ds", seed=2, n=4)
    run_cas(repo, "add", "ds")
    shutil.rmtree(repo / "ds")
    return repo, v1, now


def test_duckdb_reads_a_glob(versions: tuple[Path, pd.DataFrame, pd.DataFrame]) -> None:
    repo, v1, now = versions
    for rev, want in ((None, now), ("v1", v1)):
        con = duckdb.connect()
        con.register_filesystem(fsspec.filesystem("cas", repo=str(repo), rev=rev,
                                                  skip_instance_cache=True))
        got = con.sql("select id, x, part from read_parquet('cas://ds/*.parquet')").df()
        pd.testing.assert_frame_equal(_sorted(got), _sorted(want), check_dtype=False)
        con.close()


def test_pyarrow_dataset(versions: tuple[Path, pd.DataFrame, pd.DataFrame]) -> None:
    import pyarrow.dataset as pads

    repo, v1, now = versions
    for rev, want in ((None, now), ("v1", v1)):
        fs = fsspec.filesystem("cas", repo=str(repo), rev=rev, skip_instance_cache=True)
        ds = pads.dataset("ds", filesystem=fs, format="parquet")
        assert sorted(Path(f).name for f in ds.files) == sorted(
            f"part{i}.parquet" for i in range(len(want) // 1000))
        pd.testing.assert_frame_equal(_sorted(ds.to_table().to_pandas()), _sorted(want))


def test_pandas_and_dask_at_a_revision(versions: tuple[Path, pd.DataFrame, pd.DataFrame]
                                       ) -> None:
    dd = pytest.importorskip("dask.dataframe")
    repo, v1, now = versions
    opts = {"repo": str(repo), "rev": "v1"}
    one = pd.read_parquet("cas://ds/part1.parquet", storage_options=opts)
    pd.testing.assert_frame_equal(one, v1[v1.part == 1].reset_index(drop=True))
    whole = pd.read_parquet("cas://ds", storage_options=opts)
    pd.testing.assert_frame_equal(_sorted(whole), _sorted(v1))
    ddf = dd.read_parquet("cas://ds", storage_options=opts)
    assert ddf.npartitions >= 3
    pd.testing.assert_frame_equal(_sorted(ddf.compute()), _sorted(v1))
    ddf_now = dd.read_parquet("cas://ds/*.parquet", storage_options={"repo": str(repo)})
    pd.testing.assert_frame_equal(_sorted(ddf_now.compute()), _sorted(now))


def test_what_fsspec_clients_call(versions: tuple[Path, pd.DataFrame, pd.DataFrame]) -> None:
    repo, v1, now = versions
    fs = fsspec.filesystem("cas", repo=str(repo), rev="v1", skip_instance_cache=True)
    # modified/created: the commit's time at a revision, stable across calls.
    when = fs.modified("ds/part0.parquet")
    assert isinstance(when, datetime) and when.tzinfo is not None
    commit_time = int(git(repo, "show", "-s", "--format=%ct", "v1").strip())
    assert int(when.timestamp()) == commit_time
    assert fs.created("ds/part0.parquet") == when == fs.modified("ds")
    info = fs.info("cas://ds/part0.parquet")
    assert info["type"] == "file" and info["size"] > 0
    assert info["mtime"] == commit_time and info["executable"] is False
    assert len(info["xxh128"]) == 32 and info["pointer"] == "ds.cas"
    assert fs.info("ds")["type"] == "directory"
    # ukey/checksum follow the content: equal content, equal keys, at any revision.
    fs_now = fsspec.filesystem("cas", repo=str(repo), skip_instance_cache=True)
    assert fs.ukey("ds/part0.parquet") == info["xxh128"]
    assert fs.checksum("ds/part0.parquet") == int(info["xxh128"], 16)
    assert fs.checksum("ds/part0.parquet") != fs_now.checksum("ds/part0.parquet")
    # glob and find behave as on any fsspec filesystem.
    assert fs.glob("cas://ds/*.parquet") == [f"ds/part{i}.parquet" for i in range(3)]
    assert fs.glob("**/*.parquet") == [f"ds/part{i}.parquet" for i in range(3)]
    assert fs_now.find("ds") == [f"ds/part{i}.parquet" for i in range(4)]
    assert fs.find("") == [f"ds/part{i}.parquet" for i in range(3)]
    assert fs.find("ds", withdirs=True, maxdepth=1)[:1] == ["ds"]
    assert fs.find("ds/part0.parquet") == ["ds/part0.parquet"]
    assert fs.find("nowhere") == []
    assert set(fs.find("ds", detail=True)) == {f"ds/part{i}.parquet" for i in range(3)}
    assert fs.isdir("ds") and fs.isfile("ds/part2.parquet") and not fs.exists("ds/x")
    with pytest.raises(FileNotFoundError):
        fs.info("ds/missing.parquet")
    with pytest.raises(PermissionError, match="read-only"):
        fs.rm("ds/part0.parquet")
    with pytest.raises(PermissionError, match="read-only"):
        fs.pipe_file("ds/new", b"x")
    # Dask's process and distributed schedulers pickle the filesystem: it keeps its rev.
    import pickle

    again = pickle.loads(pickle.dumps(fs))
    assert again.rev == "v1" and again.ukey("ds/part0.parquet") == info["xxh128"]
    # The working tree's mtime is the pointer's: it moves when the pointer is rewritten.
    assert fs_now.info("ds")["mtime"] == (repo / "ds.cas").stat().st_mtime
