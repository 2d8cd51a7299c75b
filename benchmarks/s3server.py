"""A local S3 endpoint (moto's server) started and stopped by the harness.

moto keeps objects in memory, so each scenario repetition gets a fresh server: memory from the
previous repetition is returned and no tool ever finds another tool's objects.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def find_moto_server(allow_install: bool) -> str | None:
    exe = Path(sys.executable).parent / "moto_server"
    if not exe.exists() and allow_install:
        print("  installing moto[server] into the project venv ...", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "moto[server]"],
                       capture_output=True, check=False, timeout=900)
    if exe.exists():
        return str(exe)
    return shutil.which("moto_server")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class S3Server:
    def __init__(self, exe: str, env: Mapping[str, str], log_dir: Path) -> None:
        self.exe = exe
        self.env = dict(env, **S3_ENV)
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.endpoint = ""

    def __enter__(self) -> S3Server:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        port = _free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / "moto.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([self.exe, "-H", "127.0.0.1", "-p", str(port)],
                                     stdout=log, stderr=log, env=self.env,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited ({self.proc.returncode})")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto_server did not start within 30 s")

    def create_bucket(self, name: str) -> None:
        import boto3

        client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        client.create_bucket(Bucket=name)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
