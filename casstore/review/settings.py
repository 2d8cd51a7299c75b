"""The repository's review settings (``review:`` in ``.cas/config.yaml``), read once per
report: metric rules for the regression gate and the key columns of tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError
from .rules import ReviewRules, RuleError, parse_rules

if TYPE_CHECKING:
    from ..project import Project


def higher_is_better_hints(repo: Project) -> dict[str, bool] | None:
    hints = repo.config.get("versioning.higher_is_better")
    return hints if isinstance(hints, dict) else None


def review_rules(repo: Project) -> ReviewRules:
    """``review.metrics``, parsed; a malformed rule is a one-line ConfigError (a gate that
    silently ignores a typo would pass every pull request)."""
    try:
        return parse_rules(repo.config.get("review.metrics"), higher_is_better_hints(repo))
    except RuleError as exc:
        raise ConfigError(f"{exc} (in .cas/config.yaml)") from None


def parse_key(value: object, where: str) -> list[str]:
    """Key columns from ``"id"``, ``"a,b"`` or ``[a, b]``."""
    if isinstance(value, str):
        cols = [c.strip() for c in value.split(",")]
    elif isinstance(value, list) and all(isinstance(c, str) for c in value):
        cols = [c.strip() for c in value]
    else:
        raise ConfigError(f"{where} must be a column name, \"a,b\" or a list of names")
    if not cols or any(not c for c in cols):
        raise ConfigError(f"{where} names an empty column")
    return cols


class TableKeys:
    """Which columns identify a row of each table: ``--key`` for every table of the report,
    else ``review.tables.<path>.key`` by the table's path from the repository root."""

    def __init__(self, repo: Project, cli_key: str | None = None) -> None:
        self.cli = parse_key(cli_key, "--key") if cli_key is not None else None
        tables = repo.config.get("review.tables") or {}
        if not isinstance(tables, dict):
            raise ConfigError("review.tables in .cas/config.yaml must map table paths to "
                              "settings, e.g. data/train.parquet: {key: id}")
        self.by_path: dict[str, list[str]] = {}
        for path, spec in tables.items():
            if not isinstance(spec, dict) or "key" not in spec:
                raise ConfigError(f"review.tables.{path} must be a mapping with a key, "
                                  "e.g. {key: id}")
            self.by_path[str(path).strip("/")] = parse_key(spec["key"],
                                                           f"review.tables.{path}.key")

    def for_path(self, path: str) -> list[str] | None:
        if self.cli is not None:
            return self.cli
        return self.by_path.get(path.strip("/"))
