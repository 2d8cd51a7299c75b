"""End-to-end: the regression gate (review.metrics rules) of cas diff and cas compare."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import git, write_random

RULES = {"accuracy": {"better": "higher", "max_drop": 0.005},
         "loss": {"better": "lower", "max_rise": "2%"},
         "*": {"better": "higher"}}


def _rules(repo: Path, rules: object) -> None:
    p = repo / ".cas" / "config.yaml"
    cfg = yaml.safe_load(p.read_text())
    cfg["review"] = {"metrics": rules}
    p.write_text(yaml.safe_dump(cfg))


def _two_versions(repo: Path, cas, old: dict[str, float], new: dict[str, float]) -> None:
    write_random(repo / "model.bin", 50_000, seed=1)
    cas("add", "model.bin")
    cas("version", "model.bin", "--set", "1.0.0",
        *[a for k, v in old.items() for a in ("--metric", f"{k}={v}")])
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "1.0.0")
    write_random(repo / "model.bin", 50_000, seed=2)
    cas("add", "model.bin")
    cas("version", "model.bin", "--bump", "minor",
        *[a for k, v in new.items() for a in ("--metric", f"{k}={v}")])
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "1.1.0")


def test_gate_fails_on_a_drop_of_004_and_reports_it_above_the_summary(repo: Path, cas) -> None:
    _rules(repo, RULES)
    _two_versions(repo, cas, {"accuracy": 0.93, "loss": 0.2, "f1": 0.8},
                  {"accuracy": 0.89, "loss": 0.2, "f1": 0.8})
    res = cas("diff", "HEAD~1", "HEAD", "--fail-on-regression", check=False)
    assert res.returncode == 1
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("cas: regression:")]
    assert lines == ["cas: regression: model.bin: accuracy 0.93 -> 0.89 (dropped by 0.04; "
                     "allowed: max_drop 0.005)"]
    assert "Traceback" not in res.stderr

    res = cas("compare", "model.bin@1.0.0", "model.bin@1.1.0", "--fail-on-regression",
              check=False)
    assert res.returncode == 1 and "accuracy 0.93 -> 0.89" in res.stderr
    assert "accuracy: 0.93 -> 0.89  ↓ -0.04 (-4.30%) worse" in res.stdout

    md = cas("diff", "HEAD~1", "HEAD", "--format", "markdown", check=False).stdout
    block = md.index("#### ❌ Regressions: 1 review rule broken")
    assert block < md.index("| Artifact | Change |")  # above the summary table
    assert "<details>" not in md[:md.index("| Artifact | Change |")]  # never folded
    assert "| <code>model.bin</code> | <code>accuracy</code> | 0.93 | 0.89 | max_drop 0.005 |" \
        in md
    cmp_md = cas("compare", "model.bin@1.0.0", "model.bin@1.1.0", "--format",
                 "markdown").stdout
    assert cmp_md.index("Regressions") < cmp_md.index("| Metric |")


def test_gate_passes_on_a_drop_of_0001(repo: Path, cas) -> None:
    _rules(repo, RULES)
    _two_versions(repo, cas, {"accuracy": 0.93, "loss": 0.2},
                  {"accuracy": 0.929, "loss": 0.204})  # loss +2% exactly: allowed
    res = cas("diff", "HEAD~1", "HEAD", "--fail-on-regression")
    assert res.returncode == 0 and "regression" not in res.stderr
    res = cas("compare", "model.bin@1.0.0", "model.bin@1.1.0", "--fail-on-regression")
    assert res.returncode == 0
    md = cas("diff", "HEAD~1", "HEAD", "--format", "markdown").stdout
    assert "**Regressions:** none" in md


def test_relative_threshold_default_rule_and_missing_metric(repo: Path, cas) -> None:
    _rules(repo, {"loss": {"max_rise": "1%"}, "accuracy": {"max_drop": 0.01},
                  "*": {"better": "higher"}})
    _two_versions(repo, cas, {"accuracy": 0.9, "loss": 0.5, "f1": 0.7},
                  {"loss": 0.51, "f1": 0.69})
    res = cas("diff", "HEAD~1", "HEAD", "--fail-on-regression", check=False)
    assert res.returncode == 1
    errs = res.stderr
    assert "model.bin: loss 0.5 -> 0.51 (rose by 0.01; allowed: max_rise 1%)" in errs
    assert "model.bin: f1 0.7 -> 0.69 (dropped by 0.01; allowed: max_drop 0)" in errs
    assert "model.bin: accuracy 0.9 -> - (missing in the new version; allowed: max_drop " \
        "0.01)" in errs
    assert "cas: 3 review rules broken" in errs


@pytest.mark.parametrize("rules, message", [
    ({"accuracy": {"better": "higher", "max_rise": 0.1}}, "the threshold is max_drop"),
    ({"accuracy": {"max_drop": "a lot"}}, "must be a non-negative number or a percentage"),
    ({"accuracy": {"better": "up"}}, "better must be higher or lower"),
    ([1, 2], "must map metric names to rules"),
])
def test_malformed_rules_are_one_line_errors(repo: Path, cas, rules: object,
                                             message: str) -> None:
    _rules(repo, rules)
    write_random(repo / "model.bin", 1000)
    cas("add", "model.bin")
    res = cas("diff", "--fail-on-regression", check=False)
    assert res.returncode == 1 and message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_without_rules_the_gate_passes_and_says_so(repo: Path, cas) -> None:
    _two_versions(repo, cas, {"accuracy": 0.93}, {"accuracy": 0.5})
    res = cas("diff", "HEAD~1", "HEAD", "--fail-on-regression")
    assert "no review.metrics rules" in res.stderr


def test_pr_workflow_runs_the_gate() -> None:
    root = Path(__file__).parent.parent
    wf = yaml.safe_load((root / ".github" / "workflows" / "pr-diff.yml").read_text())
    assert any(s.get("uses") == "./" for s in wf["jobs"]["cas-diff"]["steps"])
    # The workflow runs casstore's action (action.yml), whose diff step runs the gate.
    steps = yaml.safe_load((root / "action.yml").read_text())["runs"]["steps"]
    assert "--fail-on-regression" in (root / ".github" / "action" / "diff.sh").read_text()
    # The comment is posted before the check fails, so the reviewer sees why.
    names = [s.get("name", "") for s in steps]
    assert names.index("Fail the check on a metric regression") > \
        names.index("Post or update the pull-request comment")
