"""Opening a remote's fsspec file system, and calling it with retries and clear errors.

Any installed fsspec protocol works (file, memory, s3, gs, az, ssh, ...): the URL picks the
implementation and the remote's config options are passed to it as storage options. Calls
go through ``Remote.call``, which retries transient failures (throttling, 5xx, resets,
truncated bodies) with exponential backoff and jitter and turns every other failure into a
one-line RemoteError with secrets removed.
"""

from __future__ import annotations

import errno
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..errors import CasError, RemoteError
from .config import RemoteSpec, redact

T = TypeVar("T")

# Object stores write an object in one step (a multipart upload appears on completion), so
# objects are uploaded to their final key. Elsewhere (local disks, SSH, WebDAV) an upload is
# written to tmp/ and renamed, so a reader never sees half a file.
ATOMIC_PUT_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl",
                                  "memory", "oss", "r2"})
# botocore retries throttling, 5xx and connection errors itself (with backoff and jitter);
# our own loop around each call adds a few more rounds for what slips through (truncated
# bodies, errors s3fs re-raises), so each layer stays modest.
S3_RETRIES = {"max_attempts": 5, "mode": "standard"}
S3_TIMEOUTS = {"connect_timeout": 10, "read_timeout": 120}
# Errors that botocore has already retried and that another round will not fix quickly.
UNREACHABLE = ("EndpointConnectionError", "Could not connect to the endpoint",
               "Name or service not known", "nodename nor servname")
ATTEMPTS = 6
FIRST_DELAY = 0.2
MAX_DELAY = 8.0
AUTH_CODES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken",
              "InvalidToken", "AuthorizationHeaderMalformed", "NoCredentialsError",
              "PartialCredentialsError", "Unable to locate credentials")
FATAL_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EINVAL, errno.EPERM,
                          errno.EMSGSIZE, errno.ENAMETOOLONG, errno.ENOTEMPTY, errno.EACCES})
TRANSIENT_MODULES = ("aiohttp", "botocore", "aiobotocore", "urllib3", "http.client",
                     "requests", "ssl", "asyncio")


PUT_PART = 8 << 20


class ShortRead(Exception):
    """A response had fewer bytes than asked for (a truncated body): worth retrying."""


@dataclass
class Remote:
    """An opened remote: its spec, file system and root path inside it."""

    spec: RemoteSpec
    fs: Any
    root: str
    protocol: str

    @property
    def atomic_put(self) -> bool:
        return self.protocol in ATOMIC_PUT_PROTOCOLS

    @property
    def put_options(self) -> dict[str, int]:
        """Extra arguments for ``fs.put_file``.

        s3fs reads a file under 100 MiB whole into memory for one PUT, and splits bigger ones
        into 50 MiB parts sent ten at a time: with several 64 MiB packs in flight, pushing
        1 GiB to the local S3 server peaked at 1.2 GiB of memory. Parts of 8 MiB, one at a
        time per pack (packs already go up in parallel), bring that to 260 MiB at the same
        speed; the multipart object still appears only when complete.
        """
        if self.protocol in ("s3", "s3a"):
            return {"chunksize": PUT_PART, "max_concurrency": 1}
        return {}

    def key(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts]) if self.root else "/".join(parts)

    def clean(self, text: str) -> str:
        return redact(text, self.spec.secrets())

    def call(self, what: str, fn: Callable[..., T], *args: Any, attempts: int = ATTEMPTS,
             **kw: Any) -> T:
        """``fn(*args, **kw)`` with retries; FileNotFoundError passes through unchanged."""
        delay = FIRST_DELAY
        for attempt in range(attempts):
            try:
                return fn(*args, **kw)
            except (FileNotFoundError, CasError):
                raise
            except Exception as exc:  # noqa: BLE001 - every backend raises its own types
                kind = classify(exc)
                if kind == "auth":
                    raise RemoteError(self.auth_message(exc)) from None
                if kind == "fatal" or attempt == attempts - 1:
                    raise RemoteError(self.clean(
                        f"remote '{self.spec.name}' ({self.spec.shown()}): {what} failed: "
                        f"{short(exc)}" + ("" if kind == "fatal" else
                                          f" (after {attempts} attempts)"))) from None
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, MAX_DELAY)
        raise AssertionError("unreachable")  # pragma: no cover

    def auth_message(self, exc: BaseException) -> str:
        return self.clean(
            f"remote '{self.spec.name}' ({self.spec.shown()}) refused the credentials "
            f"({short(exc)}); check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the profile "
            f"('cas remote modify {self.spec.name} profile NAME --local')")


def short(exc: BaseException) -> str:
    """One line describing ``exc``."""
    text = str(exc).strip().splitlines()
    msg = text[0] if text else ""
    name = type(exc).__name__
    return f"{name}: {msg}"[:300] if msg else name


def classify(exc: BaseException) -> str:
    """'auth', 'transient' or 'fatal'."""
    name = type(exc).__name__
    text = f"{name} {exc}"
    if isinstance(exc, PermissionError) or any(c in text for c in AUTH_CODES):
        return "auth"
    if any(u in text for u in UNREACHABLE):
        return "fatal"
    if isinstance(exc, (ShortRead, ConnectionError, TimeoutError)):
        return "transient"
    if isinstance(exc, (IsADirectoryError, NotADirectoryError, FileExistsError)):
        return "fatal"
    if isinstance(exc, OSError) and exc.errno in FATAL_ERRNOS:
        return "fatal"
    if isinstance(exc, (OSError, EOFError)):
        return "transient"  # s3fs maps 5xx/SlowDown and stream errors to OSError
    mod = type(exc).__module__ or ""
    if mod.startswith(TRANSIENT_MODULES):
        return "transient"
    return "fatal"


def open_remote(spec: RemoteSpec, base: Path) -> Remote:
    """Open ``spec``'s file system; relative plain paths are taken from ``base``."""
    import fsspec

    url = spec.url
    protocol, _ = fsspec.core.split_protocol(url)
    if protocol is None:
        url = os.path.normpath(base / os.path.expanduser(url))
        protocol = "file"
    opts: dict[str, Any] = dict(spec.options)
    if protocol in ("s3", "s3a"):
        cfg = dict(opts.get("config_kwargs") or {})
        cfg.setdefault("retries", dict(S3_RETRIES))
        for k, v in S3_TIMEOUTS.items():
            cfg.setdefault(k, v)
        opts["config_kwargs"] = cfg
    try:
        fs, path = fsspec.core.url_to_fs(url, skip_instance_cache=True, **opts)
    except (ImportError, ValueError) as exc:
        raise RemoteError(redact(
            f"remote '{spec.name}': cannot open {spec.shown()} ({short(exc)}); for "
            f"'{protocol}://' install the fsspec package that provides it", spec.secrets())
        ) from None
    except TypeError as exc:
        raise RemoteError(redact(
            f"remote '{spec.name}': an option is not understood by the '{protocol}' file "
            f"system ({short(exc)}); see 'cas remote list'", spec.secrets())) from None
    except Exception as exc:  # noqa: BLE001 - third-party constructors raise anything
        raise RemoteError(redact(f"remote '{spec.name}': cannot open {spec.shown()} "
                                 f"({short(exc)})", spec.secrets())) from None
    proto = fs.protocol[0] if isinstance(fs.protocol, (tuple, list)) else fs.protocol
    return Remote(spec, fs, path.rstrip("/"), str(proto))
