"""Everyday CLI behaviour a Git or DVC user expects (issue 14, part A): --version, shell
completion, -q/-v after the subcommand, `cas config`, and the wording of summaries."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import yaml
from conftest import CAS, git, git_env, run_cas, run_on_terminal

from casstore import __version__


def test_version_flag_prints_the_package_version(tmp_path: Path) -> None:
    for flag in ("--version", "-V"):
        r = run_cas(tmp_path, flag)  # outside any repository: no repo needed
        assert r.stdout.strip() == f"cas (casstore) {__version__}"
        assert r.stderr == ""


def test_show_completion_prints_a_script_for_cas(tmp_path: Path) -> None:
    # Run from bash, as a user would: typer detects the shell from the parent process (the
    # trailing command keeps bash from exec'ing cas, which would leave bash out of its
    # ancestry when the tests themselves run outside a shell).
    proc = subprocess.run(["bash", "-c", f"'{CAS}' --show-completion; exit $?"], cwd=tmp_path,
                          capture_output=True, text=True, env=git_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "_cas_completion" in proc.stdout and "_CAS_COMPLETE" in proc.stdout
    # The script really completes: what bash would ask for "cas sta<TAB>".
    env = {**git_env(), "_CAS_COMPLETE": "complete_bash", "COMP_WORDS": "cas sta",
           "COMP_CWORD": "1"}
    done = subprocess.run([CAS], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=60)
    assert "status" in done.stdout.split()
    help_text = run_cas(tmp_path, "--help").stdout
    assert "--install-completion" in help_text and "--show-completion" in help_text


def test_install_completion_writes_to_the_users_bash_rc(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {**git_env(), "HOME": str(home), "SHELL": "/bin/bash"}
    proc = subprocess.run(["bash", "-c", f"'{CAS}' --install-completion; exit $?"],
                          cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "completion installed" in proc.stdout
    scripts = list(home.rglob("cas*"))
    assert scripts and "_cas_completion" in scripts[0].read_text()


def test_quiet_and_verbose_work_after_the_subcommand(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    git(root, "init", "-q")
    r = run_cas(root, "init", "-q")
    assert r.stdout == "" and (root / ".cas" / "config.yaml").is_file()
    (root / "m.bin").write_bytes(os.urandom(5000))
    assert run_cas(root, "add", "m.bin", "--quiet").stdout == ""
    assert run_cas(root, "status", "--quiet").stdout == ""
    assert run_cas(root, "remote", "list", "-q").stdout == ""
    # Before the subcommand still works, and -v after it shows the detail lines.
    (root / "m.bin").write_bytes(os.urandom(6000))
    assert run_cas(root, "-q", "add", "m.bin").stdout == ""
    (root / "m.bin").write_bytes(os.urandom(7000))
    r = run_cas(root, "add", "m.bin", "-v")
    assert "xxh128" in r.stderr
    # A real option of the subcommand is still parsed as before.
    assert run_cas(root, "init", "--force", "-q").stdout == ""


def test_config_get_set_list_unset(repo: Path) -> None:
    assert run_cas(repo, "config", "core.remote", check=False).returncode == 1  # not set
    run_cas(repo, "config", "cache.dir", "/srv/cas-cache")
    run_cas(repo, "config", "core.fsync", "false")
    assert run_cas(repo, "config", "cache.dir").stdout == "/srv/cas-cache\n"
    shared = yaml.safe_load((repo / ".cas" / "config.yaml").read_text())
    assert shared["cache"]["dir"] == "/srv/cas-cache" and shared["core"]["fsync"] is False

    # --local goes to the git-ignored file and wins in the merged view.
    run_cas(repo, "config", "--local", "cache.dir", "/mnt/fast")
    assert run_cas(repo, "config", "cache.dir").stdout == "/mnt/fast\n"
    local = yaml.safe_load((repo / ".cas" / "config.local.yaml").read_text())
    assert local == {"cache": {"dir": "/mnt/fast"}}

    # Secrets: refused in the committed file, redacted by --list, as are URL passwords.
    run_cas(repo, "remote", "add", "origin", "s3://bucket/team", "--default")
    r = run_cas(repo, "config", "remotes.origin.secret", "s3cr3t-value", check=False)
    assert r.returncode != 0 and "--local" in r.stderr and len(r.stderr.splitlines()) == 1
    run_cas(repo, "config", "--local", "remotes.origin.secret", "s3cr3t-value")
    run_cas(repo, "config", "--local", "remotes.origin.key", "AKIAEXAMPLE")
    listing = run_cas(repo, "config", "--list").stdout
    assert "s3cr3t-value" not in listing and "AKIAEXAMPLE" not in listing
    assert "remotes.origin.secret=***" in listing
    assert "remotes.origin.url=s3://bucket/team" in listing
    assert "core.remote=origin" in listing and "cache.dir=/mnt/fast" in listing
    assert "core.fsync=false" in listing
    import json

    as_json = json.loads(run_cas(repo, "config", "--list", "--json").stdout)
    assert as_json["remotes.origin.key"] == "***"
    assert run_cas(repo, "config", "--list", "--local").stdout.count("\n") == 3

    # --unset removes the key and the section it leaves empty.
    run_cas(repo, "config", "--unset", "cache.dir")
    assert "cache" not in yaml.safe_load((repo / ".cas" / "config.yaml").read_text())
    assert run_cas(repo, "config", "cache.dir").stdout == "/mnt/fast\n"  # local one stays


def test_config_errors_are_one_line(repo: Path, tmp_path: Path) -> None:
    cases = [
        ("config",),
        ("config", "nodot"),
        ("config", "core", "x"),
        ("config", "--unset", "cache.dir"),
        ("config", "--list", "core.remote"),
        ("config", "--unset", "core.remote", "x"),
        ("config", "chunking"),
    ]
    for args in cases:
        r = run_cas(repo, *args, check=False)
        assert r.returncode not in (0, 3), (args, r)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("cas: error:"), (args, r.stderr)
    # A section asked for as a key names its keys.
    r = run_cas(repo, "config", "chunking.avg.x", "1", check=False)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    outside = tmp_path / "plain"
    outside.mkdir()
    r = run_cas(outside, "config", "--list", check=False)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1


def test_summaries_use_binary_units_and_singular_words(repo: Path) -> None:
    (repo / "one").mkdir()
    (repo / "one" / "a.txt").write_text("only file\n")
    (repo / "model.bin").write_bytes(os.urandom(3 << 20))
    out = run_cas(repo, "add", "one", "model.bin").stdout
    assert "added: one.cas (10 B, 1 file," in out
    assert re.search(r"added: model\.bin\.cas \(3\.0 MiB, \d+ chunks, 3\.0 MiB new", out)
    # Adding again unchanged, then changed: "unchanged", then "updated" (never "added").
    assert "unchanged: one.cas" in run_cas(repo, "add", "one").stdout
    (repo / "one" / "b.txt").write_text("second\n")
    assert "updated: one.cas (17 B, 2 files," in run_cas(repo, "add", "one").stdout
    (repo / "one" / "b.txt").unlink()
    (repo / "one" / "a.txt").unlink()
    out = run_cas(repo, "checkout", "one").stdout
    assert "restored 2 files," in out
    (repo / "one" / "a.txt").unlink()
    assert "restored 1 file," in run_cas(repo, "checkout", "one").stdout
    # No decimal units anywhere in what a user reads.
    assert not re.search(r"\d (kB|MB|GB)\b", out)


def test_push_and_the_noop_push_after_it_count_the_same_objects(repo: Path,
                                                                 tmp_path: Path) -> None:
    (repo / "d").mkdir()
    for i in range(3):
        (repo / "d" / f"f{i}").write_text(f"file {i}\n")
    (repo / "m.bin").write_bytes(os.urandom(400_000))
    run_cas(repo, "add", "d", "m.bin")
    run_cas(repo, "remote", "add", "o", str(tmp_path / "remote"), "--default")
    first = run_cas(repo, "push").stdout
    m = re.search(r"pushed (\d+) of the (\d+) objects the pointers need \((\d+) already "
                  r"there\) in 1 pack,", first)
    assert m, first
    sent, needed, there = map(int, m.groups())
    assert sent == needed and there == 0
    again = run_cas(repo, "push").stdout
    assert f"all {needed} objects the pointers need" in again
    # After a change: the new total is stated in both lines again.
    (repo / "d" / "f9").write_text("new\n")
    run_cas(repo, "add", "d")
    m = re.search(r"pushed (\d+) of the (\d+) objects .*\((\d+) already there\)",
                  run_cas(repo, "push").stdout)
    assert m
    sent, needed2, there = map(int, m.groups())
    assert sent + there == needed2
    assert f"all {needed2} objects" in run_cas(repo, "push").stdout


def test_pushing_one_artifact_of_a_shared_pack_counts_only_its_objects(repo: Path,
                                                                     tmp_path: Path) -> None:
    """Two artifacts added together share a pack, which goes up whole when one of them is
    pushed: the summary still counts what that artifact's pointer needs."""
    (repo / "d").mkdir()
    for i in range(3):  # most of the pack: it is sent whole, e.bin's bytes with it
        (repo / "d" / f"f{i}").write_bytes(os.urandom(40_000))
    (repo / "e.bin").write_bytes(os.urandom(2_000))
    run_cas(repo, "add", "d", "e.bin")
    run_cas(repo, "remote", "add", "o", str(tmp_path / "remote"), "--default")
    out = run_cas(repo, "push", "d").stdout
    m = re.search(r"pushed (\d+) of the (\d+) objects the pointers need \((\d+) already "
                  r"there\)", out)
    assert m, out
    sent, needed, there = map(int, m.groups())
    assert sent == needed and there == 0 and "-" not in m.group(0)
    assert "Everything is on" in run_cas(repo, "push").stdout  # e.bin went up in that pack


def test_progress_bar_speaks_binary_units_on_a_terminal(repo: Path) -> None:
    """The bar (shown only on a terminal) uses the units of every summary: KiB, MiB, GiB."""
    (repo / "big.bin").write_bytes(os.urandom(256 << 20))
    rc, bar = run_on_terminal(repo, CAS, "add", "big.bin", stdout_too=True,
                              env=dict(git_env(), COLUMNS="120"), timeout=300)
    assert rc == 0
    # The bar's own columns: "done/total MiB" and a speed; the summary line has neither.
    assert re.search(r"[\d.]+/[\d.]+ MiB", bar) and "iB/s" in bar, bar[-2000:]
    assert not re.search(r"\d ?(kB|MB|GB)\b", bar), bar[-2000:]
