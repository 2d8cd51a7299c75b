"""Helpers for tests against the local S3 server started by ``.ci/s3server.sh``.

    eval "$(bash .ci/s3server.sh start)"    # exports CAS_TEST_S3_ENDPOINT and AWS_* test keys

``s3_endpoint()`` skips a test when no server is configured, except in CI (env ``CI`` set), where
a missing server fails the test. s3fs is imported inside the functions that need it (it costs
~0.3 s to import).

Retries (measured through ``tests/support/faultproxy.py`` with s3fs 2026.9, aiobotocore 3.10,
botocore 1.43): s3fs has its own retry loop (``S3FileSystem(retries=5)``, the default) that
covers timeouts, connection resets, IncompleteRead/truncated bodies, ResponseParserError and
ClientErrors whose text says "SlowDown" -- but NOT ``500 InternalError``. Those are retried only
by botocore, configured with ``config_kwargs={"retries": {...}}`` (see ``RETRY_CONFIG``). With
botocore retries disabled (``max_attempts: 1``), 1 run in 10 at a 10% fault rate failed with
``OSError: [Errno 121] We encountered an internal error``; with ``RETRY_CONFIG`` (and with
botocore's default legacy mode, 5 attempts) 15/15 runs at 10% and 30% and 5/5 at 50% faults
put and read back 20 objects intact. Set ``RETRY_CONFIG`` explicitly: it does not depend on
``AWS_RETRY_MODE`` / ``AWS_MAX_ATTEMPTS`` or ``~/.aws/config`` of whoever runs the tests.

Caveat for create-if-absent writes: when a PUT with ``If-None-Match: *`` is applied but its
response is lost (fault ``"reset_after"``), the retry gets 412 and s3fs raises
``FileExistsError`` for an object the same call wrote. Code writing content-addressed objects
must treat that as success (after checking the object's size/ETag).
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit

import pytest

ENDPOINT_ENV = "CAS_TEST_S3_ENDPOINT"

# botocore retry configuration that lets s3fs survive injected 503/500/reset/truncation faults.
# "standard" mode retries throttling (503 SlowDown), 500 InternalError and connection errors
# with exponential backoff and jitter; max_attempts counts the first try. Passed to s3fs as
# S3FileSystem(config_kwargs={"retries": ...}) -> botocore.config.Config(retries=...).
RETRY_CONFIG: dict = {"retries": {"max_attempts": 10, "mode": "standard"}}


def s3_endpoint() -> str:
    """URL of the local S3 server; skip (or fail, in CI) when it is not configured."""
    url = os.environ.get(ENDPOINT_ENV, "").strip()
    if url:
        return url.rstrip("/")
    msg = f'{ENDPOINT_ENV} is not set (start the server: eval "$(bash .ci/s3server.sh start)")'
    if os.environ.get("CI"):
        pytest.fail(f"local S3 server missing in CI: {msg}")
    pytest.skip(msg)
    raise AssertionError("unreachable")  # pragma: no cover


def endpoint_address(url: str) -> tuple[str, int]:
    """``http://127.0.0.1:9000`` -> ``("127.0.0.1", 9000)``, e.g. for ``FaultProxy(upstream=)``."""
    parts = urlsplit(url)
    if parts.hostname is None:
        raise ValueError(f"not an http URL: {url!r}")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def storage_options(endpoint: str | None = None, *, retries: bool = False) -> dict:
    """fsspec storage options for the local server: endpoint_url, key, secret.

    With ``retries=True`` the botocore retry configuration ``RETRY_CONFIG`` is added as
    ``config_kwargs``, which fault-injection tests need.
    """
    opts = {
        "endpoint_url": endpoint or s3_endpoint(),
        "key": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        "secret": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    }
    if retries:
        opts["config_kwargs"] = {k: dict(v) for k, v in RETRY_CONFIG.items()}
    return opts


def s3_filesystem(options: dict | None = None, **extra):
    """A new (never cached) ``s3fs.S3FileSystem`` built from storage options."""
    import s3fs

    opts = dict(options if options is not None else storage_options())
    opts.update(extra)
    endpoint = opts.pop("endpoint_url", None)
    client_kwargs = dict(opts.pop("client_kwargs", None) or {})
    if endpoint:
        client_kwargs.setdefault("endpoint_url", endpoint)
    # region: from AWS_DEFAULT_REGION; passing region_name here makes moto reject bucket creation.
    return s3fs.S3FileSystem(client_kwargs=client_kwargs, skip_instance_cache=True, **opts)


def fresh_bucket(
    endpoint: str | None = None, prefix: str = "store", *, retries: bool = False
) -> tuple[str, dict]:
    """Create a new uniquely named bucket; return ``("s3://bucket/prefix", storage_options)``.

    The storage options are what fsspec/s3fs take: ``{"endpoint_url", "key", "secret"}`` (plus
    ``config_kwargs`` with ``retries=True``). The bucket is created directly on ``endpoint`` (not
    through a fault proxy).
    """
    opts = storage_options(endpoint, retries=retries)
    bucket = f"cas-test-{uuid.uuid4().hex[:16]}"
    fs = s3_filesystem(opts)
    fs.mkdir(bucket)
    prefix = prefix.strip("/")
    url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
    return url, opts


@pytest.fixture
def s3_bucket() -> tuple[str, dict]:
    """Fixture form of ``fresh_bucket()``: ``(url, storage_options)`` of a new bucket."""
    return fresh_bucket()
