"""Retries, error classification and secret redaction of remote calls."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from casstore.errors import RemoteError
from casstore.remote import fs as rfs
from casstore.remote.config import RemoteSpec
from casstore.remote.fs import ShortRead, classify, open_remote


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rfs.time, "sleep", lambda s: None)


def _remote(tmp_path: Path, **opts: object) -> rfs.Remote:
    return open_remote(RemoteSpec("origin", str(tmp_path / "r"), dict(opts)), tmp_path)


class Flaky:
    def __init__(self, failures: list[BaseException], value: str = "ok") -> None:
        self.failures = list(failures)
        self.calls = 0
        self.value = value

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return self.value


def test_transient_errors_are_retried(tmp_path: Path) -> None:
    r = _remote(tmp_path)
    f = Flaky([ShortRead("3 of 10"), OSError(errno.EIO, "SlowDown"), ConnectionResetError()])
    assert r.call("reading", f) == "ok" and f.calls == 4


def test_persistent_failure_gives_one_line_with_attempts(tmp_path: Path) -> None:
    r = _remote(tmp_path)
    f = Flaky([TimeoutError("read timed out")] * 10)
    with pytest.raises(RemoteError, match=r"reading failed: TimeoutError: read timed out "
                                          r"\(after 6 attempts\)") as ei:
        r.call("reading", f)
    assert f.calls == rfs.ATTEMPTS and "\n" not in str(ei.value)


def test_auth_fails_at_once_and_hides_secrets(tmp_path: Path) -> None:
    r = _remote(tmp_path, secret="verysecretvalue")
    f = Flaky([PermissionError("InvalidAccessKeyId: bad key verysecretvalue")])
    with pytest.raises(RemoteError, match="refused the credentials") as ei:
        r.call("listing", f)
    assert f.calls == 1 and "verysecretvalue" not in str(ei.value) and "***" in str(ei.value)


def test_missing_passes_through_and_fatal_is_not_retried(tmp_path: Path) -> None:
    r = _remote(tmp_path)
    with pytest.raises(FileNotFoundError):
        r.call("reading", Flaky([FileNotFoundError("x")]))
    f = Flaky([OSError(errno.ENOSPC, "disk full")])
    with pytest.raises(RemoteError, match="disk full"):
        r.call("writing", f)
    assert f.calls == 1


def test_classify() -> None:
    assert classify(PermissionError("denied")) == "auth"
    assert classify(OSError(errno.EIO, "We encountered an internal error")) == "transient"
    assert classify(ConnectionResetError()) == "transient"
    assert classify(ValueError("bad")) == "fatal"
    assert classify(OSError(errno.EINVAL, "InvalidArgument")) == "fatal"

    class EndpointConnectionError(Exception):
        pass

    assert classify(EndpointConnectionError("Could not connect to the endpoint URL")) == "fatal"


def test_relative_plain_path_is_taken_from_the_repository(tmp_path: Path) -> None:
    r = open_remote(RemoteSpec("o", "../store"), tmp_path / "repo")
    assert r.protocol in ("file", "local") and r.root == str(tmp_path / "store")
    assert not r.atomic_put
    m = open_remote(RemoteSpec("m", "memory://bucket/x"), tmp_path)
    assert m.atomic_put and m.key("index", "a.idx").endswith("bucket/x/index/a.idx")


def test_s3_gets_retry_and_timeout_defaults(tmp_path: Path) -> None:
    r = open_remote(RemoteSpec("s", "s3://bucket/p", {"endpoint_url": "http://127.0.0.1:1",
                                                      "key": "k", "secret": "s"}), tmp_path)
    cfg = r.fs.config_kwargs
    assert cfg["retries"]["max_attempts"] == rfs.S3_RETRIES["max_attempts"]
    assert cfg["connect_timeout"] == 10 and r.root == "bucket/p"
