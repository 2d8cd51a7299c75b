"""Printing: rich progress bars on a terminal, plain lines when piped, JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..units import human_bytes, plural  # noqa: F401 - re-exported for the commands
from .app import STATE

if TYPE_CHECKING:
    from ..repo import Repo


def say(text: str) -> None:
    """Normal output (suppressed by --quiet)."""
    if not STATE.quiet:
        print(text, flush=True)


def detail(text: str) -> None:
    """Output shown only with --verbose."""
    if STATE.verbose and not STATE.quiet:
        print(text, file=sys.stderr, flush=True)


def warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr, flush=True)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


class _Bar:
    def __init__(self, progress: Any, task: Any) -> None:
        self._p = progress
        self._t = task

    def advance(self, n: int) -> None:
        self._p.advance(self._t, n)


class _NoBar:
    def advance(self, n: int) -> None:
        pass


class CliReporter:
    """Draws progress only on an interactive terminal, for work big enough to watch."""

    MIN_BYTES = 32 << 20

    def __init__(self) -> None:
        self.interactive = sys.stderr.isatty() and not STATE.quiet

    def note(self, message: str) -> None:
        if not STATE.quiet:
            print(message, file=sys.stderr, flush=True)

    @contextmanager
    def progress(self, label: str, total: int | None, unit: str = "B") -> Iterator[Any]:
        if not self.interactive or (unit == "B" and total is not None and total < self.MIN_BYTES):
            yield _NoBar()
            return
        # start-up: rich.progress costs ~70 modules (~65 ms); only a bar on a terminal needs it
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            ProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text

        class BinarySpeed(ProgressColumn):
            # rich's TransferSpeedColumn always prints decimal MB/s; every size cas prints
            # is binary (human_bytes: KiB, MiB, GiB), and a bar must not disagree with
            # the summary printed under it.
            def render(self, task: Any) -> Text:
                speed = task.finished_speed or task.speed
                return Text("?" if speed is None else f"{human_bytes(speed)}/s",
                            style="progress.data.speed")

        cols = [TextColumn("{task.description}"), BarColumn()]
        if unit == "B":
            cols += [DownloadColumn(binary_units=True), BinarySpeed(), TimeRemainingColumn()]
        else:
            cols += [TextColumn("{task.completed}/{task.total}"), TimeRemainingColumn()]
        with Progress(*cols, transient=True) as p:
            yield _Bar(p, p.add_task(label, total=total))


def open_repo() -> Repo:
    # Imported here for start-up time: every command module imports this one, and the
    # facade brings the config (yaml), pointers and the workspace scan, which --help,
    # --version and shell completion never need.
    from ..repo import Repo

    return Repo(".", reporter=CliReporter())
