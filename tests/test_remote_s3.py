"""Remotes on a real S3 server (moto, started by .ci/s3server.sh): end to end, through a
fault-injecting proxy, killed mid-push, and with wrong credentials."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CAS, git, run_cas, s3_env, write_random
from support.faultproxy import FaultProxy
from support.s3 import endpoint_address, fresh_bucket, s3_endpoint, s3_filesystem

pytestmark = pytest.mark.s3
MiB = 1 << 20


def _use_remote(repo: Path, url: str, endpoint: str) -> None:
    run_cas(repo, "remote", "add", "origin", url, "--default", env=s3_env())
    run_cas(repo, "remote", "modify", "origin", "endpoint_url", endpoint, "--local", env=s3_env())


def _clone(src: Path, dest: Path, endpoint: str) -> Path:
    git(src, "add", "-A")
    git(src, "commit", "-q", "-m", "data")
    git(src.parent, "clone", "-q", str(src), str(dest))
    run_cas(dest, "remote", "modify", "origin", "endpoint_url", endpoint, "--local",
            env=s3_env())
    return dest


@pytest.fixture
def bucket() -> tuple[str, str]:
    """``(s3 url, endpoint)`` of a fresh bucket, removed afterwards (the server keeps
    everything in memory)."""
    endpoint = s3_endpoint()
    url, _ = fresh_bucket(endpoint)
    yield url, endpoint
    with contextlib.suppress(Exception):
        s3_filesystem().rm(url.removeprefix("s3://").split("/")[0], recursive=True)


def _objects(url: str) -> dict[str, int]:
    fs = s3_filesystem()
    return {k: int(v["size"]) for k, v in fs.find(url.removeprefix("s3://"),
                                                 detail=True).items()}


def test_push_pull_byte_identical_on_s3(repo: Path, tmp_path: Path,
                                       bucket: tuple[str, str]) -> None:
    url, endpoint = bucket
    big = write_random(repo / "model.bin", 70 * MiB, seed=1)  # two packs, multipart uploads
    for i in range(300):
        (repo / "ds").mkdir(exist_ok=True)
        (repo / "ds" / f"{i}.txt").write_text(f"sample {i}\n" * 50)
    run_cas(repo, "add", "model.bin", "ds", env=s3_env())
    (repo / "empty.bin").touch()  # alone in its pack: a zero-length range, never requested
    run_cas(repo, "add", "empty.bin", env=s3_env())
    _use_remote(repo, url, endpoint)
    out = json.loads(run_cas(repo, "push", "--json", "-j", "4", env=s3_env()).stdout)
    assert out["objects_sent"] == out["objects_needed"] and out["missing"] == []
    objs = _objects(url)
    data = {k: v for k, v in objs.items() if "/records/" not in k}
    assert len(data) <= 8, objs  # packs and their index files, not one object per chunk
    assert out["bytes_uploaded"] == sum(data.values())
    assert len(objs) - len(data) == 1  # the push's root record
    # A no-op push costs five requests (index files are cached locally after the first
    # push): a listing of condemnation records and of index files, the root record, and the
    # same two listings again for the re-check.
    with FaultProxy(upstream=endpoint_address(endpoint), rate=0.0) as counter:
        run_cas(repo, "remote", "modify", "origin", "endpoint_url", counter.url, "--local",
                env=s3_env())
        assert "Everything is on" in run_cas(repo, "push", env=s3_env()).stdout
        assert counter.stats.requests == 5, counter.stats.as_dict()
    clone = _clone(repo, tmp_path / "clone", endpoint)
    res = json.loads(run_cas(clone, "pull", "--json", env=s3_env()).stdout)
    assert res["fetch"]["missing"] == [] and res["checkout"]["failed"] == []
    assert (clone / "model.bin").read_bytes() == big
    assert (clone / "empty.bin").stat().st_size == 0
    for i in range(300):
        assert (clone / "ds" / f"{i}.txt").read_text() == f"sample {i}\n" * 50
    assert run_cas(clone, "fsck", "--remote", env=s3_env()).ok


def test_push_and_pull_survive_ten_percent_faults(repo: Path, tmp_path: Path,
                                                  bucket: tuple[str, str]) -> None:
    url, endpoint = bucket
    files = {}
    for i in range(4):  # four adds: four local packs, so four uploads and many range reads
        files[f"f{i}.bin"] = write_random(repo / f"f{i}.bin", 3 * MiB, seed=10 + i)
        run_cas(repo, "add", f"f{i}.bin", env=s3_env())
    (repo / "ds").mkdir()
    for i in range(200):
        (repo / "ds" / f"{i}.txt").write_text(f"row {i}\n" * 40)
    run_cas(repo, "add", "ds", env=s3_env())
    with FaultProxy(upstream=endpoint_address(endpoint), rate=0.10, seed=3,
                    latency=(0.01, 0.1)) as proxy:
        _use_remote(repo, url, proxy.url)
        out = json.loads(run_cas(repo, "push", "--json", env=s3_env()).stdout)
        assert out["missing"] == []
        clone = _clone(repo, tmp_path / "clone", proxy.url)
        # Pull file by file so that many small range reads go through the proxy too.
        for name in files:
            run_cas(clone, "pull", name, env=s3_env())
        run_cas(clone, "pull", env=s3_env())
        assert proxy.stats.total_faults >= 3, proxy.stats.as_dict()
    for name, data in files.items():
        assert (clone / name).read_bytes() == data
    assert (clone / "ds" / "7.txt").read_text() == "row 7\n" * 40
    run_cas(clone, "remote", "modify", "origin", "endpoint_url", endpoint, "--local", env=s3_env())
    assert run_cas(clone, "fsck", "--remote", env=s3_env()).ok


def _index_count(url: str) -> int:
    fs = s3_filesystem()
    try:
        return len(fs.ls(url.removeprefix("s3://") + "/index", refresh=True))
    except FileNotFoundError:
        return 0


def test_kill_during_push_then_push_again(repo: Path, bucket: tuple[str, str]) -> None:
    url, endpoint = bucket
    n = 6
    for i in range(n):
        write_random(repo / f"f{i}.bin", 2 * MiB, seed=20 + i)
        run_cas(repo, "add", f"f{i}.bin", env=s3_env())
    # Every request through the proxy is slowed, so the push is still running when killed.
    with FaultProxy(upstream=endpoint_address(endpoint), rate=1.0, faults=("latency",),
                    latency=(0.15, 0.25), seed=1) as proxy:
        _use_remote(repo, url, proxy.url)
        proc = subprocess.Popen([CAS, "push", "-j", "1"], cwd=repo, env=s3_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while _index_count(url) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done_before = _index_count(url)
    assert 1 <= done_before < n, "the push was not interrupted half way"
    run_cas(repo, "remote", "modify", "origin", "endpoint_url", endpoint, "--local", env=s3_env())
    out = json.loads(run_cas(repo, "push", "--json", env=s3_env()).stdout)
    # Finished packs are not sent again.
    assert out["packs_uploaded"] <= n - done_before
    assert out["bytes_uploaded"] <= (n - done_before + 1) * (2 * MiB + 64 * 1024)
    assert _index_count(url) == n
    fsck = json.loads(run_cas(repo, "fsck", "--remote", "--json", env=s3_env()).stdout)
    assert fsck["ok"] and fsck["damaged"] == [] and fsck["packs_checked"] == n


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def auth_s3() -> str:
    """A moto server that checks credentials (every request needs a known key)."""
    s3_endpoint()  # skip (or fail in CI) like every other S3 test
    port = _free_port()
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="0", AWS_DEFAULT_REGION="us-east-1")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_wrong_credentials_give_one_clear_line(repo: Path, auth_s3: str) -> None:
    write_random(repo / "a.bin", 1000, seed=1)
    run_cas(repo, "add", "a.bin", env=s3_env())
    _use_remote(repo, "s3://team-bucket/x", auth_s3)
    secret = "wrongSecretValue123"
    env = s3_env(AWS_ACCESS_KEY_ID="AKIAWRONGKEY0000", AWS_SECRET_ACCESS_KEY=secret)
    for cmd in (["push"], ["pull"], ["status", "--remote"]):
        r = run_cas(repo, *cmd, check=False, env=env)
        assert r.returncode == 1, r
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1, r.stderr
        assert "refused the credentials" in lines[0] and secret not in r.stderr
