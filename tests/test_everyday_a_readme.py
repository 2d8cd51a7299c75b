"""The README's promises, run for real (issue 14, part A): the "Using it" block commits the
config, the `rev=` example names a tag `cas version --tag` really creates, and the
"Use it in your project" section documents the action, the Git install and the wheel."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from conftest import CAS, git, git_env, run_cas, write_random

import casstore

README = (Path(__file__).parent.parent / "README.md").read_text()


def _block(after: str) -> str:
    start = README.index(after)
    body = README[README.index("```bash\n", start) + 8:]
    return body[:body.index("```")]


def test_using_it_block_runs_and_leaves_a_clean_commit(tmp_path: Path) -> None:
    work = tmp_path / "proj"
    work.mkdir()
    (work / "data").mkdir()
    (work / "data" / "a.csv").write_text("x\n1\n")
    write_random(work / "model.pth", 200_000, seed=5)
    script = "set -e\n" + "\n".join(
        ln.split("  #")[0] for ln in _block("## Using it").splitlines() if ln.strip())
    env = {**git_env(), "PATH": f"{Path(CAS).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["bash", "-c", script], cwd=work, capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    committed = git(work, "ls-files").split()
    assert ".cas/config.yaml" in committed and ".cas/.gitignore" in committed
    assert git(work, "status", "--porcelain") == ""


def test_rev_example_names_the_tag_cas_version_creates(repo: Path) -> None:
    m = re.search(r'casstore\.open\("([^"]+)", rev="([^"]+)"\)', README)
    assert m, "README lost its casstore.open(..., rev=...) example"
    path, tag = m.groups()
    assert tag == f"{path}@1.2.0"
    write_random(repo / path, 30_000, seed=6)
    run_cas(repo, "add", path)
    run_cas(repo, "version", path, "--set", "1.2.0")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "v")
    run_cas(repo, "version", path, "--tag")
    assert tag in git(repo, "tag").split()
    original = (repo / path).read_bytes()
    (repo / path).unlink()
    cwd = os.getcwd()
    os.chdir(repo)
    try:
        with casstore.open(path, rev=tag) as f:
            assert f.read() == original
    finally:
        os.chdir(cwd)


def test_use_it_in_your_project_section() -> None:
    section = README[README.index("## Use it in your project"):]
    section = section[:section.index("\n## ", 5)]
    assert 'pip install "casstore @ git+https://' in section
    assert ".whl" in section
    assert "uses: <owner>/casstore@<ref>" in section
    assert "fetch-depth: 0" in section
    assert "pip install casstore\n" not in README  # not published: never tell users to
    assert "about 3 minutes on 2 cores, 5 minutes of CPU time" in README
