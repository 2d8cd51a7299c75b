"""Tests of the fault-injecting proxy used by the remote and reliability tests.

Two upstreams: a tiny stdlib HTTP/1.1 server defined here (always available; exercises framing:
keep-alive, chunked bodies, 100-continue) and the local S3 server from ``.ci/s3server.sh``
(``CAS_TEST_S3_ENDPOINT``; skipped when missing outside CI, a failure in CI).
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from support.faultproxy import ALL_FAULTS, DEFAULT_FAULTS, FaultProxy
from support.s3 import (
    endpoint_address,
    fresh_bucket,
    s3_endpoint,
    s3_filesystem,
    storage_options,
)

MiB = 1024 * 1024


def _payload(n: int, seed: int = 0) -> bytes:
    """Deterministic incompressible-ish bytes."""
    out = bytearray()
    block = hashlib.sha256(f"{seed}".encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:n])


# ---------------------------------------------------------------------------------------------
# A local HTTP/1.1 upstream


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output quiet
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def _send(self, status: int, body: bytes, head_only: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head_only:
            self.wfile.write(body)

    def do_GET(self):
        kind, _, n = self.path.strip("/").partition("/")
        if kind == "bytes":
            self._send(200, _payload(int(n)))
        elif kind == "chunked":
            data = _payload(int(n))
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(data), 10_000):
                part = data[i : i + 10_000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif kind == "empty":
            self.send_response(204)
            self.end_headers()
        else:
            self._send(404, b"not found\n")

    def do_HEAD(self):
        self._send(200, _payload(int(self.path.rsplit("/", 1)[-1] or 0)), head_only=True)

    def do_PUT(self):
        body = self._body()
        self.server.received.append(body)
        self._send(200, f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode())

    do_POST = do_PUT


@pytest.fixture(scope="module")
def local_upstream():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.received = []
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server.server_address[:2]
    server.shutdown()
    server.server_close()


def _conn(proxy: FaultProxy, timeout: float = 10) -> http.client.HTTPConnection:
    host, port = proxy.address
    return http.client.HTTPConnection(host, port, timeout=timeout)


def _request(conn, target: dict, method: str, path: str, body: bytes | None = None) -> None:
    """Send a raw request, signed when the target needs it."""
    headers = target["sign"](conn, method, path, body) if target.get("sign") else {}
    conn.request(method, path, body=body, headers=headers)


def _sigv4(conn, method: str, path: str, body: bytes | None) -> dict:
    """SigV4 headers for a raw request (moto refuses anonymous access to private buckets)."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    opts = storage_options()
    req = AWSRequest(method=method, url=f"http://{conn.host}:{conn.port}{path}", data=body or b"")
    S3SigV4Auth(Credentials(opts["key"], opts["secret"]), "s3", "us-east-1").add_auth(req)
    return {k: v for k, v in req.headers.items() if k.lower() != "host"}


def _echo(data: bytes) -> bytes:
    return f"{len(data)} {hashlib.sha256(data).hexdigest()}".encode()


# ---------------------------------------------------------------------------------------------
# Framing and lifecycle (local upstream; always run)


def test_keepalive_many_requests_one_connection(local_upstream):
    with FaultProxy(local_upstream, rate=0.0) as proxy:
        conn = _conn(proxy)
        for i in range(25):
            n = (i * 7919) % 300_000
            conn.request("GET", f"/bytes/{n}")
            r = conn.getresponse()
            assert r.status == 200
            assert r.read() == _payload(n)
            conn.request("HEAD", f"/bytes/{n}")
            r = conn.getresponse()
            assert r.status == 200 and int(r.headers["Content-Length"]) == n
            assert r.read() == b""
        conn.request("GET", "/empty/0")
        r = conn.getresponse()
        assert r.status == 204 and r.read() == b""
        conn.close()
        assert proxy.stats.connections == 1
        assert proxy.stats.requests == 51 == proxy.stats.forwarded
        assert proxy.stats.total_faults == 0


def test_request_bodies_content_length_chunked_and_expect(local_upstream):
    data = _payload(700_000, seed=5)
    with FaultProxy(local_upstream, rate=0.0) as proxy:
        conn = _conn(proxy)
        conn.request("PUT", "/a", body=data)
        assert conn.getresponse().read() == _echo(data)
        # chunked request body, on the same keep-alive connection
        conn.request("PUT", "/b", body=iter([data[:1000], data[1000:]]), encode_chunked=True)
        assert conn.getresponse().read() == _echo(data)
        # Expect: 100-continue: the proxy answers 100 itself and strips the header upstream
        conn.putrequest("PUT", "/c")
        conn.putheader("Content-Length", str(len(data)))
        conn.putheader("Expect", "100-continue")
        conn.endheaders()
        conn.send(data)
        assert conn.getresponse().read() == _echo(data)
        # chunked response
        conn.request("GET", "/chunked/123457")
        r = conn.getresponse()
        assert r.status == 200 and r.read() == _payload(123_457)
        conn.close()
        assert proxy.stats.connections == 1


def test_concurrent_clients(local_upstream):
    errors = []

    def worker(k: int) -> None:
        try:
            conn = _conn(proxy)
            for i in range(10):
                n = 1000 * (k + 1) + i
                conn.request("GET", f"/bytes/{n}")
                assert conn.getresponse().read() == _payload(n)
            conn.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    with FaultProxy(local_upstream, rate=0.0) as proxy:
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors
        assert proxy.stats.requests == 80


def test_seeded_decisions_are_reproducible(local_upstream):
    def run(seed: int) -> list[int]:
        statuses = []
        with FaultProxy(local_upstream, rate=0.5, faults=("503", "500"), seed=seed) as proxy:
            conn = _conn(proxy)
            for _ in range(40):
                conn.request("GET", "/bytes/10")
                r = conn.getresponse()
                r.read()
                statuses.append(r.status)
            conn.close()
        return statuses

    first = run(7)
    assert first == run(7)
    assert first != run(8)
    assert {200, 500, 503} == set(first)


def test_predicate_limits_faults(local_upstream):
    with FaultProxy(
        local_upstream, rate=1.0, faults="503", predicate=lambda req: req.method == "PUT"
    ) as proxy:
        conn = _conn(proxy)
        conn.request("GET", "/bytes/5")
        r = conn.getresponse()
        assert r.status == 200 and r.read() == _payload(5)
        conn.request("PUT", "/x", body=b"abc")
        r = conn.getresponse()
        assert r.status == 503 and b"SlowDown" in r.read()
        assert proxy.stats.faults == {"503": 1}


def test_stops_when_context_exits(local_upstream):
    before = threading.active_count()
    with FaultProxy(local_upstream, rate=0.0) as proxy:
        conn = _conn(proxy)
        conn.request("GET", "/bytes/10")
        conn.getresponse().read()  # leave the keep-alive connection open
        address = proxy.address
    with pytest.raises(OSError):
        socket.create_connection(address, timeout=2).close()
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= before
    assert all(t.daemon for t in threading.enumerate() if t.name.startswith("faultproxy"))
    conn.close()


def test_rejects_bad_configuration(local_upstream):
    with pytest.raises(ValueError):
        FaultProxy(local_upstream, faults=("teapot",))
    with pytest.raises(ValueError):
        FaultProxy(local_upstream, rate=1.5)
    assert set(DEFAULT_FAULTS) < set(ALL_FAULTS)


# ---------------------------------------------------------------------------------------------
# Each fault kind at rate 1.0, seen by a raw http.client request (local upstream and S3)


@pytest.fixture(params=["local", "s3"])
def target(request, local_upstream):
    """(upstream address, GET path of an object of known content, PUT path, check_put)."""
    if request.param == "local":
        n = 200_000
        return {
            "upstream": local_upstream,
            "get": f"/bytes/{n}",
            "data": _payload(n),
            "put": "/upload",
            "exists": None,
        }
    endpoint = s3_endpoint()
    url, opts = fresh_bucket(endpoint)
    fs = s3_filesystem(opts)
    data = _payload(200_000, seed=1)
    fs.pipe(f"{url}/obj", data)
    bucket_path = url.removeprefix("s3://")

    def exists(key: str) -> bool:
        return fs.exists(f"{url}/{key}")

    return {
        "upstream": endpoint_address(endpoint),
        "get": f"/{bucket_path}/obj",
        "data": data,
        "put": f"/{bucket_path}/new",
        "exists": exists,
        "sign": _sigv4,
    }


@pytest.mark.parametrize("kind", ["503", "500"])
def test_error_fault(target, kind):
    with FaultProxy(target["upstream"], rate=1.0, faults=(kind,)) as proxy:
        conn = _conn(proxy)
        _request(conn, target, "GET", target["get"])
        r = conn.getresponse()
        body = r.read()
        code = {"503": b"SlowDown", "500": b"InternalError"}[kind]
        assert r.status == int(kind)
        assert r.headers["Content-Type"] == "application/xml"
        assert body.startswith(b"<?xml") and b"<Code>" + code + b"</Code>" in body
        assert proxy.stats.forwarded == 0
        # the connection stays usable, like S3's own error responses
        proxy.rate = 0.0
        _request(conn, target, "GET", target["get"])
        r = conn.getresponse()
        assert r.status == 200 and r.read() == target["data"]
        assert proxy.stats.connections == 1
        assert proxy.stats.faults == {kind: 1}
        assert proxy.stats.requests == 2
        conn.close()


def test_reset_fault(target):
    with FaultProxy(target["upstream"], rate=1.0, faults=("reset",)) as proxy:
        conn = _conn(proxy)
        _request(conn, target, "PUT", target["put"], b"payload")
        with pytest.raises(ConnectionResetError) as info:
            conn.getresponse()
        assert info.value.errno == errno.ECONNRESET  # a real RST, not a clean close
        assert proxy.stats.forwarded == 0
        if target["exists"]:
            assert not target["exists"]("new")  # never reached the server


def test_reset_after_fault_applies_the_write(target):
    with FaultProxy(target["upstream"], rate=1.0, faults=("reset_after",)) as proxy:
        conn = _conn(proxy)
        _request(conn, target, "PUT", target["put"], b"payload")
        with pytest.raises(ConnectionResetError):
            conn.getresponse()
        assert proxy.stats.forwarded == 1
        if target["exists"]:
            assert target["exists"]("new")  # the server applied it; the client never knew


def test_truncate_fault(target):
    with FaultProxy(target["upstream"], rate=1.0, faults=("truncate",), seed=3) as proxy:
        for _ in range(3):
            conn = _conn(proxy)
            _request(conn, target, "GET", target["get"])
            r = conn.getresponse()
            assert r.status == 200
            assert int(r.headers["Content-Length"]) == len(target["data"])
            with pytest.raises(http.client.IncompleteRead) as info:
                r.read()
            assert len(info.value.partial) < len(target["data"])
            assert target["data"].startswith(info.value.partial)
            conn.close()
        assert proxy.stats.faults == {"truncate": 3}


def test_latency_fault(target):
    with FaultProxy(target["upstream"], rate=1.0, faults=("latency",), latency=(0.3, 0.3)) as p:
        conn = _conn(p)
        t0 = time.monotonic()
        _request(conn, target, "GET", target["get"])
        r = conn.getresponse()
        assert r.status == 200 and r.read() == target["data"]
        assert time.monotonic() - t0 >= 0.3
        assert p.stats.faults == {"latency": 1}
        conn.close()


# ---------------------------------------------------------------------------------------------
# s3fs through the proxy (S3 only)


@pytest.mark.s3
def test_s3fs_round_trip_without_faults():
    endpoint = s3_endpoint()
    url, opts = fresh_bucket(endpoint)
    big, small = _payload(12 * MiB, seed=2), _payload(3 * MiB + 17, seed=3)
    with FaultProxy(endpoint_address(endpoint), rate=0.0) as proxy:
        fs = s3_filesystem(dict(opts, endpoint_url=proxy.url))
        # multipart upload (5 MiB parts), then a single PUT
        with fs.open(f"{url}/big", "wb", block_size=5 * MiB) as f:
            f.write(big)
        fs.pipe(f"{url}/small", small)
        assert fs.cat(f"{url}/big") == big
        assert fs.cat(f"{url}/small") == small
        with fs.open(f"{url}/big", "rb", block_size=MiB) as f:  # ranged reads
            f.seek(7 * MiB + 3)
            assert f.read(MiB) == big[7 * MiB + 3 : 8 * MiB + 3]
        assert sorted(fs.ls(url)) == sorted([f"{url[5:]}/big", f"{url[5:]}/small"])
        assert proxy.stats.total_faults == 0
        assert proxy.stats.requests >= 8 and proxy.stats.upstream_errors == 0


@pytest.mark.s3
def test_s3fs_survives_ten_percent_faults():
    endpoint = s3_endpoint()
    # Retries: botocore's "standard" mode with 10 attempts, passed to s3fs as
    # config_kwargs={"retries": {"max_attempts": 10, "mode": "standard"}} (RETRY_CONFIG),
    # on top of s3fs's own retry loop (retries=5 by default). s3fs alone does not retry
    # 500 InternalError; botocore does. See tests/support/s3.py for the measurements.
    url, opts = fresh_bucket(endpoint, retries=True)
    objects = {f"{url}/obj-{i:02d}": _payload(1000 + i * 37_000, seed=100 + i) for i in range(20)}
    with FaultProxy(
        endpoint_address(endpoint), rate=0.1, faults=ALL_FAULTS, seed=1, latency=(0.01, 0.2)
    ) as proxy:
        fs = s3_filesystem(dict(opts, endpoint_url=proxy.url))
        fs.pipe(objects)  # concurrent PUTs
        got = fs.cat(sorted(objects))  # concurrent GETs
        listed = fs.find(url)
        stats = proxy.stats.as_dict()
    print("fault proxy stats:", stats)
    assert got == {p.removeprefix("s3://"): d for p, d in objects.items()}
    assert sorted(listed) == sorted(p.removeprefix("s3://") for p in objects)
    assert stats["total_faults"] >= 2, stats
    assert len(stats["faults"]) >= 2, stats
    # and the server really holds intact objects (checked without the proxy)
    direct = s3_filesystem(opts)
    for path, data in objects.items():
        assert direct.cat(path) == data


@pytest.mark.s3
def test_moto_honors_if_none_match():
    """Create-if-absent works on the local server; the remote code may rely on it."""
    url, opts = fresh_bucket(s3_endpoint())
    fs = s3_filesystem(opts)
    fs.pipe_file(f"{url}/once", b"first", IfNoneMatch="*")
    with pytest.raises(FileExistsError):
        fs.pipe_file(f"{url}/once", b"second", IfNoneMatch="*")
    assert fs.cat(f"{url}/once") == b"first"


def test_s3_endpoint_helper(monkeypatch):
    monkeypatch.delenv("CAS_TEST_S3_ENDPOINT", raising=False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        s3_endpoint()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        s3_endpoint()
    monkeypatch.setenv("CAS_TEST_S3_ENDPOINT", "http://127.0.0.1:9/")
    assert s3_endpoint() == "http://127.0.0.1:9"
    assert endpoint_address(s3_endpoint()) == ("127.0.0.1", 9)
    opts = storage_options(retries=True)
    assert opts["endpoint_url"] == "http://127.0.0.1:9"
    assert opts["config_kwargs"] == {"retries": {"max_attempts": 10, "mode": "standard"}}
