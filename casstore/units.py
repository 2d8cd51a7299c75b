"""Human-readable quantities: every size a report shows (the CLI's summaries and the speed
on its progress bars, ``cas diff``/``compare`` text and Markdown, the ``git diff`` text of a
pointer) goes through ``human_bytes``, in binary units. Error messages give exact byte
counts instead."""

from __future__ import annotations


def human_bytes(n: float | None) -> str:
    """``1536`` -> ``1.5 KiB``; ``None`` -> ``-`` (unknown)."""
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``plural(1, "file")`` -> ``1 file``; ``plural(2, "file")`` -> ``2 files``."""
    return f"{n} {word if n == 1 else (many or word + 's')}"
