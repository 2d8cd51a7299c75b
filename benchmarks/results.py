"""Collected measurements: one StepResult per (scenario, step, tool), one Sample per repetition."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from benchmarks.runner import Sample


@dataclass
class StepResult:
    scenario: str
    step: str
    tool: str
    samples: list[Sample] = field(default_factory=list)
    stored: list[int] = field(default_factory=list)  # bytes stored (or added) per repetition
    errors: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def ok_samples(self) -> list[Sample]:
        return [s for s in self.samples if s.ok]

    def median(self, attr: str = "wall") -> float | None:
        values = [getattr(s, attr) for s in self.ok_samples]
        return statistics.median(values) if values else None

    def minmax(self, attr: str = "wall") -> tuple[float, float] | None:
        values = [getattr(s, attr) for s in self.ok_samples]
        return (min(values), max(values)) if values else None

    def peak_rss(self) -> int | None:
        values = [s.maxrss for s in self.ok_samples]
        return max(values) if values else None

    def stored_median(self) -> int | None:
        return int(statistics.median(self.stored)) if self.stored else None

    def to_json(self) -> dict[str, object]:
        return {
            "scenario": self.scenario,
            "step": self.step,
            "tool": self.tool,
            "wall_median": self.median("wall"),
            "wall_min_max": self.minmax("wall"),
            "cpu_median": self.median("cpu"),
            "peak_rss": self.peak_rss(),
            "stored_median": self.stored_median(),
            "stored": self.stored,
            "errors": self.errors,
            "note": self.note,
            "samples": [s.to_json() for s in self.samples],
        }


class Results:
    def __init__(self) -> None:
        self.steps: dict[tuple[str, str, str], StepResult] = {}
        self.unavailable: dict[str, str] = {}  # tool -> reason

    def get(self, scenario: str, step: str, tool: str) -> StepResult:
        key = (scenario, step, tool)
        if key not in self.steps:
            self.steps[key] = StepResult(scenario, step, tool)
        return self.steps[key]

    def find(self, scenario: str, step: str, tool: str) -> StepResult | None:
        return self.steps.get((scenario, step, tool))

    def wall(self, scenario: str, step: str, tool: str) -> float | None:
        found = self.find(scenario, step, tool)
        return found.median("wall") if found else None
