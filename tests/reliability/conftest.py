"""Figures of the reliability suite (kills landed, faults injected, hostile cases), written
as JSON to the file named by CAS_RELIABILITY_FIGURES at the end of the run, for
docs/reliability.md."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

FIGURES: Counter = Counter()


@pytest.fixture
def figures() -> Counter:
    """Add to a named count: ``figures["add: kills landed"] += 1``."""
    return FIGURES


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    out = os.environ.get("CAS_RELIABILITY_FIGURES")
    if out and FIGURES:
        Path(out).write_text(json.dumps(dict(sorted(FIGURES.items())), indent=2) + "\n")
