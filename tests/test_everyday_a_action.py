"""casstore's GitHub Action (action.yml), run as CI runs it: the diff step's script in a
simulated pull request (a base branch on an 'origin' and a head branch), and the comment
script against a fake GitHub API (posted once, then updated in place)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import CAS, git, git_env, run_cas, write_random

ROOT = Path(__file__).parent.parent
DIFF_SH = ROOT / ".github" / "action" / "diff.sh"
COMMENT_JS = ROOT / ".github" / "action" / "comment.js"


def _pull_request(tmp_path: Path) -> Path:
    """origin has main (model 1.0.0, accuracy 0.93); the clone's head branch has 1.1.0 with
    accuracy 0.89, which the review rule (max_drop 0.005) calls a regression."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(origin), str(work))
    git(work, "checkout", "-q", "-b", "main")
    run_cas(work, "init", "-q")
    run_cas(work, "config", "review.metrics.accuracy.better", "higher")
    run_cas(work, "config", "review.metrics.accuracy.max_drop", "0.005")
    write_random(work / "model.bin", 60_000, seed=1)
    run_cas(work, "add", "model.bin")
    run_cas(work, "version", "model.bin", "--set", "1.0.0", "--metric", "accuracy=0.93")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "model 1.0.0")
    git(work, "push", "-q", "origin", "main")
    git(work, "checkout", "-q", "-b", "feature")
    write_random(work / "model.bin", 60_000, seed=2)
    run_cas(work, "add", "model.bin")
    run_cas(work, "version", "model.bin", "--bump", "minor", "--metric", "accuracy=0.89")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "model 1.1.0")
    return work


def _run_diff_step(work: Path, tmp_path: Path, **env: str) -> tuple[int, dict[str, str], str]:
    out, summary = tmp_path / "gh-output", tmp_path / "gh-summary"
    out.write_text("")
    summary.write_text("")
    full = {**git_env(), "GITHUB_OUTPUT": str(out), "GITHUB_STEP_SUMMARY": str(summary),
            "CAS_REPORT": str(tmp_path / "cas-diff.md"),
            "PATH": f"{Path(CAS).parent}{os.pathsep}{os.environ['PATH']}", **env}
    proc = subprocess.run(["bash", str(DIFF_SH)], cwd=work, capture_output=True, text=True,
                          env=full, timeout=300)
    outputs = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    assert "Traceback" not in proc.stderr
    return proc.returncode, outputs, summary.read_text()


def test_action_yml_is_a_composite_action_installing_from_its_own_source() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    assert steps[0]["uses"].startswith("actions/setup-python@")
    install = next(s for s in steps if s.get("name", "").startswith("Install casstore"))
    assert install["env"]["CAS_ACTION_PATH"] == "${{ github.action_path }}"
    assert "pip install" in install["run"] and "$CAS_ACTION_PATH" in install["run"]
    assert "pip install casstore" not in (ROOT / "action.yml").read_text()
    diff = next(s for s in steps if s.get("id") == "diff")
    assert "diff.sh" in diff["run"]
    assert diff["env"]["CAS_GATE"] == "${{ inputs.fail-on-regression }}"
    for s in steps:
        if "run" in s:
            assert s["shell"] == "bash"  # composite actions require it
    # Our own PR workflow uses it, from the code under review.
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "pr-diff.yml").read_text())
    assert {"uses": "./", "with": {"fetch": "false"}} in wf["jobs"]["cas-diff"]["steps"]


def test_diff_step_reports_the_pull_request_and_keeps_the_gate_for_later(
        tmp_path: Path) -> None:
    work = _pull_request(tmp_path)
    rc, outputs, summary = _run_diff_step(work, tmp_path, CAS_BASE_REF="main")
    assert rc == 0  # the comment must be posted before the check fails
    assert outputs["gate"] == "1" and outputs["report"] == str(tmp_path / "cas-diff.md")
    report = (tmp_path / "cas-diff.md").read_text()
    assert report.startswith("<!-- cas-diff -->")
    assert "Regressions: 1 review rule broken" in report and "model.bin" in report
    assert "1.0.0" in report and "1.1.0" in report
    assert summary == report

    # fail-on-regression "false": the same report, no gate.
    rc, outputs, _ = _run_diff_step(work, tmp_path, CAS_BASE_REF="main", CAS_GATE="false")
    assert rc == 0 and outputs["gate"] == "0"
    # An explicit base (push events, or comparing with a tag).
    rc, outputs, _ = _run_diff_step(work, tmp_path, CAS_BASE="main", CAS_HEAD="feature")
    assert rc == 0 and outputs["gate"] == "1"


def test_diff_step_skips_cleanly_without_a_casstore_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    git(plain, "init", "-q")
    rc, outputs, _ = _run_diff_step(plain, tmp_path, CAS_BASE_REF="main")
    assert rc == 0 and outputs == {"skip": "true"}


def test_diff_step_fails_on_a_real_error(tmp_path: Path) -> None:
    work = _pull_request(tmp_path)
    rc, outputs, _ = _run_diff_step(work, tmp_path, CAS_BASE="no-such-rev")
    assert rc != 0 and "gate" not in outputs


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node (GitHub runs it)")
def test_comment_script_posts_once_then_updates_in_place(tmp_path: Path) -> None:
    report = tmp_path / "r.md"
    driver = tmp_path / "driver.js"
    driver.write_text(f"""
const post = require({json.dumps(str(COMMENT_JS))});
const comments = [{{ id: 7, body: 'LGTM' }}];
const calls = [];
const github = {{
  paginate: async (fn, args) => fn(args),
  rest: {{ issues: {{
    listComments: (args) => comments.slice(),
    createComment: async (a) => {{ calls.push(['create', a.body]);
      const c = {{ id: 100 + comments.length, body: a.body }}; comments.push(c);
      return {{ data: c }}; }},
    updateComment: async (a) => {{ calls.push(['update', a.comment_id, a.body]);
      comments.find((c) => c.id === a.comment_id).body = a.body; }},
  }} }},
}};
const context = {{ repo: {{ owner: 'o', repo: 'r' }}, issue: {{ number: 5 }} }};
const fs = require('fs');
(async () => {{
  fs.writeFileSync({json.dumps(str(report))}, '<!-- cas-diff -->\\nfirst');
  const a = await post({{ github, context, report: {json.dumps(str(report))} }});
  fs.writeFileSync({json.dumps(str(report))}, '<!-- cas-diff -->\\nsecond');
  const b = await post({{ github, context, report: {json.dumps(str(report))} }});
  console.log(JSON.stringify({{ a, b, calls, comments }}));
}})();
""")
    proc = subprocess.run(["node", str(driver)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert res["a"]["action"] == "created" and res["b"] == {"action": "updated",
                                                             "id": res["a"]["id"]}
    bodies = [c["body"] for c in res["comments"]]
    assert bodies == ["LGTM", "<!-- cas-diff -->\nsecond"]  # one comment, others untouched
