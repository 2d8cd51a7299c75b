"""What team-safe collection costs: gc on a remote of N packs, and a push's root record.

    python -m benchmarks.gc_remote [--packs 1000] [--endpoint http://127.0.0.1:9000]

Builds a repository whose cache holds ``--packs`` packs (one small file added per pack),
pushes them to a fresh remote (a bucket on the S3 server at ``--endpoint``, through a
counting proxy; a local folder without it), drops the pointers of half the files, and times
the collector's two phases and a no-op run, counting HTTP requests (S3) or backend calls
(folder). Then it measures what the root record adds to a push: requests and bytes of a
no-op push and of a one-file push. Prints a Markdown table; numbers for docs/remotes.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _counting(remote_dir: Path | None, endpoint: str | None):  # noqa: ANN202
    """A context giving (url, extra remote options, counter() -> requests so far)."""
    import contextlib

    if endpoint is None:
        from casstore.remote import fs as rfs

        calls = {"n": 0}
        for name in ("list", "read", "write", "upload", "create", "delete", "size"):
            real = getattr(rfs.FsspecBackend, name)

            def wrapped(self, *a, _real=real, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
                calls["n"] += 1
                return _real(self, *a, **kw)

            setattr(rfs.FsspecBackend, name, wrapped)
        return contextlib.nullcontext((str(remote_dir), {}, lambda: calls["n"]))
    sys.path.insert(0, str(ROOT / "tests"))
    import s3fs
    from support.faultproxy import FaultProxy

    bucket = f"gcbench-{uuid.uuid4().hex[:8]}"
    s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}).mkdir(bucket)
    host, port = endpoint.removeprefix("http://").split(":")

    @contextlib.contextmanager
    def proxied():  # noqa: ANN202
        with FaultProxy(upstream=(host, int(port)), rate=0.0) as proxy:
            yield (f"s3://{bucket}/team", {"endpoint_url": proxy.url},
                   lambda: proxy.stats.requests)

    return proxied()


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.gc_remote")
    ap.add_argument("--packs", type=int, default=1000)
    ap.add_argument("--endpoint", default=os.environ.get("CAS_TEST_S3_ENDPOINT"))
    args = ap.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from casstore.remote.config import add_remote, modify_remote
    from casstore.repo import Repo

    rows: list[tuple[str, float, int, str]] = []
    with tempfile.TemporaryDirectory(prefix="cas-gcbench-") as tmp:
        base = Path(tmp)
        work = base / "repo"
        work.mkdir()
        with _counting(base / "remote", args.endpoint) as (url, opts, count):
            repo = Repo.init(work)
            add_remote(repo.config, "origin", url, default=True)
            for k, v in opts.items():
                modify_remote(repo.config, "origin", k, v, local=True)
            repo = Repo(work)
            t = time.perf_counter()
            for i in range(args.packs):
                (work / f"f{i}.bin").write_bytes(os.urandom(48 << 10))
                repo.add([work / f"f{i}.bin"])  # one command, one pack
            print(f"built {args.packs} packs in {time.perf_counter() - t:.1f} s",
                  file=sys.stderr)

            def step(label: str, fn):  # noqa: ANN001, ANN202
                before = count()
                t0 = time.perf_counter()
                out = fn()
                rows.append((label, time.perf_counter() - t0, count() - before,
                             summary(out)))
                return out

            step(f"push {args.packs} packs", lambda: repo.push())
            for i in range(0, args.packs, 2):
                (work / f"f{i}.bin.cas").unlink()
            gc = dict(remote="origin", grace_hours=0, keep_pushed_days=0)
            step("gc: condemn (phase one)", lambda: repo.gc(**gc))
            step("gc: delete (phase two)", lambda: repo.gc(**gc))
            step("gc: nothing to do", lambda: repo.gc(**gc))
            step("no-op push (root record + re-check)", lambda: repo.push())
            (work / "new.bin").write_bytes(os.urandom(48 << 10))
            repo.add([work / "new.bin"])
            res = step("push of one new file", lambda: repo.push())
            rec = repo.config.get("remotes.origin.url")
            print(f"root record of the last push: {res.root_record} ({rec})", file=sys.stderr)
    print("| step | wall s | requests | result |")
    print("|---|---:|---:|---|")
    for label, secs, n, text in rows:
        print(f"| {label} | {secs:.2f} | {n} | {text} |")


def summary(res: object) -> str:
    d = getattr(res, "__dict__", {})
    if "packs_condemned" in d:
        return (f"condemned {len(d['packs_condemned'])}, deleted {len(d['packs_deleted'])}, "
                f"freed {d['bytes_freed']} B, index files replaced "
                f"{d['index_files_replaced']}")
    if "objects_sent" in d:
        return f"sent {d['objects_sent']} objects, {d['bytes_uploaded']} B"
    return ""


if __name__ == "__main__":
    main()
