"""A loopback HTTP/1.1 proxy that injects the faults a real object store produces.

It sits between a client (s3fs, boto, http.client) and an upstream server (the local S3 server)
and, for a configurable fraction of requests chosen by a seeded RNG, answers with one of:

``"503"``
    ``503 SlowDown`` with an S3 XML error body; the request never reaches the server.
``"500"``
    ``500 InternalError`` with an S3 XML error body; the request never reaches the server.
``"reset"``
    the connection is reset (SO_LINGER 0, so the client sees ECONNRESET) after the request was
    read and before it is forwarded: the server never sees it.
``"reset_after"`` (not in the defaults)
    the request IS forwarded and applied by the server, then the connection is reset before the
    response reaches the client: the "did my write happen?" case. A retried create-if-absent
    (``If-None-Match: *``) then gets 412 for an object that its own first attempt wrote.
``"truncate"``
    the request is forwarded; the client gets the response headers and only part of the body
    (for a response without a body: part of the header block), then the connection is closed.
``"latency"``
    the request is delayed by a random time in ``latency`` seconds, then forwarded normally.

Each request/response pair on a keep-alive connection is one unit: the proxy parses request
framing (Content-Length or chunked bodies, ``Expect: 100-continue``) and response framing
(Content-Length, chunked, no body for HEAD/1xx/204/304, or read-until-close) so that a fault hits
exactly one request and the others on the same connection pass untouched.

Usage::

    with FaultProxy(upstream=("127.0.0.1", 9000), rate=0.1, seed=1) as proxy:
        fs = s3fs.S3FileSystem(endpoint_url=proxy.url, ...)
        ...
        assert proxy.stats.faults["503"] > 0

Stdlib only; all threads are daemons and stop when the context exits (open connections are
closed). Each forwarded request uses a fresh upstream connection, so a stale upstream keep-alive
connection can never be mistaken for an injected fault.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = ["ALL_FAULTS", "DEFAULT_FAULTS", "FaultProxy", "ProxyStats", "Request"]

DEFAULT_FAULTS: tuple[str, ...] = ("503", "500", "reset", "truncate", "latency")
ALL_FAULTS: tuple[str, ...] = DEFAULT_FAULTS + ("reset_after",)

_MAX_HEAD = 64 * 1024
_BUF = 64 * 1024

_ERRORS = {
    "503": (
        503,
        "Slow Down",
        "SlowDown",
        "Please reduce your request rate.",
    ),
    "500": (
        500,
        "Internal Server Error",
        "InternalError",
        "We encountered an internal error. Please try again.",
    ),
}


class _Closed(Exception):
    """The peer closed the connection (cleanly, between requests or mid-message)."""


@dataclass
class Request:
    """One parsed client request, as handed to a ``predicate``."""

    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes  # raw body bytes as framed on the wire (chunked bodies stay chunked)

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default


@dataclass
class ProxyStats:
    """Counters, updated under a lock by the proxy threads."""

    connections: int = 0
    requests: int = 0  # requests read from clients (faulted or not)
    forwarded: int = 0  # requests sent to the upstream server
    faults: Counter = field(default_factory=Counter)  # kind -> count
    upstream_errors: int = 0  # upstream unreachable / broke off (answered 502 / closed)

    @property
    def total_faults(self) -> int:
        return sum(self.faults.values())

    def as_dict(self) -> dict:
        return {
            "connections": self.connections,
            "requests": self.requests,
            "forwarded": self.forwarded,
            "faults": dict(self.faults),
            "total_faults": self.total_faults,
            "upstream_errors": self.upstream_errors,
        }


# ---------------------------------------------------------------------------------------------
# HTTP/1.1 framing helpers (over a buffered binary reader from socket.makefile("rb"))


def _read_head(reader) -> bytes:
    """Read a message head up to and including the blank line. Raises _Closed on EOF."""
    lines = []
    size = 0
    while True:
        line = reader.readline(_MAX_HEAD + 1)
        if not line:
            raise _Closed("eof in head" if lines else "eof")
        if not lines and line in (b"\r\n", b"\n"):
            continue  # tolerate stray CRLF between messages (RFC 9112 2.2)
        lines.append(line)
        size += len(line)
        if size > _MAX_HEAD:
            raise ValueError("message head too large")
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)


def _parse_head(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    text = head.decode("latin-1")
    lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
    start = lines[0]
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return start, headers


def _get(headers: list[tuple[str, str]], name: str) -> str | None:
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def _is_chunked(headers: list[tuple[str, str]]) -> bool:
    te = _get(headers, "transfer-encoding")
    return bool(te) and te.lower().split(",")[-1].strip() == "chunked"


def _read_exact(reader, n: int) -> bytes:
    data = reader.read(n)
    if data is None or len(data) < n:
        raise _Closed("eof in body")
    return data


def _read_chunked(reader) -> bytes:
    """Read a chunked body, returned raw (sizes, extensions and trailers included)."""
    parts = []
    while True:
        line = reader.readline(_MAX_HEAD)
        if not line:
            raise _Closed("eof in chunk size")
        parts.append(line)
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while True:  # trailer section, ends with an empty line
                t = reader.readline(_MAX_HEAD)
                if not t:
                    raise _Closed("eof in trailers")
                parts.append(t)
                if t in (b"\r\n", b"\n"):
                    return b"".join(parts)
        parts.append(_read_exact(reader, size))
        crlf = reader.readline(_MAX_HEAD)
        if not crlf:
            raise _Closed("eof after chunk")
        parts.append(crlf)


def _build_head(start: str, headers: list[tuple[str, str]]) -> bytes:
    out = [start]
    out.extend(f"{k}: {v}" for k, v in headers)
    return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")


def _without(headers: list[tuple[str, str]], *names: str) -> list[tuple[str, str]]:
    drop = {n.lower() for n in names}
    return [(k, v) for k, v in headers if k.lower() not in drop]


def _reset(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN: the peer's next read fails with ECONNRESET."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------


class FaultProxy:
    """Loopback TCP proxy injecting S3-style faults; see the module docstring.

    Parameters:
        upstream: ``(host, port)`` of the real server (loopback).
        rate: probability in [0, 1] that a request gets a fault; may be changed while running.
        faults: kinds to choose from, uniformly (see ``ALL_FAULTS``); may be changed while running.
        seed: RNG seed; the sequence of decisions is reproducible (their assignment to requests
            depends on the order in which concurrent requests arrive).
        latency: ``(min, max)`` seconds added by a ``"latency"`` fault.
        predicate: optional ``f(request) -> bool``; only requests for which it returns True are
            eligible for faults (e.g. only GETs, only keys under a prefix).
        host, port: where to listen (default 127.0.0.1 and an ephemeral port).
        idle_timeout: seconds a client connection may sit idle before the proxy closes it.
    """

    def __init__(
        self,
        upstream: tuple[str, int],
        rate: float = 0.1,
        faults: Iterable[str] = DEFAULT_FAULTS,
        seed: int | None = 1,
        latency: tuple[float, float] = (0.05, 0.5),
        predicate: Callable[[Request], bool] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        idle_timeout: float = 60.0,
    ) -> None:
        self.upstream = (upstream[0], int(upstream[1]))
        self.rate = rate
        self.faults = faults
        self.latency = latency
        self.predicate = predicate
        self.idle_timeout = idle_timeout
        self.stats = ProxyStats()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._host = host
        self._port = port
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._socks: set[socket.socket] = set()
        self._stopping = threading.Event()

    # -- configuration ------------------------------------------------------------------------

    @property
    def faults(self) -> tuple[str, ...]:
        return self._faults

    @faults.setter
    def faults(self, kinds: Iterable[str]) -> None:
        kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
        unknown = set(kinds) - set(ALL_FAULTS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {ALL_FAULTS}")
        if not kinds:
            raise ValueError("faults must name at least one kind")
        self._faults = kinds

    @property
    def rate(self) -> float:
        return self._rate

    @rate.setter
    def rate(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError("rate must be within [0, 1]")
        self._rate = float(value)

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        if self._listener is None:
            raise RuntimeError("proxy not started")
        return self._listener.getsockname()[:2]

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    def start(self) -> FaultProxy:
        if self._listener is not None:
            return self
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((self._host, self._port))
        ls.listen(128)
        self._listener = ls
        self._stopping.clear()
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"faultproxy-accept-{self.port}", daemon=True
        )
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        ls, self._listener = self._listener, None
        if ls is not None:
            try:
                ls.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            ls.close()
        with self._lock:
            socks = list(self._socks)
            self._socks.clear()
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=5)
            self._accept_thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._listener is not None else "stopped"
        return f"FaultProxy({where} -> {self.upstream}, rate={self.rate}, faults={self.faults})"

    # -- internals ----------------------------------------------------------------------------

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.add(sock)

    def _untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.discard(sock)

    def _accept_loop(self) -> None:
        ls = self._listener
        while not self._stopping.is_set() and ls is not None:
            try:
                client, _ = ls.accept()
            except OSError:
                return
            if self._stopping.is_set():
                client.close()
                return
            with self._lock:
                self.stats.connections += 1
            self._track(client)
            threading.Thread(
                target=self._serve_client, args=(client,), name="faultproxy-conn", daemon=True
            ).start()

    def _decide(self, req: Request) -> tuple[str | None, float, float]:
        """Return (fault kind or None, added latency in s, fraction kept by a truncation)."""
        eligible = self.predicate is None or self.predicate(req)
        with self._lock:
            self.stats.requests += 1
            if not eligible or self._rate <= 0.0:
                return None, 0.0, 1.0
            if self._rng.random() >= self._rate:
                return None, 0.0, 1.0
            kind = self._rng.choice(self._faults)
            self.stats.faults[kind] += 1
            lo, hi = self.latency
            delay = self._rng.uniform(lo, hi) if kind == "latency" else 0.0
            cut = self._rng.random()
        return kind, delay, cut

    def _serve_client(self, client: socket.socket) -> None:
        client.settimeout(self.idle_timeout)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = client.makefile("rb", buffering=_BUF)
        try:
            while not self._stopping.is_set():
                try:
                    head = _read_head(reader)
                except (_Closed, OSError, ValueError):
                    return
                start, headers = _parse_head(head)
                try:
                    method, target, version = start.split(" ", 2)
                except ValueError:
                    return
                # Answer "Expect: 100-continue" ourselves and never forward it: the client
                # sends its body, and the upstream never sends an interim response.
                expect = _get(headers, "expect")
                if expect and expect.lower() == "100-continue":
                    client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                try:
                    if _is_chunked(headers):
                        body = _read_chunked(reader)
                    else:
                        body = _read_exact(reader, int(_get(headers, "content-length") or 0))
                except (_Closed, OSError, ValueError):
                    return
                req = Request(method.upper(), target, version, headers, body)
                conn_hdr = (_get(headers, "connection") or "").lower()
                client_close = "close" in conn_hdr or (
                    version == "HTTP/1.0" and "keep-alive" not in conn_hdr
                )

                kind, delay, cut = self._decide(req)
                if kind in ("503", "500"):
                    self._send_error(client, req, kind, client_close)
                    if client_close:
                        return
                    continue
                if kind == "reset":
                    self._untrack(client)
                    _reset(client)
                    return
                if delay:
                    time.sleep(delay)
                keep = self._forward(client, req, kind, cut, client_close)
                if not keep:
                    return
        finally:
            self._untrack(client)
            try:
                reader.close()
            except OSError:
                pass
            try:
                client.close()
            except OSError:
                pass

    def _send_error(self, client: socket.socket, req: Request, kind: str, close: bool) -> None:
        status, reason, code, message = _ERRORS[kind]
        rid = uuid.uuid4().hex[:16].upper()
        resource = req.target.split("?", 1)[0]
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<Resource>{resource}</Resource><RequestId>{rid}</RequestId></Error>"
        ).encode()
        headers = [
            ("Content-Type", "application/xml"),
            ("Content-Length", str(len(body))),
            ("x-amz-request-id", rid),
            ("Server", "FaultProxy"),
            ("Connection", "close" if close else "keep-alive"),
        ]
        data = _build_head(f"HTTP/1.1 {status} {reason}", headers)
        if req.method != "HEAD":
            data += body
        try:
            client.sendall(data)
        except OSError:
            pass

    def _forward(
        self, client: socket.socket, req: Request, kind: str | None, cut: float, close: bool
    ) -> bool:
        """Forward one request upstream and relay (or damage) its response.

        Returns True when the client connection stays usable for the next request.
        """
        up_headers = _without(req.headers, "expect", "connection", "keep-alive", "proxy-connection")
        up_headers.append(("Connection", "close"))
        data = _build_head(f"{req.method} {req.target} {req.version}", up_headers) + req.body
        try:
            up = socket.create_connection(self.upstream, timeout=max(self.idle_timeout, 30.0))
        except OSError:
            with self._lock:
                self.stats.upstream_errors += 1
            self._send_bad_gateway(client)
            return False
        self._track(up)
        up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        up_reader = up.makefile("rb", buffering=_BUF)
        try:
            try:
                up.sendall(data)
                with self._lock:
                    self.stats.forwarded += 1
                head = _read_head(up_reader)
                start, headers = _parse_head(head)
                status = int(start.split(" ", 2)[1])
                while 100 <= status < 200:  # interim responses: pass on, read the final one
                    client.sendall(head)
                    head = _read_head(up_reader)
                    start, headers = _parse_head(head)
                    status = int(start.split(" ", 2)[1])
            except (_Closed, OSError, ValueError, IndexError):
                with self._lock:
                    self.stats.upstream_errors += 1
                self._send_bad_gateway(client)
                return False

            if kind == "reset_after":
                self._untrack(client)
                _reset(client)
                return False

            no_body = req.method == "HEAD" or status in (204, 304)
            chunked = not no_body and _is_chunked(headers)
            length = _get(headers, "content-length")
            until_close = not no_body and not chunked and length is None
            keep = not close and not until_close
            out_headers = _without(headers, "connection", "keep-alive")
            out_headers.append(("Connection", "keep-alive" if keep else "close"))
            out_head = _build_head(start, out_headers)

            if kind == "truncate":
                self._truncate(client, up_reader, out_head, no_body, chunked, length, cut)
                return False

            client.sendall(out_head)
            if no_body:
                pass
            elif chunked:
                client.sendall(_read_chunked(up_reader))
            elif length is not None:
                remaining = int(length)
                while remaining > 0:
                    block = up_reader.read1(min(remaining, _BUF))
                    if not block:
                        raise _Closed("upstream eof in body")
                    client.sendall(block)
                    remaining -= len(block)
            else:
                while True:
                    block = up_reader.read1(_BUF)
                    if not block:
                        break
                    client.sendall(block)
            return keep
        except (_Closed, OSError, ValueError):
            # Upstream broke off mid-body or the client went away: the client sees a short
            # response followed by a close, which is what a real network does too.
            with self._lock:
                self.stats.upstream_errors += 1
            return False
        finally:
            self._untrack(up)
            try:
                up_reader.close()
            except OSError:
                pass
            try:
                up.close()
            except OSError:
                pass

    def _truncate(self, client, up_reader, out_head, no_body, chunked, length, cut) -> None:
        if no_body or (length is not None and int(length) == 0):
            # Nothing to cut in a body: cut the header block instead.
            client.sendall(out_head[: max(1, int(len(out_head) * cut))])
            return
        if chunked:
            body = _read_chunked(up_reader)
        elif length is not None:
            body = _read_exact(up_reader, int(length))
        else:
            body = up_reader.read()
        # Keep between 0 and len-1 bytes of the body, so the response is always short.
        keep = min(int(len(body) * cut), len(body) - 1)
        client.sendall(out_head + body[:keep])
        try:
            client.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _send_bad_gateway(self, client: socket.socket) -> None:
        body = b"FaultProxy: upstream unavailable\n"
        head = _build_head(
            "HTTP/1.1 502 Bad Gateway",
            [
                ("Content-Type", "text/plain"),
                ("Content-Length", str(len(body))),
                ("Connection", "close"),
            ],
        )
        try:
            client.sendall(head + body)
        except OSError:
            pass
