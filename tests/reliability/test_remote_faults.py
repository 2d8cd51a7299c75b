"""Push and pull through the fault-injecting proxy (503, 500, connection resets, truncated
bodies, latency) at 10% and 30% of requests, on the local S3 server: the data arrives
byte-identical, both stores stay consistent, and a failed attempt says so in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import git, run_cas, s3_env, write_random
from support.faultproxy import FaultProxy
from support.s3 import endpoint_address, fresh_bucket, s3_endpoint

from .helpers import MiB, assert_store_consistent, workspace_data

pytestmark = pytest.mark.s3


def _cas(cwd: Path, *args: str, check: bool = True):  # noqa: ANN202 - conftest.Result
    return run_cas(cwd, *args, check=check, env=s3_env())


@pytest.mark.parametrize("rate", [0.10, 0.30], ids=["10pct", "30pct"])
def test_push_pull_through_faults(repo: Path, tmp_path: Path, rate: float, figures) -> None:
    endpoint = s3_endpoint()
    url, _ = fresh_bucket(endpoint)
    for i in range(5):  # five adds: five packs, so several uploads
        write_random(repo / f"m{i}.bin", 2 * MiB, seed=20 + i)
        _cas(repo, "add", f"m{i}.bin")
    for i in range(60):
        (repo / "ds").mkdir(exist_ok=True)
        (repo / "ds" / f"{i}.txt").write_text(f"row {i}\n" * 30)
    _cas(repo, "add", "ds")
    names = [f"m{i}.bin" for i in range(5)] + ["ds"]
    expected = workspace_data(repo, names)
    with FaultProxy(upstream=endpoint_address(endpoint), rate=rate, seed=int(rate * 100),
                    latency=(0.01, 0.05)) as proxy:
        _cas(repo, "remote", "add", "origin", url, "--default")
        _cas(repo, "remote", "modify", "origin", "endpoint_url", proxy.url, "--local")
        pushed = _push_until_done(repo)
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "data")
        clone = tmp_path / "clone"
        git(tmp_path, "clone", "-q", str(repo), str(clone))
        _cas(clone, "remote", "modify", "origin", "endpoint_url", proxy.url, "--local")
        for n in names[:4]:  # file by file first: many more requests
            _cas(clone, "pull", n)
        pulled = _pull_until_done(clone)
        faults = proxy.stats.total_faults
        stats = proxy.stats.as_dict()
    assert faults >= 2, stats
    figures[f"faults injected at {int(rate * 100)}%"] += faults
    figures[f"requests through the proxy at {int(rate * 100)}%"] += stats["requests"]
    figures[f"retried commands at {int(rate * 100)}%"] += pushed + pulled - 2
    assert workspace_data(clone, names) == expected
    assert_store_consistent(clone)
    _cas(clone, "remote", "modify", "origin", "endpoint_url", endpoint, "--local")
    report = json.loads(_cas(clone, "fsck", "--remote", "--json").stdout)
    assert report["damaged"] == [], report


def _push_until_done(repo: Path, attempts: int = 4) -> int:
    """Push; past the retry budget a push may fail, in one line, and a re-run resumes."""
    for k in range(1, attempts + 1):
        res = _cas(repo, "push", "--json", check=False)
        if res.returncode == 0:
            assert json.loads(res.stdout)["missing"] == []
            return k
        _one_line_failure(res)
    raise AssertionError("push did not complete in four attempts")


def _pull_until_done(clone: Path, attempts: int = 4) -> int:
    for k in range(1, attempts + 1):
        res = _cas(clone, "pull", check=False)
        if res.returncode == 0:
            return k
        _one_line_failure(res)
        assert_store_consistent(clone)
    raise AssertionError("pull did not complete in four attempts")


def _one_line_failure(res) -> None:  # noqa: ANN001
    assert "Traceback" not in res.stderr, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("cas: error")]
    assert len(errors) == 1, res.stderr
