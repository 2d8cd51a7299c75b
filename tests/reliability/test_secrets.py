"""Credentials and secrets: kept in the git-ignored local config, never printed (not with
--verbose, --json or in error messages), and never accepted inside a remote URL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import git, git_env, run_cas

KEY = "AKIATESTKEY7Q3XV9ZZ"
SECRET = "s3cr3t-Zq8vN2pLw0xY4tR6uB1mK9jH"
PASSWORD = "pa55-W0rd-hunter2-xyz"


class _Refuse(BaseHTTPRequestHandler):
    """An S3 endpoint that refuses every request's credentials (fails fast: no retries)."""

    def _deny(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidAccessKeyId</Code>'
                b"<Message>The AWS Access Key Id you provided does not exist in our records."
                b"</Message></Error>")
        self.send_response(403)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _deny

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def refusing_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _env() -> dict[str, str]:
    env = git_env()
    # No ambient credentials, and few retries: the failures here are meant to be quick.
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        env.pop(k, None)
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    env["AWS_MAX_ATTEMPTS"] = "1"
    return env


def _no_secret(*texts: str) -> None:
    for t in texts:
        for s in (SECRET, KEY, PASSWORD):
            assert s not in t, f"secret printed: {t!r}"


@pytest.fixture
def with_secret_remote(repo: Path, refusing_endpoint: str) -> Path:
    (repo / "a.txt").write_text("payload\n" * 100)
    run_cas(repo, "add", "a.txt", env=_env())
    run_cas(repo, "remote", "add", "origin", "s3://cas-secret-test/store", "--default",
            env=_env())
    for opt, val in (("endpoint_url", refusing_endpoint), ("key", KEY),
                     ("secret", SECRET)):
        res = run_cas(repo, "remote", "modify", "origin", opt, val, "--local", env=_env())
        _no_secret(res.stdout, res.stderr)
    return repo


def test_secrets_live_only_in_the_ignored_local_file(with_secret_remote: Path) -> None:
    repo = with_secret_remote
    shared = (repo / ".cas" / "config.yaml").read_text()
    local = (repo / ".cas" / "config.local.yaml").read_text()
    assert SECRET in local and KEY in local
    _no_secret(shared)
    git(repo, "check-ignore", "-q", ".cas/config.local.yaml")  # raises if not ignored
    git(repo, "add", "-A")
    tracked = git(repo, "ls-files")
    assert "config.local.yaml" not in tracked
    for path in tracked.split():
        if (repo / path).is_file():
            _no_secret((repo / path).read_text(errors="replace"))


def test_secret_refused_in_the_shared_file_without_echoing_it(with_secret_remote: Path) -> None:
    repo = with_secret_remote
    for opt in ("secret", "key", "token", "aws_secret_access_key", "password"):
        res = run_cas(repo, "remote", "modify", "origin", opt, SECRET, check=False, env=_env())
        assert res.returncode != 0 and "Traceback" not in res.stderr
        assert "--local" in res.stderr
        _no_secret(res.stdout, res.stderr, (repo / ".cas" / "config.yaml").read_text())


COMMANDS = [
    ("remote", "list"),
    ("remote", "list", "--json"),
    ("push",),
    ("push", "--json"),
    ("fetch",),
    ("pull",),
    ("status", "--remote"),
    ("fsck", "--remote"),
    ("gc", "--remote", "origin", "--dry-run", "--grace", "0"),
]


@pytest.mark.parametrize("verbose", [False, True], ids=["plain", "verbose"])
def test_no_command_prints_a_secret(with_secret_remote: Path, verbose: bool) -> None:
    """Every remote command fails here (the endpoint refuses the credentials) or lists config;
    neither its output nor its error may contain the key or the secret."""
    repo = with_secret_remote
    for args in COMMANDS:
        full = ("--verbose", *args) if verbose else args
        res = run_cas(repo, *full, check=False, env=_env(), timeout=180)
        assert "Traceback" not in res.stderr, (args, res.stderr)
        _no_secret(res.stdout, res.stderr)
        if args[0] != "remote":
            assert res.returncode == 1, (args, res)
            errors = [ln for ln in res.stderr.splitlines() if ln.startswith("cas: error")]
            assert len(errors) == 1, (args, res.stderr)
    listing = run_cas(repo, "remote", "list", env=_env()).stdout
    assert "***" in listing  # shown as present, but redacted


@pytest.mark.parametrize("url", [
    f"https://alice:{PASSWORD}@example.invalid/store",
    f"s3://{KEY}:{PASSWORD}@bucket/store",
    f"s3://{KEY}@bucket/store",
    f"sftp://bob:{PASSWORD}@host.invalid/srv/cas",
])
def test_url_with_credentials_is_refused(repo: Path, url: str) -> None:
    for args in (("remote", "add", "bad", url), ("remote", "add", "bad", url, "--local")):
        res = run_cas(repo, *args, check=False, env=_env())
        assert res.returncode in (1, 2) and "Traceback" not in res.stderr
        assert "credentials" in res.stderr
        _no_secret(res.stdout, res.stderr)
    run_cas(repo, "remote", "add", "ok", "https://example.invalid/store", env=_env())
    res = run_cas(repo, "remote", "modify", "ok", "url", url, check=False, env=_env())
    assert res.returncode in (1, 2)
    _no_secret(res.stdout, res.stderr, (repo / ".cas" / "config.yaml").read_text())


def test_hand_edited_url_with_password_is_redacted(repo: Path, refusing_endpoint: str) -> None:
    """A password typed straight into config.yaml is refused and never shown."""
    cfg = repo / ".cas" / "config.yaml"
    cfg.write_text(cfg.read_text() + "remotes:\n  origin:\n    url: "
                   f"{refusing_endpoint.replace('//', f'//alice:{PASSWORD}@')}/store\n")
    (repo / "a.txt").write_text("x\n")
    run_cas(repo, "add", "a.txt", env=_env())
    for args in (("remote", "list"), ("remote", "list", "--json"), ("push",), ("--verbose",
                 "push"), ("pull",), ("fsck", "--remote"), ("status", "--remote")):
        res = run_cas(repo, *args, check=False, env=_env(), timeout=120)
        assert "Traceback" not in res.stderr, res.stderr
        _no_secret(res.stdout, res.stderr)
        if "remote" not in args[:1]:  # refused before any connection is made
            assert res.returncode in (1, 2) and "embeds credentials" in res.stderr, res
