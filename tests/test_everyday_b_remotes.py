"""Remote messages a user can act on, driving the real `cas`: HTTP(S) remotes are read-only,
a server that ignores Range requests is named, a slow or retried remote says what is
happening on a terminal, and a clone whose remote needs a machine-local endpoint says how to
give it one (also to 'cas import' through --remote-config)."""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CAS, git, git_env, run_cas, run_on_terminal, write_random


class _Handler(http.server.SimpleHTTPRequestHandler):
    """A static file server (no Range support, like python -m http.server), whose first
    ``fail_first`` answers are 503 and every answer waits ``delay`` seconds."""

    delay = 0.0
    fail_first = 0
    lock = threading.Lock()
    requests: list[bytes] = []

    def log_message(self, *args: object) -> None:
        pass

    def parse_request(self) -> bool:
        # Every request the server is sent, whatever its method (a PUT gets a 501).
        type(self).requests.append(self.raw_requestline)
        return super().parse_request()

    def do_GET(self) -> None:
        time.sleep(type(self).delay)
        with type(self).lock:
            fail = type(self).fail_first > 0
            type(self).fail_first -= 1
        if fail:
            self.send_error(503, "busy")
            return
        super().do_GET()


@contextlib.contextmanager
def _serve(folder: Path, *, delay: float = 0.0, fail_first: int = 0,
           requests: list[bytes] | None = None) -> Iterator[str]:
    """Serve ``folder``; each request line received is appended to ``requests``."""
    handler = type("H", (_Handler,), {"delay": delay, "fail_first": fail_first,
                                      "lock": threading.Lock(),
                                      "requests": [] if requests is None else requests})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def published(repo: Path, tmp_path: Path) -> Path:
    """``repo`` with m.bin pushed to a folder store (which a web server then publishes)."""
    write_random(repo / "m.bin", 300_000, seed=1)
    run_cas(repo, "add", "m.bin")
    run_cas(repo, "remote", "add", "folder", str(tmp_path / "www" / "store"))
    run_cas(repo, "push", "-r", "folder")
    return tmp_path / "www"


def test_http_remote_is_read_only_and_range_is_required(repo: Path, published: Path) -> None:
    seen: list[bytes] = []
    with _serve(published, requests=seen) as base:
        run_cas(repo, "remote", "add", "web", f"{base}/store")
        res = run_cas(repo, "push", "-r", "web", check=False)
        assert res.returncode == 1
        # Read-only at once: listings and index reads only, never a write to be refused
        # (a 501) and retried in rounds.
        assert seen and all(r.startswith(b"GET ") for r in seen), seen
        assert len(seen) <= 8, seen
        err = [ln for ln in res.stderr.splitlines() if ln.startswith("cas: error")]
        assert len(err) == 1 and "is read-only" in err[0] and "HTTP(S)" in err[0]
        # This server sends the whole pack for a ranged read.
        import shutil

        shutil.rmtree(repo / ".cas" / "cache")
        res = run_cas(repo, "fetch", "-r", "web", check=False)
        assert res.returncode == 1
        assert "server ignored the Range request" in res.stderr
        assert "ShortRead" not in res.stderr and "Traceback" not in res.stderr


def _run_on_terminal(cwd: Path, *args: str, timeout: float = 60) -> tuple[int, str]:
    """Run cas with its stderr on a pseudo-terminal (progress notes are for people)."""
    return run_on_terminal(cwd, CAS, *args, timeout=timeout)


def test_slow_and_retried_remote_say_so_on_a_terminal(repo: Path, published: Path) -> None:
    with _serve(published, delay=2.5) as base:
        run_cas(repo, "remote", "add", "web", f"{base}/store")
        rc, err = _run_on_terminal(repo, "status", "--remote-name", "web")
        assert rc == 0, err
        assert "waiting for remote 'web'" in err
    with _serve(published, fail_first=2) as base:
        run_cas(repo, "remote", "modify", "web", "url", f"{base}/store")
        rc, err = _run_on_terminal(repo, "status", "--remote-name", "web")
        assert rc == 0, err
        assert "remote 'web':" in err and "retrying in" in err and "attempt 2 of 6" in err
    with _serve(published, fail_first=2) as base:
        # Not on a terminal: scripts get the result and no chatter.
        run_cas(repo, "remote", "modify", "web", "url", f"{base}/store")
        res = run_cas(repo, "status", "--remote-name", "web")
        assert "retrying" not in res.stderr and "waiting" not in res.stderr


# S3: a fresh clone whose remote's endpoint is set per machine -------------------------------
def _s3_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in git_env().items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.setdefault("AWS_ACCESS_KEY_ID", "testing")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    env.update(extra)
    return env


@pytest.mark.s3
def test_fresh_clone_names_the_local_endpoint(repo: Path, tmp_path: Path) -> None:
    from support.s3 import fresh_bucket, s3_endpoint

    endpoint = s3_endpoint()
    url, _ = fresh_bucket(endpoint)
    data = write_random(repo / "m.bin", 100_000, seed=2)
    run_cas(repo, "add", "m.bin", env=_s3_env())
    run_cas(repo, "remote", "add", "origin", url, "--default", env=_s3_env())
    run_cas(repo, "remote", "modify", "origin", "endpoint_url", endpoint, "--local",
            env=_s3_env())
    run_cas(repo, "push", env=_s3_env())
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "data")

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    res = run_cas(clone, "pull", check=False, env=_s3_env(), timeout=120)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cas: error: remote 'origin'")
    assert "cas remote modify origin endpoint_url URL --local" in lines[0]
    assert "AWS_ENDPOINT_URL" in lines[0]
    # Either way works: the variable, or the machine-local setting.
    run_cas(clone, "pull", env=_s3_env(AWS_ENDPOINT_URL=endpoint))
    assert (clone / "m.bin").read_bytes() == data

    # Importing from that repository: --remote-config reaches its remote.
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q", "-b", "main")
    run_cas(other, "init", env=_s3_env())
    source = f"file://{repo}"
    res = run_cas(other, "import", source, "m.bin", check=False, env=_s3_env(), timeout=120)
    assert res.returncode == 1 and "--remote-config endpoint_url=URL" in res.stderr
    assert "cas remote modify" not in res.stderr  # that would change this repository
    run_cas(other, "import", source, "m.bin", "--remote-config", f"endpoint_url={endpoint}",
            env=_s3_env())
    assert (other / "m.bin").read_bytes() == data
    res = run_cas(other, "import", source, "m.bin", "--remote-config", "nonsense",
                  check=False, env=_s3_env())
    assert res.returncode == 2 and "KEY=VALUE" in res.stderr
