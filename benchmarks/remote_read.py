"""A Dask cluster reading a versioned Parquet dataset straight from S3: cas:// against s3fs.

    source /tmp/s3env.sh      # or any S3 endpoint in CAS_TEST_S3_ENDPOINT + AWS_* keys
    python -m benchmarks.remote_read [--size-mb 1024] [--parts 16] [--workers 4] [--runs 2]
                                     [--folder] [--no-s3]

Generates a hive-partitioned Parquet dataset of about ``--size-mb`` MB (random float64 and
int64 columns, which do not compress, and a dictionary-friendly string column), tracks it
with ``cas add data``, pushes it to a bucket of its own on the S3 server, tags the commit,
and uploads the same files as plain objects to the same bucket. The working copy and the
cache are then deleted. Each run starts a fresh ``dask.distributed.LocalCluster`` of
``--workers`` worker processes (one thread each) and times ``dask.dataframe.read_parquet``
plus a few aggregates (rows, sums, a group-by), once through ``cas://`` (``rev`` = the tag,
``cache="none"``: every chunk range-read from the remote's packs and verified) and once
through ``s3://`` (s3fs, the same Parquet reader). Runs alternate between the two so that
neither always gets the warmer machine. Aggregates must equal those computed from the
original files; throughput is the dataset's bytes over the wall time of the job (cluster
start excluded). Prints a Markdown table. The bucket is deleted at the end. ``--folder``
adds the same pair without an S3 server: cas:// from a folder remote (a ``cas push`` to a
local folder) and the plain files on local disk, which isolates what casstore's reading
costs on the client (range planning, verification, decompression, copies).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

MB = 1_000_000


def _sh(cwd: Path, *cmd: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.com",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.com")
    proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def _cas() -> str:
    exe = Path(sys.executable).parent / "cas"
    return str(exe) if exe.exists() else "cas"


def generate(folder: Path, size_mb: int, parts: int) -> None:
    """``parts`` files of about size_mb/parts MB each, under folder/part=i/."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    row_bytes = 5 * 8 + 2  # four float64 + one int64, plus the dictionary-coded string
    rows = max(1000, int(size_mb * MB / parts / row_bytes))
    rng = np.random.default_rng(7)
    vocab = pa.array([f"user-{v:08x}" for v in rng.integers(0, 2**32, 5000)])
    for p in range(parts):
        table = pa.table({
            "id": pa.array(np.arange(p * rows, (p + 1) * rows, dtype=np.int64)),
            "a": rng.random(rows), "b": rng.standard_normal(rows),
            "c": rng.random(rows) * 1e6, "d": rng.standard_normal(rows),
            "user": vocab.take(pa.array(rng.integers(0, len(vocab), rows))),
        })
        out = folder / f"part={p}"
        out.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, out / "0.parquet", row_group_size=rows // 4 + 1)


def expected(folder: Path) -> dict[str, Any]:
    """The aggregates, computed from the original files (pyarrow, one file at a time)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    out: dict[str, Any] = {"rows": 0, "id_sum": 0, "a_sum": 0.0, "d_sum": 0.0,
                           "c_by_part": {}}
    users: set[str] = set()
    for f in sorted(folder.rglob("*.parquet")):
        t = pq.read_table(f)
        part = f.parent.name.split("=", 1)[1]
        out["rows"] += t.num_rows
        out["id_sum"] += int(pc.sum(t["id"]).as_py())
        out["a_sum"] += float(pc.sum(t["a"]).as_py())
        out["d_sum"] += float(pc.sum(t["d"]).as_py())
        out["c_by_part"][part] = float(pc.sum(t["c"]).as_py())
        users.update(pc.unique(t["user"]).to_pylist())
    out["distinct_users"] = len(users)
    return out


JOB = r'''
import json, sys, time

import dask
import dask.dataframe as dd
from dask.distributed import Client, LocalCluster


def fetched():
    try:
        from casstore.remote.reading import process_stats
    except ImportError:
        return {}
    return process_stats()


if __name__ == "__main__":
    url, opts, workers = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.wait_for_workers(workers)
        t0 = time.perf_counter()
        df = dd.read_parquet(url, storage_options=opts)
        df["part"] = df["part"].astype(str)
        rows, id_sum, a_sum, d_sum, users, by_part = dask.compute(
            df.shape[0], df["id"].sum(), df["a"].sum(), df["d"].sum(), df["user"].nunique(),
            df.groupby("part")["c"].sum())
        seconds = time.perf_counter() - t0
        stats = client.run(fetched)
    print(json.dumps({"seconds": seconds, "rows": int(rows), "id_sum": int(id_sum),
                      "a_sum": float(a_sum), "d_sum": float(d_sum),
                      "distinct_users": int(users),
                      "c_by_part": {str(k): float(v) for k, v in by_part.items()},
                      "fetched": list(stats.values())}))
'''


def run_job(work: Path, url: str, opts: dict[str, Any], workers: int) -> dict[str, Any]:
    script = work / "job.py"
    script.write_text(JOB)
    home = Path(tempfile.mkdtemp(prefix="home-", dir=work))  # no cache of any kind to reuse
    env = dict(os.environ, HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
    proc = subprocess.run([sys.executable, str(script), url, json.dumps(opts), str(workers)],
                          cwd=work, capture_output=True, text=True, env=env, timeout=3600)
    shutil.rmtree(home, ignore_errors=True)
    if proc.returncode != 0:
        raise SystemExit(f"the Dask job reading {url} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def same(got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """Names of the aggregates that differ (floats: equal to 1e-9 relative, as summation
    order differs between a whole-file sum and Dask's tree of partial sums)."""
    bad = []
    for k, w in want.items():
        g = got.get(k)
        if isinstance(w, dict):
            if set(g or {}) != set(w) or any(not math.isclose(g[p], w[p], rel_tol=1e-9)
                                             for p in w):
                bad.append(k)
        elif isinstance(w, float):
            if not math.isclose(g, w, rel_tol=1e-9):
                bad.append(k)
        elif g != w:
            bad.append(k)
    return bad


def range_read_cost(s3: Any, bucket: str) -> str:
    """What the server charges for a range read: 16 reads of 1 MiB (4 threads) as ranges of
    one 64 MiB object, and as whole 1 MiB objects. On S3 both cost about the bytes sent;
    a server that reads the whole object for each range (moto does, under a per-object
    lock) charges packs' range reads by the pack's size, which the figures above carry."""
    from concurrent.futures import ThreadPoolExecutor

    s3.pipe_file(f"{bucket}/probe/big", os.urandom(64 << 20))
    for i in range(16):
        s3.pipe_file(f"{bucket}/probe/small{i}", os.urandom(1 << 20))

    def timed(fn: Any) -> float:
        t = time.perf_counter()
        with ThreadPoolExecutor(4) as ex:
            list(ex.map(fn, range(16)))
        return time.perf_counter() - t

    ranged = timed(lambda i: s3.cat_file(f"{bucket}/probe/big", start=i << 20,
                                         end=(i + 1) << 20))
    whole = timed(lambda i: s3.cat_file(f"{bucket}/probe/small{i}"))
    return (f"server cost of 16 reads of 1 MiB (4 threads): as ranges of one 64 MiB object "
            f"{ranged:.2f} s, as whole 1 MiB objects {whole:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--parts", type=int, default=16)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--runs", type=int, default=2, help="runs of each reader")
    ap.add_argument("--endpoint", default=os.environ.get("CAS_TEST_S3_ENDPOINT"))
    ap.add_argument("--keep", action="store_true", help="keep the work folder and bucket")
    ap.add_argument("--folder", action="store_true",
                    help="also read from a folder remote (cas://) and the plain files on "
                         "local disk (fsspec), where no S3 server takes part")
    ap.add_argument("--no-s3", action="store_true", help="skip the two S3 readers")
    args = ap.parse_args()
    if not args.endpoint:
        raise SystemExit("no S3 endpoint: source /tmp/s3env.sh or pass --endpoint")
    import s3fs

    s3 = s3fs.S3FileSystem(client_kwargs={"endpoint_url": args.endpoint},
                           skip_instance_cache=True)
    bucket = f"cas-bench-read-{uuid.uuid4().hex[:12]}"
    s3.mkdir(bucket)
    work = Path(tempfile.mkdtemp(prefix="cas-remote-read-"))
    try:
        repo = work / "repo"
        repo.mkdir()
        print(f"generating ~{args.size_mb} MB in {args.parts} parts ...", flush=True)
        generate(repo / "data", args.size_mb, args.parts)
        files = sorted((repo / "data").rglob("*.parquet"))
        total = sum(f.stat().st_size for f in files)
        want = expected(repo / "data")
        cas = _cas()
        _sh(repo, "git", "init", "-q", "-b", "main")
        _sh(repo, cas, "init", "-q")
        t = time.perf_counter()
        _sh(repo, cas, "add", "data")
        print(f"cas add: {time.perf_counter() - t:.1f} s", flush=True)
        _sh(repo, cas, "remote", "add", "origin", f"s3://{bucket}/store", "--default")
        _sh(repo, cas, "remote", "modify", "origin", "endpoint_url", args.endpoint, "--local")
        t = time.perf_counter()
        _sh(repo, cas, "push")
        print(f"cas push: {time.perf_counter() - t:.1f} s", flush=True)
        _sh(repo, "git", "add", "-A")
        _sh(repo, "git", "commit", "-qm", "dataset")
        _sh(repo, "git", "tag", "v1")
        t = time.perf_counter()
        s3.put(str(repo / "data"), f"{bucket}/plain/data", recursive=True)
        print(f"plain upload: {time.perf_counter() - t:.1f} s", flush=True)
        if args.folder:
            _sh(repo, cas, "remote", "add", "folder", str(work / "folder-remote"))
            _sh(repo, cas, "push", "-r", "folder")
            shutil.copytree(repo / "data", work / "plain")
        shutil.rmtree(repo / "data")
        shutil.rmtree(repo / ".cas" / "cache")

        readers = {
            "cas:// (rev=v1, no cache)": (
                "cas://data", {"repo": str(repo), "rev": "v1", "remote": "origin",
                               "cache": "none"}),
            "s3fs (plain objects)": (
                f"s3://{bucket}/plain/data", {"endpoint_url": args.endpoint}),
        }
        if args.no_s3:
            readers.clear()
        if args.folder:
            readers["cas:// (folder remote, no cache)"] = (
                "cas://data", {"repo": str(repo), "rev": "v1", "remote": "folder",
                               "cache": "none"})
            readers["local files (fsspec)"] = (f"file://{work / 'plain'}", {})
        results: dict[str, list[dict[str, Any]]] = {k: [] for k in readers}
        order = list(readers)
        for r in range(args.runs):
            for name in (order if r % 2 == 0 else order[::-1]):
                url, opts = readers[name]
                got = run_job(work, url, opts, args.workers)
                bad = same(got, want)
                if bad:
                    raise SystemExit(f"{name}: aggregates differ from the original files: "
                                     f"{', '.join(bad)}")
                mbps = total / MB / got["seconds"]
                print(f"  {name}: {got['seconds']:.1f} s, {mbps:.0f} MB/s, aggregates equal",
                      flush=True)
                results[name].append(got)
        if not args.runs:
            print(f"no runs; work folder {work}, bucket {bucket}")
            return
        best = {k: min(g["seconds"] for g in v) for k, v in results.items()}
        fetched = sum(s.get("bytes", 0) for s in results[order[0]][-1]["fetched"])
        print()
        print(f"{len(files)} Parquet files, {total / MB:.0f} MB, {want['rows']:,} rows; "
              f"LocalCluster of {args.workers} worker processes x 1 thread; "
              f"{os.cpu_count()} CPUs; S3 server {args.endpoint}")
        print()
        print("| reader | runs (s) | best (s) | MB/s (best) |")
        print("|---|---|---|---|")
        for k, v in results.items():
            runs = ", ".join(f"{g['seconds']:.1f}" for g in v)
            print(f"| {k} | {runs} | {best[k]:.1f} | {total / MB / best[k]:.0f} |")
        print()
        for cas_name, plain_name in zip(order[::2], order[1::2], strict=True):
            print(f"{cas_name} / {plain_name} throughput ratio (best runs): "
                  f"{best[plain_name] / best[cas_name]:.2f}")
        print(f"cas:// workers fetched {fetched / MB:.0f} MB from the packs for "
              f"{total / MB:.0f} MB of files (aggregates equal to the original files' in "
              "every run)")
        if not args.no_s3:
            print(range_read_cost(s3, bucket))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
            try:
                s3.rm(bucket, recursive=True)
            except Exception as exc:  # noqa: BLE001 - report, never hide the result
                print(f"could not delete bucket {bucket}: {exc}", file=sys.stderr)


if __name__ == "__main__":
    main()
