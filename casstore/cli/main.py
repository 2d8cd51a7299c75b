"""Entry point: registers every command module and turns CasError into one line + exit code."""

from __future__ import annotations

import gc
import os
import sys

# numpy's OpenBLAS starts a thread per core at import, and they spin; cas does no linear
# algebra, and on a 2-core machine those threads took 5-7% of the CPU time of an add
# (measured with perf). Set before anything imports numpy.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from ..errors import CasError
from . import (  # noqa: F401 - importing registers the commands
    add_cmd,
    checkout_cmd,
    compare_cmd,
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
    status_cmd,
    version_cmd,
)
from .app import STATE, app


def run() -> None:
    # A command allocates many small, acyclic objects (one per file or chunk); the cyclic
    # collector kept rescanning them (11% of an add of 20,000 files). Freeze what the imports
    # built and collect rarely: cas processes are short-lived.
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    try:
        rc = app(standalone_mode=False)
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except CasError as exc:
        print(f"cas: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("cas: interrupted; the store is consistent, re-run the command to finish",
              file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except OSError as exc:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"cas: error: {exc.strerror or exc}{where}", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:
        _handle_other(exc)


def _handle_other(exc: Exception) -> None:
    import typer

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
