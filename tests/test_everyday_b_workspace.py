"""Everyday workspace use, driving the real `cas`: untracking, .casignore, symbolic links
inside folders, and permission bits of single files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from conftest import git, run_cas, write_random


def test_remove_keeps_data_and_other_gitignore_lines(repo: Path, cas) -> None:
    (repo / ".gitignore").write_text("*.log\n")
    data = write_random(repo / "star[1]*.bin", 70_000, seed=1)
    write_random(repo / "other.bin", 1000, seed=2)
    cas("add", "star[1]*.bin", "other.bin")
    gi = (repo / ".gitignore").read_text()
    assert "/star\\[1\\]\\*.bin" in gi.splitlines()
    res = cas("remove", "star[1]*.bin")
    assert "untracked: star[1]*.bin" in res.stdout
    assert not (repo / "star[1]*.bin.cas").exists()
    assert (repo / "star[1]*.bin").read_bytes() == data  # kept in the workspace
    assert (repo / ".gitignore").read_text().splitlines() == ["*.log", "/other.bin"]
    # Git now sees the data as an ordinary untracked file.
    assert "star[1]*.bin" in git(repo, "status", "--porcelain", "--untracked-files=all")
    # The alias, given the pointer path; status no longer lists it.
    cas("untrack", "other.bin.cas")
    assert (repo / ".gitignore").read_text().splitlines() == ["*.log"]
    assert "0 tracked" in cas("status").stdout


def test_remove_purge_refuses_unsaved_changes(repo: Path, cas) -> None:
    (repo / "d").mkdir()
    write_random(repo / "d" / "a.bin", 5000, seed=3)
    cas("add", "d")
    (repo / "d" / "a.bin").write_bytes(b"changed, not in the cache")
    res = cas("remove", "--purge", "d", check=False)
    assert res.returncode == 1 and "cas add d" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert (repo / "d.cas").exists()  # nothing was changed
    cas("remove", "--purge", "--force", "d")
    assert not (repo / "d").exists() and not (repo / "d.cas").exists()
    assert not (repo / ".gitignore").exists()  # it held only casstore's line
    res = cas("remove", "nowhere", check=False)
    assert res.returncode == 1 and res.stderr.startswith("cas: error: nowhere is not tracked")


def test_remove_purge_of_clean_data(repo: Path, cas) -> None:
    write_random(repo / "m.bin", 100_000, seed=4)
    cas("add", "m.bin")
    res = cas("remove", "--purge", "m.bin")
    assert "removed and deleted: m.bin" in res.stdout
    assert not (repo / "m.bin").exists()


def test_casignore_defaults_and_custom_rules(repo: Path, cas) -> None:
    assert (repo / ".casignore").read_text().splitlines()[1:] == [
        ".DS_Store", ".ipynb_checkpoints/", "__pycache__/"]
    d = repo / "data"
    write_random(d / "a.bin", 3000, seed=5)
    write_random(d / "sub" / "b.bin", 3000, seed=6)
    (d / ".DS_Store").write_bytes(b"finder")
    (d / "sub" / ".ipynb_checkpoints").mkdir()
    (d / "sub" / ".ipynb_checkpoints" / "x-checkpoint.ipynb").write_text("{}")
    (d / "__pycache__").mkdir()
    (d / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"pyc")
    (d / "scratch.tmp").write_text("tmp")
    with open(repo / ".casignore", "a") as f:
        f.write("*.tmp\n")
    cas("add", "data")
    ptr = (repo / "data.cas").read_text()
    assert "files: 2" in ptr and "DS_Store" not in ptr and "tmp" not in ptr
    assert "Everything is up to date" in cas("status").stdout
    # New ignored files change nothing; a new real file does.
    (d / "sub" / ".DS_Store").write_bytes(b"more finder")
    assert "Everything is up to date" in cas("status").stdout
    (d / "new.bin").write_bytes(b"new")
    out = cas("status").stdout
    assert "added: data/new.bin" in out and "DS_Store" not in out
    (d / "new.bin").unlink()
    # Checkout neither deletes nor restores ignored files.
    (d / "a.bin").unlink()
    cas("checkout")
    assert (d / ".DS_Store").read_bytes() == b"finder"
    assert (d / "scratch.tmp").exists() and (d / "a.bin").exists()


def test_symlink_inside_folder_is_skipped_with_warning(repo: Path, cas) -> None:
    d = repo / "data"
    target = write_random(repo / "outside.bin", 20_000, seed=7)
    write_random(d / "a.bin", 1000, seed=8)
    os.symlink("../outside.bin", d / "link.bin")
    os.symlink("nowhere", d / "broken")
    res = cas("add", "data")
    assert "warning: skipped data/link.bin: a symbolic link" in res.stderr
    assert "--follow-symlinks" in res.stderr
    assert "files: 1" in (repo / "data.cas").read_text()
    assert "Everything is up to date" in cas("status").stdout

    res = cas("add", "--follow-symlinks", "data")
    ptr = (repo / "data.cas").read_text()
    assert "files: 2" in ptr and "follow_symlinks: true" in ptr
    assert "link to nothing" in res.stderr  # a broken link is still skipped
    assert "Everything is up to date" in cas("status").stdout
    cas("add", "data")  # a plain re-add keeps following
    assert "files: 2" in (repo / "data.cas").read_text()
    # The stored content is the target's: a fresh checkout writes it as a regular file.
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "data")
    import shutil

    shutil.rmtree(d)
    cas("checkout")
    assert not (d / "link.bin").is_symlink()
    assert (d / "link.bin").read_bytes() == target


def test_single_file_keeps_private_and_executable_modes(repo: Path, cas) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    for name, mode in (("key.bin", 0o600), ("run.sh", 0o700), ("pub.bin", 0o644),
                       ("tool", 0o755)):
        p = repo / name
        write_random(p, 30_000, seed=len(name))
        os.chmod(p, mode)
    cas("add", "key.bin", "run.sh", "pub.bin", "tool")
    assert "mode: '0600'" in (repo / "key.bin.cas").read_text()
    assert "mode: '0700'" in (repo / "run.sh.cas").read_text()
    assert "mode" not in (repo / "pub.bin.cas").read_text()  # defaults write nothing
    assert "mode" not in (repo / "tool.cas").read_text()
    for name in ("key.bin", "run.sh", "pub.bin", "tool"):
        (repo / name).unlink()
    cas("checkout")
    got = {n: stat.S_IMODE((repo / n).stat().st_mode)
           for n in ("key.bin", "run.sh", "pub.bin", "tool")}
    assert got["key.bin"] == 0o600 and got["run.sh"] == 0o700
    assert got["pub.bin"] == 0o666 & ~umask and got["tool"] == 0o777 & ~umask
    # An unchanged file widened by hand is narrowed again by checkout.
    os.chmod(repo / "key.bin", 0o644)
    cas("checkout", "key.bin")
    assert stat.S_IMODE((repo / "key.bin").stat().st_mode) == 0o600
    # Deterministic: re-adding the same content writes the same bytes.
    before = (repo / "key.bin.cas").read_bytes()
    assert "unchanged" in cas("add", "key.bin").stdout
    assert (repo / "key.bin.cas").read_bytes() == before


def test_bad_mode_in_pointer_is_one_line_error(repo: Path, cas) -> None:
    write_random(repo / "f.bin", 100, seed=9)
    cas("add", "f.bin")
    text = (repo / "f.bin.cas").read_text()
    (repo / "f.bin.cas").write_text(text + "mode: '0777'\n")
    res = run_cas(repo, "status", check=False)
    assert res.returncode == 1 and "'mode' must be one of" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_init_keeps_an_existing_casignore(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / ".casignore").write_text("*.tmp\n")
    res = run_cas(root, "init")
    assert ".casignore" in res.stdout
    assert (root / ".casignore").read_text() == "*.tmp\n"  # the project's own rules stay
    run_cas(root, "init", "--force")
    assert (root / ".casignore").read_text() == "*.tmp\n"


def test_version_sees_a_followed_folder_as_unchanged(repo: Path, cas) -> None:
    d = repo / "data"
    write_random(d / "a.bin", 1000, seed=11)
    write_random(repo / "target.bin", 1000, seed=12)
    os.symlink("../target.bin", d / "link.bin")
    cas("add", "--follow-symlinks", "data")
    # 'cas version' refuses data changed since it was added; a followed link is not a change.
    res = cas("version", "data", "--bump", "minor", check=False)
    assert res.returncode == 0, res.stderr


def test_checkout_never_overwrites_a_changed_file_casignore_now_hides(repo: Path) -> None:
    """A file in a tracked folder's tree that .casignore starts to hide is still looked at
    before checkout replaces it: changed and not in the cache, it is kept and reported."""
    (repo / "d").mkdir()
    (repo / "d" / "keep.txt").write_text("tracked\n")
    (repo / "d" / "x.log").write_text("v1\n")
    run_cas(repo, "add", "d")
    with open(repo / ".casignore", "a") as f:
        f.write("*.log\n")
    (repo / "d" / "x.log").write_text("my edits, in no cache\n")
    res = run_cas(repo, "checkout", check=False)
    assert res.returncode == 1 and "x.log" in res.stderr
    assert (repo / "d" / "x.log").read_text() == "my edits, in no cache\n"
