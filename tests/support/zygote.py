"""Start the real `cas` command without paying Python's start-up each time.

Every `cas` process spends 0.1-0.2 CPU-seconds importing (typer, numpy, pyarrow, the
command modules) before it does anything, and the suite starts well over a thousand of
them: that start-up was most of the suite's CPU time. A *zygote* is one process per test
worker that imports everything once and then forks a copy for each command. The copy is a
real, separate process running ``casstore.cli.main.run`` (what the installed `cas` script
runs) with the caller's arguments, working folder, environment and standard streams; it can
be signalled and killed like any other, and its exit status is the kernel's (a signal death
is ``-signum``, as with ``subprocess``).

What a fork cannot give is a fresh interpreter: tests about start-up itself (which modules a
command imports, a signal during the imports, Python options in the environment) and tests
on a terminal start the installed script instead (``zygote_can_run`` says which).

Protocol, over a Unix socket per command: the client sends one JSON line (argv, cwd, env)
with its three standard streams attached (SCM_RIGHTS); the zygote forks a *monitor*, which
forks the command, sends its pid (8 bytes) and, once it ends, its wait status (8 bytes).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

_HEADER = struct.Struct("<q")
_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_MAX_REQUEST = 1 << 20

# Environment variables that act at interpreter start-up or at import time: a command whose
# environment sets one differently from the zygote's needs a fresh interpreter.
_STARTUP_PREFIXES = ("PYTHON", "FSSPEC_", "COV_", "COVERAGE_", "OPENBLAS", "OMP_", "MALLOC_")
# What `cas` sets for itself when unset (casstore.cli.main, before numpy loads).
_DEFAULTS = {"OPENBLAS_NUM_THREADS": "1"}


def _preload() -> None:
    """Import what any command may import, so that forks start warm."""
    import casstore.cli.main as main

    main.load_commands()
    # Modules the commands load on first use (start-up comments in the code).
    import importlib
    import pkgutil

    import casstore

    for mod in pkgutil.walk_packages(casstore.__path__, "casstore."):
        if not mod.name.endswith("__main__"):
            importlib.import_module(mod.name)
    for name in ("s3fs", "fsspec.implementations.local", "fsspec.implementations.http",
                 "pyarrow.parquet", "rich.progress", "yaml"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def _serve(path: str) -> None:
    _preload()
    import casstore.cli.main as main

    # The command's handlers as a fresh `cas` has them at this point of its start.
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    listener.settimeout(0.5)
    parent = os.getppid()
    sys.stdout.flush()
    sys.stderr.flush()
    while True:
        _reap()
        if stopping:
            _finish()
            return
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            if os.getppid() != parent:  # the test worker is gone: so is the need for us
                return
            continue
        conn.settimeout(None)
        try:
            msg, fds, _flags, _addr = socket.recv_fds(conn, _MAX_REQUEST, 3)
            while not msg.endswith(b"\n"):
                more = conn.recv(_MAX_REQUEST)
                if not more:
                    break
                msg += more
            request = json.loads(msg)
        except (OSError, ValueError):
            conn.close()
            continue
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            conn.close()
            continue
        # Blocked across the forks: a signal sent the moment the client learns the pid waits
        # until the command has its own streams and handlers (it would meet the zygote's).
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        if os.fork() == 0:  # the monitor
            try:
                listener.close()
                pid = os.fork()
                if pid == 0:  # the command
                    conn.close()
                    _command(request, fds, handlers, main.run)
                conn.sendall(_HEADER.pack(pid))
                conn.sendall(_HEADER.pack(os.waitpid(pid, 0)[1]))
            finally:
                os._exit(0)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        for fd in fds:
            os.close(fd)
        conn.close()


def _finish() -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                time.sleep(0.05)
        except ChildProcessError:
            return


def _reap() -> None:
    # Monitors are waited for (not left to the kernel with SIG_IGN) so that their CPU time
    # adds up in the test run's own accounting.
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def _command(request: dict, fds: list[int], handlers: dict, run: object) -> None:
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        if request.get("new_session"):
            os.setsid()
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = list(request["argv"])
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        code = 0
        try:
            run()  # type: ignore[operator]
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if not isinstance(exc.code, int | None):
                print(exc.code, file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    except BaseException:  # noqa: BLE001 - a command that escapes must still end this process
        import traceback

        traceback.print_exc()
        try:
            sys.stderr.flush()
        finally:
            os._exit(1)


class Zygote:
    """One warm `cas` per test worker (started on first use, ended with the worker)."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="cas-zygote-")
        self.path = os.path.join(self.dir, "sock")
        self.proc: subprocess.Popen | None = None
        self.env = {**_DEFAULTS, **os.environ}
        self.lock = threading.Lock()  # tests run commands from several threads

    def ensure(self) -> str:
        with self.lock:
            return self._ensure()

    def _ensure(self) -> str:
        if self.proc is None or self.proc.poll() is not None:
            if os.path.exists(self.path):
                os.unlink(self.path)
            env = {**_DEFAULTS, **os.environ}
            self.env = env
            self.proc = subprocess.Popen(
                [sys.executable, __file__, self.path], env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, cwd=self.dir)
            deadline = time.monotonic() + 60
            while not os.path.exists(self.path):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the cas zygote did not start")
                time.sleep(0.02)
        return self.path

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # it ends after reaping what it started
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def can_run(self, env: dict[str, str]) -> bool:
        """Whether a fork behaves as a fresh start would under ``env``."""
        env = {**_DEFAULTS, **env}
        return all(env.get(key) == self.env.get(key) for key in set(env) | set(self.env)
                   if key.startswith(_STARTUP_PREFIXES))


ZYGOTE = Zygote()


class ForkedCas:
    """A `cas` command forked from the zygote, used like ``subprocess.Popen`` with
    ``stdout=PIPE, stderr=PIPE, text=True`` (output goes to temporary files, so a chatty
    command never blocks on a full pipe). ``new_session`` puts it in a session and process
    group of its own, as ``start_new_session=True`` does."""

    def __init__(self, argv: list[str], *, cwd: str | Path, env: dict[str, str],
                 input: str | None = None, new_session: bool = False) -> None:
        self.args = argv
        self.returncode: int | None = None
        self._out = tempfile.TemporaryFile()
        self._err = tempfile.TemporaryFile()
        with tempfile.TemporaryFile() as inp:
            if input is not None:
                inp.write(input.encode())
                inp.seek(0)
            stdin = inp.fileno() if input is not None else os.open(os.devnull, os.O_RDONLY)
            try:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self._sock.connect(ZYGOTE.ensure())
                request = json.dumps({"argv": argv, "cwd": os.fspath(cwd), "env": env,
                                      "new_session": new_session}).encode() + b"\n"
                socket.send_fds(self._sock, [request],
                                [stdin, self._out.fileno(), self._err.fileno()])
            finally:
                if input is None:
                    os.close(stdin)
        self.pid = _HEADER.unpack(self._recv(_HEADER.size, None))[0]

    def _recv(self, n: int, timeout: float | None) -> bytes:
        self._sock.settimeout(timeout)
        data = b""
        while len(data) < n:
            more = self._sock.recv(n - len(data))
            if not more:
                raise RuntimeError("the cas zygote's monitor ended without a status")
            data += more
        return data

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                status = _HEADER.unpack(self._recv(_HEADER.size, 0))[0]
            except (BlockingIOError, TimeoutError):
                return None
            self._done(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            try:
                status = _HEADER.unpack(self._recv(_HEADER.size, timeout))[0]
            except TimeoutError:
                raise subprocess.TimeoutExpired(self.args, timeout or 0) from None
            self._done(status)
        assert self.returncode is not None
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """Wait for the end; (stdout, stderr) as text."""
        self.wait(timeout)
        out = []
        for f in (self._out, self._err):
            f.seek(0)
            out.append(_text(f.read()))
            f.close()
        return out[0], out[1]

    def _done(self, status: int) -> None:
        self.returncode = os.waitstatus_to_exitcode(status)
        self._sock.close()

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def run_forked(argv: list[str], *, cwd: str | Path, env: dict[str, str],
               input: str | None, timeout: float) -> tuple[int, str, str]:
    """Run ``argv`` (``argv[0]`` the `cas` script) forked from the zygote; (code, out, err)."""
    proc = ForkedCas(argv, cwd=cwd, env=env, input=input)
    try:
        out, err = proc.communicate(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out, err


def _text(data: bytes) -> str:
    # As subprocess's text mode reads it: universal newlines.
    return data.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")


if __name__ == "__main__":
    _serve(sys.argv[1])
