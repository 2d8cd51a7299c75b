"""Git hooks as a Git user meets them (issue 14, part A): they say what they did on a
terminal, a failing pre-push says it is casstore's and how to skip it, and data tracked only
on the branch left behind never becomes an untracked file that `git add -A` would commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import git, git_env, run_cas, run_on_terminal, write_random


def _git_on_tty(cwd: Path, *args: str) -> tuple[int, str]:
    """Run git with its stderr on a pseudo-terminal, as in an interactive shell."""
    rc, out = run_on_terminal(cwd, "git", *args)
    return rc, out.replace("\r", "")


def _porcelain(repo: Path) -> list[str]:
    return git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()


def _two_branches(repo: Path) -> None:
    run_cas(repo, "install", "-q")
    write_random(repo / "base.bin", 20_000, seed=1)
    run_cas(repo, "add", "base.bin")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    git(repo, "checkout", "-q", "-b", "feat")
    write_random(repo / "model.bin", 50_000, seed=2)
    (repo / "ds").mkdir()
    (repo / "ds" / "a.csv").write_text("x,y\n1,2\n")
    run_cas(repo, "add", "model.bin", "ds")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "feat data")


def test_hooks_say_what_they_did_on_a_terminal(repo: Path) -> None:
    _two_branches(repo)
    rc, out = _git_on_tty(repo, "checkout", "main")
    assert rc == 0, out
    assert "cas: removed model.bin: tracked only on the other branch" in out
    assert "cas: removed ds: tracked only on the other branch" in out
    rc, out = _git_on_tty(repo, "checkout", "feat")
    assert rc == 0, out
    assert "cas: checked out 2 artifacts for branch feat" in out
    assert (repo / "model.bin").is_file() and (repo / "ds" / "a.csv").is_file()
    # Not on a terminal (a script running git): the routine line stays out of its output.
    git(repo, "checkout", "-q", "main")
    proc = subprocess.run(["git", "checkout", "-q", "feat"], cwd=repo, capture_output=True,
                          text=True, env=git_env())
    assert "checked out" not in proc.stderr + proc.stdout


def test_branch_switch_leaves_nothing_for_git_add_all(repo: Path) -> None:
    _two_branches(repo)
    git(repo, "checkout", "-q", "main")
    # Unchanged and in the cache: removed; switching back restores it.
    assert not (repo / "model.bin").exists() and not (repo / "ds").exists()
    assert _porcelain(repo) == []
    git(repo, "checkout", "-q", "feat")
    assert (repo / "model.bin").stat().st_size == 50_000

    # Changed since it was added: kept, and git-ignored locally (never committed).
    write_random(repo / "model.bin", 50_000, seed=3)
    proc = subprocess.run(["git", "checkout", "main"], cwd=repo, capture_output=True,
                          text=True, env=git_env())
    assert proc.returncode == 0, proc.stderr
    assert "cas: kept model.bin: tracked only on the other branch and changed" in proc.stderr
    assert (repo / "model.bin").is_file()
    assert _porcelain(repo) == []
    git(repo, "add", "-A")
    assert "model.bin" not in git(repo, "diff", "--cached", "--name-only")
    exclude = (repo / ".git" / "info" / "exclude").read_text()
    assert "/model.bin" in exclude.splitlines()
    assert ".gitignore" not in git(repo, "status", "--porcelain")


def test_failing_pre_push_names_casstore_and_no_verify(repo: Path, tmp_path: Path) -> None:
    run_cas(repo, "install", "-q")
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    # A casstore remote that cannot be written: a path below a regular file.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    run_cas(repo, "remote", "add", "store", str(blocker / "store"), "--default")
    write_random(repo / "m.bin", 30_000, seed=4)
    run_cas(repo, "add", "m.bin")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "data")
    proc = subprocess.run(["git", "push", "-q", "origin", "main"], cwd=repo,
                          capture_output=True, text=True, env=git_env(), timeout=120)
    assert proc.returncode != 0
    assert "casstore's pre-push hook" in proc.stderr
    assert "git push --no-verify" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = subprocess.run(["git", "push", "-q", "--no-verify", "origin", "main"], cwd=repo,
                          capture_output=True, text=True, env=git_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
