"""Reading a tracked dataset straight from an S3 remote, with no checkout and no cache:
a Dask cluster of worker processes, pandas and pyarrow through ``cas://`` with ``remote=``,
a bounded chunk cache, and a damaged pack reported instead of served."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import git, run_cas, s3_env
from support.s3 import fresh_bucket, s3_endpoint, s3_filesystem

from casstore.errors import CorruptObjectError
from casstore.reader import ContentReader

fsspec = pytest.importorskip("fsspec")
pytestmark = pytest.mark.s3

PARTS_V1 = 4
ROWS = 30_000  # about 0.7 MB per part: several chunks per file


def _write_part(folder: Path, part: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = np.arange(part * ROWS, (part + 1) * ROWS, dtype=np.int64)
    df = pd.DataFrame({"id": ids, "x": rng.random(ROWS),
                       "s": [f"k{v}" for v in rng.integers(0, 500, ROWS)]})
    out = folder / f"part={part}"
    out.mkdir(parents=True, exist_ok=True)
    df.to_parquet(out / "0.parquet", index=False)
    return df.assign(part=part)


def _aggregates(df: pd.DataFrame) -> dict[str, object]:
    """What both sides compute: exact integers, float sums rounded far beyond summation-order
    noise, per-partition sums."""
    by_part = df.groupby(df["part"].astype(int))["x"].sum()
    return {"rows": int(len(df)), "id_sum": int(df["id"].sum()),
            "x_sum": round(float(df["x"].sum()), 6),
            "distinct_s": int(df["s"].nunique()),
            "x_by_part": {str(k): round(float(v), 6) for k, v in by_part.items()}}


@pytest.fixture
def dataset(repo: Path) -> dict[str, object]:
    """data/ (hive-partitioned Parquet) tracked at tag v1, then changed on main (a part
    rewritten, one added); both pushed to a fresh bucket. The working copy and the cache
    are deleted: every read below goes to the remote."""
    endpoint = s3_endpoint()
    url, opts = fresh_bucket(endpoint)
    run_cas(repo, "remote", "add", "origin", url, "--default", env=s3_env())
    run_cas(repo, "remote", "modify", "origin", "endpoint_url", endpoint, "--local", env=s3_env())
    data = repo / "data"
    v1 = pd.concat([_write_part(data, p, seed=p) for p in range(PARTS_V1)], ignore_index=True)
    run_cas(repo, "add", "data", env=s3_env())
    run_cas(repo, "push", env=s3_env())
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "data v1")
    git(repo, "tag", "v1")
    parts = [v1[v1["part"] != 1], _write_part(data, 1, seed=101),
             _write_part(data, PARTS_V1, seed=102)]
    main = pd.concat(parts, ignore_index=True)
    run_cas(repo, "add", "data", env=s3_env())
    run_cas(repo, "push", env=s3_env())
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "data v2")
    shutil.rmtree(data)
    shutil.rmtree(repo / ".cas" / "cache")
    yield {"repo": repo, "url": url, "endpoint": endpoint, "key": opts["key"],
           "secret": opts["secret"], "v1": _aggregates(v1), "main": _aggregates(main),
           "v1_frame": v1}
    with contextlib.suppress(Exception):
        s3_filesystem().rm(url.removeprefix("s3://").split("/")[0], recursive=True)


def _opts(ds: dict[str, object], **extra: object) -> dict[str, object]:
    """Storage options reading the remote by URL, its endpoint and keys passed along."""
    opts: dict[str, object] = {
        "repo": str(ds["repo"]), "rev": "v1", "remote": ds["url"],
        "remote_options": {"endpoint_url": ds["endpoint"], "key": ds["key"],
                           "secret": ds["secret"]}}
    opts.update(extra)
    return opts


DASK_JOB = textwrap.dedent('''
    import json, shutil, sys

    import dask
    import dask.dataframe as dd
    from dask.distributed import Client, LocalCluster


    def fetched():
        from casstore.remote.reading import process_stats
        return process_stats()


    if __name__ == "__main__":
        opts = json.loads(sys.argv[1])
        repo = opts["repo"]
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            df = dd.read_parquet("cas://data", storage_options=opts)
            # From here on the workers must do without the repository: it is moved away.
            shutil.move(repo, repo + ".moved")
            df["part"] = df["part"].astype(int)
            rows, id_sum, x_sum, distinct, by_part = dask.compute(
                df.shape[0], df["id"].sum(), df["x"].sum(), df["s"].nunique(),
                df.groupby("part")["x"].sum())
            per_worker = client.run(fetched)
            shutil.move(repo + ".moved", repo)
        print(json.dumps({
            "rows": int(rows), "id_sum": int(id_sum), "x_sum": round(float(x_sum), 6),
            "distinct_s": int(distinct),
            "x_by_part": {str(k): round(float(v), 6) for k, v in by_part.items()},
            "worker_bytes": [s["bytes"] for s in per_worker.values()]}))
''')


def test_dask_cluster_reads_a_revision_from_s3_without_checkout_or_cache(
        dataset: dict[str, object], tmp_path: Path) -> None:
    pytest.importorskip("dask.distributed")
    repo = Path(str(dataset["repo"]))
    home = tmp_path / "home"
    home.mkdir()
    script = tmp_path / "job.py"
    script.write_text(DASK_JOB)
    env = s3_env(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
    proc = subprocess.run([sys.executable, str(script), json.dumps(_opts(dataset))],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    worker_bytes = got.pop("worker_bytes")
    assert got == dataset["v1"]
    assert got != dataset["main"]  # the revision mattered
    # Both worker processes read from the remote themselves.
    assert len(worker_bytes) == 2 and all(b > 0 for b in worker_bytes), worker_bytes
    # Nothing was cached anywhere: not in the repository, not under HOME.
    assert not (repo / ".cas" / "cache").exists()
    assert not any(p.is_file() for p in home.rglob("*"))


def test_the_pickled_filesystem_carries_the_remote_and_pointers_not_the_repository(
        dataset: dict[str, object]) -> None:
    fs = fsspec.filesystem("cas", skip_instance_cache=True, **_opts(dataset))
    blob = pickle.dumps(fs)
    assert str(dataset["repo"]).encode() not in blob
    moved = Path(str(dataset["repo"]) + ".moved")
    shutil.move(str(dataset["repo"]), moved)
    try:
        again = pickle.loads(blob)
        assert again.ls("data", detail=False) == [f"data/part={p}" for p in range(PARTS_V1)]
        assert again.cat_file("data/part=2/0.parquet", 0, 4) == b"PAR1"
    finally:
        shutil.move(moved, str(dataset["repo"]))


def test_pandas_and_pyarrow_read_with_remote(dataset: dict[str, object],
                                             tmp_path: Path, monkeypatch) -> None:
    import pyarrow.dataset as pads

    repo = Path(str(dataset["repo"]))
    # A named remote (its endpoint from the repository's local config), at main.
    fs = fsspec.filesystem("cas", repo=str(repo), rev="main", remote="origin", cache="none",
                           skip_instance_cache=True)
    table = pads.dataset("data", filesystem=fs, format="parquet",
                         partitioning="hive").to_table()
    assert _aggregates(table.to_pandas()) == dataset["main"]
    # No repository at all: the folder's digest (as `cas ls --json` prints it) and the URL.
    digest = json.loads(run_cas(repo, "ls", "v1", "--json", env=s3_env()).stdout)[0]["digest"]
    monkeypatch.chdir(tmp_path)
    opts = {"remote": dataset["url"], "roots": {"data": digest},
            "remote_options": {"endpoint_url": dataset["endpoint"]}}
    df = pd.read_parquet("cas://data", storage_options=opts)
    assert _aggregates(df) == dataset["v1"]
    assert not (repo / ".cas" / "cache").exists()


def test_a_damaged_pack_byte_is_an_error_not_wrong_data(dataset: dict[str, object]) -> None:
    opts = _opts(dataset, cache="none")
    fs = fsspec.filesystem("cas", skip_instance_cache=True, **opts)
    entry = fs.view().find("data/part=1/0.parquet")
    reader = fs.direct.reader()
    chunk = ContentReader(reader, entry.digest, entry.size).ids[0]
    loc = reader.locate(chunk)
    key = f"{str(dataset['url']).removeprefix('s3://')}/packs/{loc.pack[:2]}/{loc.pack}.pack"
    s3 = s3_filesystem()
    pack = bytearray(s3.cat_file(key))
    pack[loc.offset + loc.length // 2] ^= 0x01
    s3.pipe_file(key, bytes(pack))
    with pytest.raises(CorruptObjectError) as err:
        pd.read_parquet("cas://data/part=1/0.parquet", storage_options=opts)
    msg = str(err.value)
    assert "\n" not in msg and loc.pack in msg and "damaged" in msg
    # The other parts, in other chunks, still read correctly.
    part0 = pd.read_parquet("cas://data/part=0/0.parquet", storage_options=opts)
    want = dataset["v1_frame"]
    assert part0["x"].tolist() == want[want["part"] == 0]["x"].tolist()


def test_the_chunk_cache_serves_again_is_verified_and_stays_bounded(
        dataset: dict[str, object], tmp_path: Path) -> None:
    folder = tmp_path / "chunks"
    fs = fsspec.filesystem("cas", skip_instance_cache=True,
                           **_opts(dataset, cache=str(folder), cache_size="64MiB"))
    reader = fs.direct.reader()
    path = "data/part=3/0.parquet"
    first = fs.cat_file(path)
    before = reader.requests
    assert fs.cat_file(path) == first and reader.requests == before  # from the folder
    # A damaged file in the cache is dropped and read from the remote again.
    victim = next(p for p in (folder / "chunks").rglob("*") if p.is_file())
    raw = bytearray(victim.read_bytes())
    raw[0] ^= 0xFF
    victim.write_bytes(bytes(raw))
    assert fs.cat_file(path) == first
    assert reader.chunk_cache.dropped == 1 and reader.requests > before

    small = tmp_path / "small"
    fs = fsspec.filesystem("cas", skip_instance_cache=True,
                           **_opts(dataset, cache=str(small), cache_size="1MiB"))
    df = pd.read_parquet("cas://data", storage_options=_opts(dataset, cache=str(small),
                                                              cache_size="1MiB"))
    assert _aggregates(df) == dataset["v1"]
    held = sum(p.stat().st_size for p in (small / "chunks").rglob("*") if p.is_file())
    assert 0 < held <= 1.1 * (1 << 20)  # ~2.8 MB read through a 1 MiB cache


def test_ray_data_reads_through_a_pyarrow_wrapper(dataset: dict[str, object]) -> None:
    ray = pytest.importorskip("ray")
    import pyarrow.fs as pafs

    fs = fsspec.filesystem("cas", skip_instance_cache=True, **_opts(dataset))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {k: v for k, v in s3_env().items()
                                       if k.startswith("AWS_")}})
    try:
        ds = ray.data.read_parquet("data", filesystem=pafs.PyFileSystem(pafs.FSSpecHandler(fs)),
                                   partitioning=ray.data.datasource.Partitioning("hive"))
        df = ds.to_pandas()
    finally:
        ray.shutdown()
    assert _aggregates(df) == dataset["v1"]


@pytest.fixture(autouse=True)
def _quiet_aws_env(monkeypatch) -> None:
    for k, v in s3_env().items():
        if k.startswith("AWS_"):
            monkeypatch.setitem(os.environ, k, v)


def test_a_forked_process_reads_through_its_parents_filesystem(
        dataset: dict[str, object]) -> None:
    """A filesystem that already read (its S3 client and index loaded) keeps working in a
    child made by fork: the child opens its own clients instead of using the parent's."""
    import multiprocessing as mp

    fs = fsspec.filesystem("cas", skip_instance_cache=True, **_opts(dataset))
    want = fs.cat_file("data/part=2/0.parquet")
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        got = pool.apply(_read_in_child, (fs, "data/part=2/0.parquet"))
    assert got == want


def _read_in_child(fs: object, path: str) -> bytes:
    return fs.cat_file(path)  # type: ignore[attr-defined]


@pytest.fixture
def folder_remote(repo: Path, tmp_path: Path) -> tuple[Path, dict[str, str], bytes]:
    """A folder remote holding a tracked file and folder: (remote, {path: digest}, file)."""
    from conftest import write_random

    remote = tmp_path / "remote"
    remote.mkdir()
    run_cas(repo, "remote", "add", "origin", str(remote), "--default")
    model = write_random(repo / "model.bin", 700_000, seed=5)  # several chunks: a recipe
    write_random(repo / "small" / "one.bin", 1000, seed=6)  # one chunk, no recipe
    run_cas(repo, "add", "model.bin", "small")
    run_cas(repo, "push")
    digests = {e["path"]: e["digest"]
               for e in json.loads(run_cas(repo, "ls", "--json").stdout)}
    return remote, digests, model


def test_roots_alone_need_no_repository(folder_remote, tmp_path: Path, monkeypatch) -> None:
    remote, digests, model = folder_remote
    monkeypatch.chdir(tmp_path)
    fs = fsspec.filesystem("cas", remote=str(remote), roots=digests, skip_instance_cache=True)
    assert fs.info("model.bin")["size"] == len(model)  # learned from the recipe
    assert fs.cat_file("model.bin", 100_000, 100_010) == model[100_000:100_010]
    assert fs.info("small/one.bin")["size"] == 1000  # one chunk: its size from the index
    assert fs.ls("", detail=False) == ["model.bin", "small"]


@pytest.mark.parametrize(("options", "error", "words"), [
    ({"roots": {"model.bin": "not-a-digest"}}, "UsageError", "hex digits"),
    ({"roots": {"../x": "0" * 32}}, "UsageError", "inside the repository"),
    ({"roots": {"model.bin": "0" * 32}}, "ObjectMissingError", "cas push"),
    ({"cache_size": "lots"}, "UsageError", "not a size"),
    ({"cache_size": 1000}, "UsageError", "too small"),
    ({"cache": "repo"}, "UsageError", "straight from a remote"),
])
def test_bad_options_are_one_line_errors(folder_remote, options: dict[str, object],
                                         error: str, words: str) -> None:
    from casstore import errors

    remote, digests, _ = folder_remote
    opts: dict[str, object] = {"remote": str(remote), "roots": digests,
                               "cache": str(remote.parent / "chunks"),
                               "skip_instance_cache": True}
    opts.update(options)
    with pytest.raises(getattr(errors, error)) as err:
        fsspec.filesystem("cas", **opts)
    assert words in str(err.value) and "\n" not in str(err.value)
