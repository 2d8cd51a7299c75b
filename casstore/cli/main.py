"""Entry point: registers every command module and turns CasError into one line + exit code.

Interrupts (SIGINT, SIGTERM) are handled from the first line of this module: a signal at
any instant ends the command with one line and exit code 130 or 143 within 2 seconds,
with the store consistent and its lock released (see ``_Interrupts``).
"""

from __future__ import annotations

import os
import signal
import sys

INTERRUPTED_LINE = "cas: interrupted; the store is consistent, re-run the command to finish"
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


def _exit_at_start(signum: int, frame: object) -> None:
    # Until run() installs the real handler nothing has been read, written or locked:
    # ending at once is correct, and it keeps Python from printing a traceback of imports.
    os.write(2, (INTERRUPTED_LINE + "\n").encode())
    os._exit(EXIT_CODES[signum])


# First thing, before any further import (this module is only the command's entry point).
for _sig in EXIT_CODES:
    signal.signal(_sig, _exit_at_start)

import gc  # noqa: E402 - after the handlers, which must be in place first
import threading  # noqa: E402
import time  # noqa: E402

from ..errors import CasError  # noqa: E402 - loaded with the casstore package already

# numpy's OpenBLAS starts a thread per core at import, and they spin; cas does no linear
# algebra, and on a 2-core machine those threads took 5-7% of the CPU time of an add
# (measured with perf). Set before anything imports numpy.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

GRACE_SECONDS = 1.2  # cleanup gets this long; the promise to users is 2 s


class Interrupted(BaseException):
    """Raised in the main thread by the first SIGINT/SIGTERM.

    A BaseException, not a KeyboardInterrupt: click turns KeyboardInterrupt into its own
    "Aborted!" path, and ``except Exception`` blocks must not swallow it. Context managers
    on the way up still run (temp files removed, pack writer stopped, locks released).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_EXIT_LOCK = threading.Lock()


def exit_interrupted(signum: int) -> None:
    """Print the one line and end the process now (the first caller wins)."""
    _EXIT_LOCK.acquire()  # never released: the process ends here
    try:
        sys.stdout.flush()
    except BaseException:  # noqa: BLE001 - a closed or broken stdout must not stop us
        pass
    try:
        os.write(2, (INTERRUPTED_LINE + "\n").encode())
    except OSError:
        pass
    # os._exit, not sys.exit: interpreter shutdown with the pack writer's threads still in
    # native code once aborted ("terminate called without an active exception", rc 134).
    os._exit(EXIT_CODES.get(signum, 130))


class _Interrupts:
    """The first signal raises ``Interrupted``; a watchdog bounds the cleanup.

    The Python-level handler only runs when the main thread returns to the interpreter,
    which a long system call (an fsync, a read) can delay, and cleanup code can hang (a
    thread join: the 11-minute hang of issue 12). So the C-level handler also writes the
    signal number to a pipe (``signal.set_wakeup_fd``) that a watchdog thread waits on: if
    the process is still alive GRACE_SECONDS later, the watchdog prints the line and ends it
    with ``os._exit``. That is as safe as a kill, which every write path is built to survive
    (temp names, renames, packs before indexes), and the kernel releases flocks with the
    process. Later signals are ignored at the Python level so that they cannot interrupt
    the cleanup the first one started.
    """

    def __init__(self) -> None:
        self.signum = 0
        r, w = os.pipe()
        os.set_blocking(w, False)
        self._r = r
        threading.Thread(target=self._watch, name="cas-interrupt-watchdog", daemon=True).start()
        signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        self._unraisable = sys.unraisablehook
        sys.unraisablehook = self._on_unraisable
        for sig in EXIT_CODES:
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        if self.signum:
            return
        self.signum = signum
        raise Interrupted(signum)

    def _on_unraisable(self, info: object) -> None:
        # The signal landed while Python ran a callback whose exceptions it only prints
        # ("Exception ignored in ...", e.g. an import lock's weakref callback): the
        # unwinding it started is lost, so end now, as a kill would, with the one line.
        if isinstance(getattr(info, "exc_value", None), Interrupted):
            exit_interrupted(self.signum)
        self._unraisable(info)  # type: ignore[arg-type]

    def _watch(self) -> None:
        sigs: list[int] = []
        while not sigs:
            sigs = [s for s in os.read(self._r, 16) if s in EXIT_CODES]
        time.sleep(GRACE_SECONDS)
        exit_interrupted(sigs[0])


def run() -> None:
    # Handlers are installed inside the try, before any heavy import (all of them happen in
    # _run): an interrupt during the ~0.1 s of imports used to print a 12-26 line traceback.
    try:
        _Interrupts()
        try:
            _run()
        finally:
            # The command is over (done, or failed with its message printed): a signal
            # now must not turn its exit code into a signal death during shutdown.
            for sig in EXIT_CODES:
                signal.signal(sig, signal.SIG_IGN)
    except Interrupted as exc:
        exit_interrupted(exc.signum)
    except KeyboardInterrupt:
        # Only if the signal came before our handler was in place.
        exit_interrupted(signal.SIGINT)


def load_commands() -> None:
    """Import every command module (importing one registers its command)."""
    # start-up: typer and the command modules (~0.1 s of imports) load only once run() has
    # installed the interrupt handlers; this module imports nothing heavy before that.
    from . import (  # noqa: F401 - importing registers the commands
        add_cmd,
        checkout_cmd,
        compare_cmd,
        config_cmd,
        diff_cmd,
        fetch_cmd,
        fsck_cmd,
        gc_cmd,
        get_cmd,
        import_cmd,
        init_cmd,
        install_cmd,
        log_cmd,
        ls_cmd,
        merge_cmd,
        pull_cmd,
        push_cmd,
        remote_cmd,
        remove_cmd,
        report_cmd,
        status_cmd,
        version_cmd,
    )


def _run() -> None:
    load_commands()
    from .app import build  # start-up: with the command modules, after the handlers

    # A command allocates many small, acyclic objects (one per file or chunk); the cyclic
    # collector kept rescanning them (11% of an add of 20,000 files). Freeze what the imports
    # built and collect rarely: cas processes are short-lived.
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    try:
        rc = build()(standalone_mode=False, prog_name="cas")
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except CasError as exc:
        print(f"cas: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(1)
    except OSError as exc:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"cas: error: {exc.strerror or exc}{where}", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:
        _handle_other(exc)


def _handle_other(exc: Exception) -> None:
    # start-up: loaded already by _run; at the top they would load before the handlers
    import typer

    from .app import STATE

    if isinstance(exc, typer.Exit):
        sys.exit(exc.exit_code)
    if isinstance(exc, typer.Abort):
        sys.exit(1)
    # Parser errors (click's, vendored inside typer in recent releases) know how to show
    # themselves; usage errors exit 2 like every Unix tool.
    show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
    if callable(show) and isinstance(code, int):
        show()
        usage = any(c.__name__ == "UsageError" for c in type(exc).__mro__)
        sys.exit(2 if usage and code else code)
    if STATE.verbose:
        raise exc
    print(f"cas: internal error: {type(exc).__name__}: {exc} (re-run with --verbose for "
          "the traceback, and please report it)", file=sys.stderr)
    sys.exit(3)


if __name__ == "__main__":
    run()
