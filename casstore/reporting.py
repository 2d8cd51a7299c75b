"""How library code reports progress and notes without printing.

The CLI passes a Reporter that draws rich progress bars on a terminal; the library's
default reports nothing, so API users get no output they did not ask for.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol


class Progress(Protocol):
    def advance(self, n: int) -> None: ...


class Reporter(Protocol):
    def note(self, message: str) -> None:
        """A one-line message for a human (e.g. 'waiting for lock')."""

    def progress(self, label: str, total: int | None, unit: str = "B"
                 ) -> AbstractContextManager[Progress]:
        """A progress bar over ``total`` units (bytes by default)."""


class _NullProgress:
    def advance(self, n: int) -> None:
        pass

    def __enter__(self) -> _NullProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class SilentReporter:
    """Reports nothing: the default for library use."""

    def note(self, message: str) -> None:
        pass

    def progress(self, label: str, total: int | None, unit: str = "B") -> _NullProgress:
        return _NullProgress()


SILENT = SilentReporter()
