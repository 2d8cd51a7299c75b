"""Review rules: which metric changes count as a regression that fails a CI check.

The rules live in the committed ``.cas/config.yaml`` so that a pull request cannot loosen
them unnoticed (the change to the rules shows in the same diff)::

    review:
      metrics:
        accuracy: {better: higher, max_drop: 0.005}
        loss:     {better: lower,  max_rise: 2%}
        "*":      {better: higher}

A metric is governed by the rule named exactly after it, else by the first glob pattern
that matches it (config order), else by ``"*"``; a metric no rule matches is never a
regression. A rule without a threshold allows no worsening at all. Thresholds are
absolute (``0.005``) or relative to the old value (``"1%"``).

Pure: parses a mapping and checks :class:`~casstore.review.compare.MetaComparison`
objects; the CLI decides what to print and which exit code to use.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .compare import MetaComparison, fmt_value, higher_is_better

__all__ = [
    "Regression",
    "ReviewRules",
    "Rule",
    "RuleError",
    "check",
    "parse_rules",
]

#: Float noise (0.1 + 0.2) must not turn a change exactly at the threshold into a failure.
_EPS = 1e-12


class RuleError(ValueError):
    """A review rule in the config is malformed; the message is one line naming it."""


@dataclass(frozen=True)
class Rule:
    """How one metric (or pattern of metrics) may change.

    ``better`` is ``higher`` or ``lower``; ``allowed`` is the largest tolerated worsening
    (a drop for ``higher``, a rise for ``lower``), ``relative`` says whether it is a
    fraction of the old value; ``named`` is True when the rule names the metric exactly
    (then a metric that disappears is a regression too).
    """

    pattern: str
    better: str
    allowed: float = 0.0
    relative: bool = False
    named: bool = False

    def describe(self) -> str:
        """The threshold as the config says it: ``max_drop 0.005`` or ``max_rise 2%``."""
        key = "max_drop" if self.better == "higher" else "max_rise"
        if self.relative:
            return f"{key} {self.allowed * 100:g}%"
        return f"{key} {self.allowed:g}"

    def limit(self, old: float) -> float:
        """The absolute worsening allowed from ``old``."""
        return abs(old) * self.allowed if self.relative else self.allowed


@dataclass(frozen=True)
class Regression:
    """One broken rule: ``artifact``'s ``metric`` went from ``old`` to ``new``."""

    artifact: str
    metric: str
    old: Any
    new: Any
    better: str
    allowed: str  # the rule's threshold, as text
    worsening: float | None  # how much worse (absolute); None when the metric disappeared

    def line(self) -> str:
        """One line for a CI log: artifact, metric, old -> new, what was allowed."""
        if self.worsening is None:
            what = "missing in the new version"
        else:
            what = f"{'dropped' if self.better == 'higher' else 'rose'} by " \
                   f"{fmt_value(round(self.worsening, 12))}"
        return (f"{self.artifact}: {self.metric} {fmt_value(self.old)} -> "
                f"{fmt_value(self.new)} ({what}; allowed: {self.allowed})")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ReviewRules:
    """The parsed ``review.metrics`` section (empty: nothing is ever a regression)."""

    rules: tuple[Rule, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.rules)

    def for_metric(self, name: str) -> Rule | None:
        """The rule that governs metric ``name``, or None."""
        for r in self.rules:
            if r.named and r.pattern == name:
                return r
        for r in self.rules:
            if not r.named and r.pattern != "*" and fnmatch.fnmatchcase(name, r.pattern):
                return r
        return next((r for r in self.rules if r.pattern == "*"), None)


_PERCENT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*%\s*$")


def _threshold(where: str, value: Any) -> tuple[float, bool]:
    if isinstance(value, bool):
        raise RuleError(f"{where} must be a number or a percentage like \"1%\", not {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise RuleError(f"{where} must be a non-negative number, not {value!r}")
        return float(value), False
    if isinstance(value, str):
        m = _PERCENT.match(value)
        if m:
            return float(m.group(1)) / 100, True
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if math.isfinite(number) and number >= 0:
            return number, False
    raise RuleError(f"{where} must be a non-negative number or a percentage like \"1%\", "
                    f"not {value!r}")


def parse_rules(section: Any, hints: Mapping[str, bool] | None = None) -> ReviewRules:
    """Parse ``review.metrics`` (a mapping of metric name or glob to a rule mapping).

    ``better`` defaults to the direction ``cas compare`` already uses for the name
    (``versioning.higher_is_better`` hints, else loss/error/... are lower-is-better). A
    rule may give ``max_drop`` only with ``better: higher`` and ``max_rise`` only with
    ``better: lower``: the other combination is almost certainly a mistake in the config
    and would silently never fire.
    """
    if section is None:
        return ReviewRules()
    if not isinstance(section, Mapping):
        raise RuleError("review.metrics in .cas/config.yaml must map metric names to rules, "
                        "e.g. accuracy: {better: higher, max_drop: 0.005}")
    rules = []
    for pattern, spec in section.items():
        where = f"review.metrics.{pattern}"
        if spec is None:
            spec = {}
        if not isinstance(spec, Mapping):
            raise RuleError(f"{where} must be a mapping like {{better: higher, max_drop: 0.01}}")
        unknown = sorted(set(map(str, spec)) - {"better", "max_drop", "max_rise"})
        if unknown:
            raise RuleError(f"{where} has unknown key {unknown[0]!r}; use better, max_drop "
                            "or max_rise")
        name = str(pattern)
        better = spec.get("better")
        if better is None:
            better = "higher" if higher_is_better(name, hints) else "lower"
        if better not in ("higher", "lower"):
            raise RuleError(f"{where}.better must be higher or lower, not {better!r}")
        wrong = "max_rise" if better == "higher" else "max_drop"
        if wrong in spec:
            right = "max_drop" if better == "higher" else "max_rise"
            raise RuleError(f"{where}: better is {better}, so the threshold is {right}, "
                            f"not {wrong}")
        key = "max_drop" if better == "higher" else "max_rise"
        allowed, relative = (0.0, False) if spec.get(key) is None \
            else _threshold(f"{where}.{key}", spec[key])
        named = not any(c in name for c in "*?[")
        rules.append(Rule(name, better, allowed, relative, named))
    return ReviewRules(tuple(rules))


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check(artifact: str, meta: MetaComparison, rules: ReviewRules) -> list[Regression]:
    """The rules ``meta``'s metrics break, in metric-name order.

    Only metrics present in the old version can regress: a new metric has nothing to be
    worse than. A metric named by its own rule that disappears is a regression (dropping
    the number a gate watches must not pass the gate); non-numeric values are ignored.
    """
    out = []
    for m in meta.metrics:
        rule = rules.for_metric(m.name)
        if rule is None or not _number(m.old):
            continue
        if m.new is None:
            if rule.named:
                out.append(Regression(artifact, m.name, m.old, None, rule.better,
                                      rule.describe(), None))
            continue
        if not _number(m.new):
            continue
        worse = (m.old - m.new) if rule.better == "higher" else (m.new - m.old)
        if worse > rule.limit(m.old) + _EPS:
            out.append(Regression(artifact, m.name, m.old, m.new, rule.better,
                                  rule.describe(), worse))
    return out
