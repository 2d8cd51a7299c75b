"""cas install: hooks on real Git commands, the textconv diff, and pointer merges."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from conftest import git, git_env, run_cas, write_random


def _hook(repo: Path, name: str) -> Path:
    return repo / ".git" / "hooks" / name


def _git_run(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                          env=git_env())


def _base(repo: Path, cas) -> None:
    cas("install")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "setup")


def test_install_chains_existing_hooks_and_uninstall_restores_them(repo: Path, cas) -> None:
    hooks = repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    shell = "#!/bin/sh\necho user-post-merge >> \"$(git rev-parse --git-dir)/log\"\nexit 0\n"
    _hook(repo, "post-merge").write_text(shell)
    py = "#!/usr/bin/env python3\nprint('user pre-commit')\n"
    _hook(repo, "pre-commit").write_text(py)
    os.chmod(_hook(repo, "pre-commit"), 0o755)
    out = cas("install").stdout
    assert "post-merge" in out and "pre-commit" in out
    text = _hook(repo, "post-merge").read_text()
    # Our block goes before the user's 'exit 0', and the user's lines stay.
    assert text.index("cas hooks") < text.index("user-post-merge") < text.index("exit 0")
    assert text.startswith("#!/bin/sh\n")
    assert (hooks / "pre-commit.cas-chained").read_text() == py
    assert _hook(repo, "post-checkout").stat().st_mode & stat.S_IXUSR
    assert "diff=cas" in (repo / ".gitattributes").read_text()
    assert "textconv" in git(repo, "config", "diff.cas.textconv")
    cas("install")  # twice is the same as once
    assert _hook(repo, "post-merge").read_text().count("cas hooks <<<") == 1
    # The chained python hook still runs, after ours.
    git(repo, "add", "-A")
    res = _git_run(repo, "commit", "-q", "-m", "c")
    assert res.returncode == 0 and "user pre-commit" in res.stdout + res.stderr
    cas("uninstall")
    assert _hook(repo, "post-merge").read_text() == shell
    assert _hook(repo, "pre-commit").read_text() == py
    assert not (hooks / "pre-commit.cas-chained").exists()
    assert not _hook(repo, "post-checkout").exists()
    assert _git_run(repo, "config", "diff.cas.textconv").returncode != 0


def test_data_follows_git_checkout_of_another_branch(repo: Path, cas) -> None:
    _base(repo, cas)
    v1 = write_random(repo / "model.bin", 400_000, seed=1)
    write_random(repo / "data" / "a.bin", 50_000, seed=2)
    cas("add", "model.bin", "data")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v1")
    git(repo, "checkout", "-q", "-b", "feature")
    v2 = write_random(repo / "model.bin", 300_000, seed=3)
    b = write_random(repo / "data" / "b.bin", 60_000, seed=4)
    cas("add", "model.bin", "data")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v2")
    res = _git_run(repo, "checkout", "-q", "main")
    assert res.returncode == 0, res.stderr
    assert (repo / "model.bin").read_bytes() == v1
    assert not (repo / "data" / "b.bin").exists()
    res = _git_run(repo, "checkout", "-q", "feature")
    assert res.returncode == 0, res.stderr
    assert (repo / "model.bin").read_bytes() == v2
    assert (repo / "data" / "b.bin").read_bytes() == b


def test_pre_commit_warns_about_data_changed_since_add(repo: Path, cas) -> None:
    _base(repo, cas)
    write_random(repo / "model.bin", 100_000, seed=1)
    cas("add", "model.bin")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v1")
    write_random(repo / "model.bin", 100_000, seed=2)
    (repo / "notes.txt").write_text("x")
    git(repo, "add", "notes.txt")
    res = _git_run(repo, "commit", "-q", "-m", "notes")
    assert res.returncode == 0
    assert "model.bin changed since it was added; run 'cas add model.bin'" in res.stderr


def test_git_diff_shows_a_readable_summary(repo: Path, cas) -> None:
    _base(repo, cas)
    write_random(repo / "model.bin", 3 * 1024 * 1024, seed=1)
    write_random(repo / "data" / "a.bin", 2048, seed=2)
    cas("add", "model.bin", "data")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v1")
    write_random(repo / "model.bin", 5 * 1024 * 1024, seed=3)
    write_random(repo / "data" / "b.bin", 1024, seed=4)
    cas("add", "model.bin", "data")
    diff = git(repo, "diff")
    assert "-size: 3.0 MiB (3145728 bytes)" in diff
    assert "+size: 5.0 MiB (5242880 bytes)" in diff
    assert "+  b.bin  1.0 KiB" in diff
    assert "-files: 1" in diff and "+files: 2" in diff
    assert "kind: file" in git(repo, "log", "-p", "-1", "--", "model.bin.cas")


def _three_branches(repo: Path, cas, edit_ours, edit_theirs) -> None:
    write_random(repo / "data" / "a.bin", 40_000, seed=1)
    cas("add", "data")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "checkout", "-q", "-b", "theirs")
    edit_theirs()
    cas("add", "data")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "theirs")
    git(repo, "checkout", "-q", "main")
    cas("checkout")
    edit_ours()
    cas("add", "data")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "ours")


def test_merge_of_branches_that_added_different_files(repo: Path, cas) -> None:
    _base(repo, cas)
    files: dict[str, bytes] = {}

    def ours() -> None:
        files["b"] = write_random(repo / "data" / "b.bin", 30_000, seed=2)

    def theirs() -> None:
        files["c"] = write_random(repo / "data" / "sub" / "c.bin", 20_000, seed=3)

    _three_branches(repo, cas, ours, theirs)
    res = _git_run(repo, "merge", "-q", "--no-edit", "theirs")
    assert res.returncode == 0, res.stdout + res.stderr
    ptr = (repo / "data.cas").read_text()
    assert "b.bin" in ptr and "sub/c.bin" in ptr and "files: 3" in ptr
    # post-merge ran 'cas checkout': the workspace holds both sides' files.
    assert (repo / "data" / "b.bin").read_bytes() == files["b"]
    assert (repo / "data" / "sub" / "c.bin").read_bytes() == files["c"]
    assert cas("status", "--json").stdout.count('"states": []') == 1


def test_real_conflicts_are_reported_by_path(repo: Path, cas) -> None:
    _base(repo, cas)
    _three_branches(repo, cas, lambda: write_random(repo / "data" / "a.bin", 100, seed=5),
                    lambda: write_random(repo / "data" / "a.bin", 100, seed=6))
    res = _git_run(repo, "merge", "-q", "--no-edit", "theirs")
    assert res.returncode != 0
    assert "data/a.bin: changed differently on both sides" in res.stderr
    assert "<<<<<<< ours" in (repo / "data.cas").read_text()
    res2 = cas("merge", check=False)
    assert res2.returncode == 1 and "changed differently on both sides" in res2.stderr


def test_cas_merge_resolves_a_conflict_left_by_plain_git(repo: Path, cas) -> None:
    # No 'cas install': Git's own text merge conflicts on the pointer, 'cas merge' fixes it.
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "setup")
    _three_branches(repo, cas, lambda: write_random(repo / "data" / "b.bin", 100, seed=7),
                    lambda: write_random(repo / "data" / "c.bin", 100, seed=8))
    res = _git_run(repo, "merge", "-q", "--no-edit", "theirs")
    assert res.returncode != 0
    out = cas("merge")
    assert "merged data.cas (tree merge)" in out.stdout
    assert sorted(p.name for p in (repo / "data").iterdir()) == ["a.bin", "b.bin", "c.bin"]
    git(repo, "add", "data.cas")
    git(repo, "commit", "-q", "--no-edit")
    assert cas("status", "--json").stdout.count('"states": []') == 1


def test_git_push_sends_the_data_to_the_default_remote(repo: Path, cas, tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    cas("remote", "add", "storage", str(store), "--default")
    _base(repo, cas)
    model = write_random(repo / "model.bin", 300_000, seed=1)
    cas("add", "model.bin")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v1")
    assert not list(store.rglob("*.pack"))
    res = _git_run(repo, "push", "-q", "origin", "main")
    assert res.returncode == 0, res.stderr
    assert list(store.rglob("*.pack"))
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(bare), str(clone))
    run_cas(clone, "pull")
    assert (clone / "model.bin").read_bytes() == model
    # A branch pushed later: checking it out in the clone fetches its data first.
    git(repo, "checkout", "-q", "-b", "feature")
    v2 = write_random(repo / "model.bin", 200_000, seed=2)
    cas("add", "model.bin")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v2")
    assert _git_run(repo, "push", "-q", "origin", "feature").returncode == 0
    run_cas(clone, "install")
    git(clone, "fetch", "-q", "origin")
    res = _git_run(clone, "checkout", "-q", "feature")
    assert res.returncode == 0, res.stderr
    assert (clone / "model.bin").read_bytes() == v2
