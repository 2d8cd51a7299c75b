"""Entry point: registers every command module and turns CasError into one line + exit code."""

from __future__ import annotations

import sys

from ..errors import CasError
from . import (  # noqa: F401 - importing registers the commands
    add_cmd,
    checkout_cmd,
    fsck_cmd,
    gc_cmd,
    init_cmd,
    ls_cmd,
    status_cmd,
)
from .app import app


def run() -> None:
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
    except Exception as exc:  # click's usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.exceptions.UsageError):
            exc.show()
            sys.exit(2)
        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    run()
