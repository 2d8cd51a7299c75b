"""A remote's fsspec file system: opening it, calling it with retries and clear errors,
and the store Backend over it (``FsspecBackend``).

Any installed fsspec protocol works (file, memory, s3, gs, az, ssh, ...): the URL picks the
implementation and the remote's config options are passed to it as storage options. Calls
go through ``Remote.call``, which retries transient failures (throttling, 5xx, resets,
truncated bodies) with exponential backoff and jitter and turns every other failure into a
one-line RemoteError with secrets removed.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from ..errors import CasError, CorruptObjectError, RemoteError
from ..store.backend import Entry
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


READ_ONLY_PROTOCOLS = frozenset({"http", "https"})
# On a terminal, a remote call that has not answered after this long says what it waits
# for: an unreachable endpoint used to show nothing for 16-25 s.
SLOW_NOTE_AFTER = 2.0
ENDPOINT_ENV = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


class ServerIgnoredRange(Exception):
    """The server sent more bytes than the range asked for: it ignores Range requests."""


@dataclass
class Remote:
    """An opened remote: its spec, file system and root path inside it."""

    spec: RemoteSpec
    fs: Any
    root: str
    protocol: str
    # Set (to the reporter's note) when a person watches a terminal: says what a slow or
    # retried call is doing. None for scripts and library use: their stderr stays quiet.
    notify: Callable[[str], None] | None = None
    _noted_slow: bool = False

    @property
    def read_only(self) -> bool:
        return self.protocol in READ_ONLY_PROTOCOLS

    def read_only_error(self) -> RemoteError:
        name = self.spec.name
        return RemoteError(self.clean(
            f"remote '{name}' ({self.spec.shown()}) is read-only: HTTP(S) remotes serve "
            f"fetch, pull and import; push to the store's own URL instead (e.g. 'cas push -r "
            f"NAME' to an s3:// or file remote that the web server publishes)"))

    def endpoint_hint(self) -> str:
        """For an S3 remote without an endpoint on this machine: how to give it one.

        Teams on MinIO, Ceph or R2 set endpoint_url with --local (it is machine-specific);
        a fresh clone then talks to AWS itself and fails in ways that never mention the
        endpoint (unreachable, refused credentials, no such bucket)."""
        if self.protocol not in ("s3", "s3a"):
            return ""
        opts = self.spec.options
        client = opts.get("client_kwargs") if isinstance(opts.get("client_kwargs"), dict) \
            else {}
        if opts.get("endpoint_url") or client.get("endpoint_url") \
                or any(os.environ.get(v) for v in ENDPOINT_ENV):
            return ""
        name = self.spec.name
        return (f"; no endpoint_url is set for '{name}' on this machine: if the bucket is "
                f"not on AWS (MinIO, Ceph, R2...), set it with 'cas remote modify {name} "
                "endpoint_url URL --local' or the AWS_ENDPOINT_URL variable")

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
                return self._watched(what, fn, *args, **kw)
            except (FileNotFoundError, CasError):
                raise
            except ServerIgnoredRange as exc:
                raise RemoteError(self.clean(
                    f"remote '{self.spec.name}' ({self.spec.shown()}): the server ignored "
                    f"the Range request ({exc}); casstore reads packs by byte range: serve "
                    "the store with a server that supports Range requests")) from None
            except Exception as exc:  # noqa: BLE001 - every backend raises its own types
                kind = classify(exc)
                if kind == "auth":
                    raise RemoteError(self.auth_message(exc) + self.endpoint_hint()) \
                        from None
                if kind == "fatal" or attempt == attempts - 1:
                    raise RemoteError(self.clean(
                        f"remote '{self.spec.name}' ({self.spec.shown()}): {what} failed: "
                        f"{short(exc)}" + ("" if kind == "fatal" else
                                          f" (after {attempts} attempts)")
                        + self.endpoint_hint())) from None
                wait_s = delay * (0.5 + random.random())
                if self.notify is not None:
                    self.notify(self.clean(
                        f"remote '{self.spec.name}': {what} failed ({short(exc)[:120]}); "
                        f"retrying in {wait_s:.1f} s (attempt {attempt + 2} of {attempts})"))
            time.sleep(wait_s)
            delay = min(delay * 2, MAX_DELAY)
        raise AssertionError("unreachable")  # pragma: no cover

    def _watched(self, what: str, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """``fn(...)``; on a terminal, a note if it has not answered after SLOW_NOTE_AFTER
        (once per remote: parallel calls wait for the same server)."""
        if self.notify is None or self._noted_slow:
            return fn(*args, **kw)

        def slow() -> None:
            if not self._noted_slow and self.notify is not None:
                self._noted_slow = True
                self.notify(self.clean(
                    f"waiting for remote '{self.spec.name}' ({self.spec.shown()}): "
                    f"{what}..."))

        timer = threading.Timer(SLOW_NOTE_AFTER, slow)
        timer.daemon = True
        timer.start()
        try:
            return fn(*args, **kw)
        finally:
            timer.cancel()

    def auth_message(self, exc: BaseException) -> str:
        name = self.spec.name
        if "NoCredentialsError" in type(exc).__name__ or "Unable to locate credentials" in str(exc):
            # Nothing was sent, so nothing was refused: say what is missing and the ways
            # to provide it (the machine-local config keeps keys out of Git).
            return self.clean(
                f"remote '{name}' ({self.spec.shown()}): no credentials found; set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or run "
                f"'cas remote modify {name} profile NAME --local' (or 'key'/'secret' with "
                f"--local); for a public bucket 'cas remote modify {name} anon true'")
        return self.clean(
            f"remote '{name}' ({self.spec.shown()}) refused the credentials "
            f"({short(exc)}); check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the profile "
            f"('cas remote modify {name} profile NAME --local')")


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
    # start-up: fsspec costs ~0.15 s to import; only commands that reach a remote need it
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
    if proto in ("s3", "s3a"):
        _fail_fast_when_unreachable(fs)
    return Remote(spec, fs, path.rstrip("/"), str(proto))


def _fail_fast_when_unreachable(fs: Any) -> None:
    """Make botocore give up at once when the endpoint cannot be connected to at all.

    botocore's standard mode retries connection errors like throttling, with backoff: an
    endpoint that refuses connections or a host name that does not resolve took 11-16 s of
    silent retries to report. Those are not faults a retry fixes (a typo in endpoint_url,
    a server that is not running), so a hook on the client's retry decision raises the
    error on the first attempt; timeouts, resets and 5xx keep their retries.
    """
    try:
        # start-up: botocore is there only for s3:// remotes (and costs ~10 ms)
        from botocore.exceptions import EndpointConnectionError

        # Create the client now (no request is sent) to reach its events. botocore rewrites
        # the retries dict it is given in place, so it gets a copy: the options stay as
        # configured for a later session refresh (and for inspection).
        configured = fs.config_kwargs
        fs.config_kwargs = copy.deepcopy(configured)
        try:
            fs.connect()
        finally:
            fs.config_kwargs = configured
        events = fs.s3.meta.events
    except Exception:  # noqa: BLE001 - an s3fs without these internals keeps the retries
        return

    def no_retry(caught_exception: BaseException | None = None, **_: Any) -> None:
        if isinstance(caught_exception, EndpointConnectionError):
            raise caught_exception

    events.register_first("needs-retry.s3", no_retry, unique_id="cas-fail-fast-unreachable")


class FsspecBackend:
    """The Backend of a store at an fsspec URL (``casstore.store.backend``).

    Every call goes through ``Remote.call`` (retries, one-line errors). Object stores
    publish an upload in one step; elsewhere an upload goes to ``tmp/`` and is renamed.
    """

    def __init__(self, remote: Remote) -> None:
        self.remote = remote
        self.label = f"remote '{remote.spec.name}'"
        # S3 has If-None-Match on PUT; a local path has link(2). Other protocols are
        # written plainly and checked after (the lease says so).
        self.conditional_create = remote.protocol in ("s3", "s3a", "file", "local")

    def _abs(self, key: str) -> str:
        return self.remote.key(key)

    def _fresh(self, path: str) -> str:
        """Drop the file system's cached listing: another client may have written since."""
        with contextlib.suppress(Exception):
            self.remote.fs.invalidate_cache(path)
        return path

    def list(self, folder: str) -> list[Entry]:
        base = self._abs(folder)
        fs = self.remote.fs
        try:
            if self.remote.protocol in ("s3", "s3a") and self.remote.root:
                # One paged listing by key prefix: a plain find of an empty folder would add
                # a HEAD and a second listing to find out whether the folder is a file.
                found = self.remote.call(f"listing {folder}/", fs.find,
                                         self._fresh(self.remote.root), prefix=f"{folder}/",
                                         detail=True)
            else:
                found = self.remote.call(f"listing {folder}/", fs.find, self._fresh(base),
                                         detail=True)
        except FileNotFoundError:
            return []  # a new, empty remote
        root = self.remote.root.rstrip("/")
        out = []
        for path, info in found.items():
            p = str(path)
            if info.get("type") == "directory":
                continue
            rel = p[len(root) + 1:] if root and p.startswith(root + "/") else p.lstrip("/")
            out.append(Entry(rel, int(info.get("size") or 0), modified_time(info)))
        return out

    def read(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        path = self._abs(key)
        fs = self.remote.fs

        def past_end() -> None:
            """A range beyond the end of the file is damage, not a fault to retry (a
            truncated body is): one size request tells which."""
            if end is None:
                return
            size = fs.size(path)
            if size is not None and int(size) < end:
                raise CorruptObjectError(self.remote.clean(
                    f"{key} on remote '{self.remote.spec.name}' is {int(size)} bytes but an "
                    f"index names its bytes {start}-{end}; run 'cas fsck --remote' there"))

        def get() -> bytes:
            try:
                data = fs.cat_file(path, start=start or None, end=end)
            except FileNotFoundError:
                raise
            except Exception as exc:  # noqa: BLE001 - S3 answers 416 for a start past the end
                if "InvalidRange" in str(exc) or "416" in str(exc):
                    past_end()
                raise
            if end is not None and len(data) > end - start:
                # A ranged read answered with more bytes than asked: a plain HTTP server
                # (python -m http.server) answers 200 with the whole file.
                raise ServerIgnoredRange(f"asked for bytes {start}-{end} of {key}, got "
                                         f"{len(data)} bytes")
            if end is not None and len(data) != end - start:
                past_end()
                raise ShortRead(f"got {len(data)} of {end - start} bytes")
            return bytes(data)

        return self.remote.call(f"reading {key}", get)

    def _makedirs(self, path: str) -> None:
        if not self.remote.atomic_put:
            parent = path.rsplit("/", 1)[0]
            self.remote.call("creating a folder", self.remote.fs.makedirs, parent,
                             exist_ok=True)

    def _tmp(self) -> str:
        return self._abs(f"tmp/{uuid.uuid4().hex}.tmp")

    def _write_call(self, what: str, fn: Callable[[], None]) -> None:
        if self.remote.read_only:
            # Before any request: a web server answers a PUT with 501 or 405, which used
            # to be retried six times.
            raise self.remote.read_only_error()
        try:
            self.remote.call(what, fn)
        except FileNotFoundError:
            spec = self.remote.spec
            raise RemoteError(self.remote.clean(
                f"remote '{spec.name}' ({spec.shown()}) does not exist (no such bucket or "
                f"folder); create it first, or fix the URL with 'cas remote modify "
                f"{spec.name} url URL'" + self.remote.endpoint_hint())) from None

    def write(self, key: str, data: bytes) -> None:
        fs, dest = self.remote.fs, self._abs(key)

        def put() -> None:
            if self.remote.atomic_put:
                fs.pipe_file(dest, data)
                return
            tmp = self._tmp()
            self._makedirs(tmp)
            fs.pipe_file(tmp, data)
            if fs.size(tmp) != len(data):
                raise ShortRead(f"writing {key}: short write")
            self._makedirs(dest)
            fs.mv(tmp, dest)

        self._write_call(f"writing {key}", put)

    def upload(self, key: str, local: Path) -> None:
        size = local.stat().st_size
        fs, dest = self.remote.fs, self._abs(key)

        def put() -> None:
            target = dest if self.remote.atomic_put else self._tmp()
            if self.remote.atomic_put:
                fs.put_file(str(local), target, **self.remote.put_options)
            else:
                self._makedirs(target)
                fs.put_file(str(local), target)
            got = fs.size(target)
            if got != size:
                with contextlib.suppress(Exception):
                    fs.rm_file(target)
                raise ShortRead(f"uploading {key}: remote has {got} of {size} bytes")
            if target != dest:
                self._makedirs(dest)
                fs.mv(target, dest)

        self._write_call(f"uploading {key}", put)

    def create(self, key: str, data: bytes) -> bool:
        fs, dest = self.remote.fs, self._abs(key)
        created = True

        def put() -> None:
            nonlocal created
            if self.remote.protocol in ("s3", "s3a"):
                try:
                    fs.pipe_file(dest, data, IfNoneMatch="*")
                except FileExistsError:
                    created = False
                except OSError as exc:
                    if "PreconditionFailed" in str(exc) or "412" in str(exc):
                        created = False
                    else:
                        raise
                return
            if self.remote.protocol in ("file", "local"):
                tmp = self._tmp()
                self._makedirs(tmp)
                fs.pipe_file(tmp, data)
                self._makedirs(dest)
                try:
                    os.link(tmp, dest)  # fails when the name exists: one creator wins
                except FileExistsError:
                    created = False
                finally:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
                return
            if fs.exists(dest):
                created = False
                return
            fs.pipe_file(dest, data)

        self._write_call(f"creating {key}", put)
        return created

    def delete(self, key: str) -> None:
        if self.remote.read_only:
            raise self.remote.read_only_error()
        with contextlib.suppress(FileNotFoundError):
            self.remote.call(f"deleting {key}", self.remote.fs.rm_file, self._abs(key))

    def size(self, key: str) -> int | None:
        try:
            return int(self.remote.call(f"checking {key}", self.remote.fs.size,
                                        self._abs(key)))
        except FileNotFoundError:
            return None


def modified_time(info: dict[str, Any]) -> float | None:
    """The modification time a listing reports, as epoch seconds (backends differ)."""
    for key in ("LastModified", "mtime", "last_modified", "created", "updated", "time"):
        v = info.get(key)
        if v is None:
            continue
        if isinstance(v, (int, float)):
            return float(v)
        ts = getattr(v, "timestamp", None)
        if callable(ts):
            with contextlib.suppress(Exception):
                return float(ts())
        if isinstance(v, str):
            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
    return None
