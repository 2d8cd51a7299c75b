"""Names: whatever a file is called, casstore either records and restores it faithfully or
refuses it with one line when it is added; its .gitignore lines mean exactly that file; a
user's file is never skipped or deleted because its name looks like a temp file; no path
through a symbolic link reaches .git or leaves the work tree; an unrelated ``*.cas`` file is
excluded with ``.casignore``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import CAS, git, run_cas, write_random

from .helpers import snapshot, status

ODD_NAMES = ["data[1].bin", "star*.bin", "q?.bin", "trailing ", "two  spaces  ", "#hash",
             "!bang", "br]acket.bin", "[abc]", "tab\tname"]
# What each odd name's line would also have matched had it been written unescaped.
DECOYS = ["data1.bin", "starfoo.bin", "qX.bin", "trailing", "a", "b"]


def one_error_line(res: object) -> str:
    lines = res.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert res.returncode == 1, res  # type: ignore[attr-defined]
    assert len(lines) == 1 and lines[0].startswith("cas: error: "), lines
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr, res.stderr  # type: ignore[attr-defined]
    return lines[0]


def check_ignore(repo: Path, names: list[str]) -> set[str]:
    """The names Git itself says are ignored."""
    out = subprocess.run(["git", "check-ignore", "-z", "--no-index", "--stdin"], cwd=repo,
                         input="\0".join(names).encode() + b"\0", capture_output=True).stdout
    return {n for n in out.decode().split("\0") if n}


def test_gitignore_lines_match_exactly_the_odd_name(repo: Path) -> None:
    sub = repo / "sub"
    sub.mkdir()
    for i, name in enumerate(ODD_NAMES):
        (repo / name).write_bytes(b"x" * (i + 1))
        (sub / name).write_bytes(b"y" * (i + 1))
    for name in DECOYS:
        (repo / name).write_bytes(b"decoy")
        (sub / name).write_bytes(b"decoy")
    run_cas(repo, "add", *ODD_NAMES)
    run_cas(sub, "add", *ODD_NAMES)
    ignored = check_ignore(repo, ODD_NAMES + DECOYS + [f"sub/{n}" for n in ODD_NAMES + DECOYS])
    assert ignored == set(ODD_NAMES) | {f"sub/{n}" for n in ODD_NAMES}
    # And so `git add -A` commits the pointers and decoys but none of the data.
    git(repo, "add", "-A")
    staged = set(git(repo, "diff", "--cached", "--name-only", "-z").split("\0"))
    assert not staged & (set(ODD_NAMES) | {f"sub/{n}" for n in ODD_NAMES})
    assert {f"{n}.cas" for n in ODD_NAMES} <= staged
    # Re-adding does not duplicate lines.
    before = (repo / ".gitignore").read_bytes()
    run_cas(repo, "add", *ODD_NAMES)
    assert (repo / ".gitignore").read_bytes() == before


def test_gitignore_escapes_backslashes(tmp_path: Path) -> None:
    # Backslash names are refused by add (see below), but the escaping must still be right
    # for whoever calls add_gitignore: Git must read the line back as that one name.
    from casstore.project import gitignore_line

    git(tmp_path, "init", "-q")
    names = ["weights\\v2.bin", "end\\", "\\#x", "a\\*b"]
    (tmp_path / ".gitignore").write_text("".join(gitignore_line(n) + "\n" for n in names))
    decoys = ["weightsv2.bin", "end", "#x", "a*b", "a\\xb"]
    assert check_ignore(tmp_path, names + decoys) == set(names)


def test_newline_in_a_name_is_refused_with_one_line(repo: Path) -> None:
    (repo / "a\n*.py").write_bytes(b"x")
    (repo / "train.py").write_text("print(1)\n")
    line = one_error_line(run_cas(repo, "add", "a\n*.py", check=False))
    assert "newline" in line
    assert not (repo / ".gitignore").exists() or "*.py" not in (repo / ".gitignore").read_text()
    assert check_ignore(repo, ["train.py"]) == set()
    d = repo / "d"
    d.mkdir()
    (d / "x\ny").write_bytes(b"x")
    assert "newline" in one_error_line(run_cas(repo, "add", "d", check=False))


TEMP_LOOKALIKES = [".x.deadbeef0000.cas-tmp", ".f.bin.0123456789ab.cas-tmp", ".cas-tmp.0123",
                   ".cas-tmp.0123456789abcdef"]


def test_files_named_like_temp_files_are_data(repo: Path) -> None:
    d = repo / "d"
    d.mkdir()
    (d / "f.bin").write_bytes(b"real")
    for i, n in enumerate(TEMP_LOOKALIKES):
        (d / n).write_bytes(b"user data %d" % i)
    # Beside a pointer, named like that pointer's temp file.
    (repo / "model.bin").write_bytes(b"model")
    beside = repo / ".model.bin.cas.0123456789ab.cas-tmp"
    beside.write_bytes(b"user's notes")
    run_cas(repo, "add", "d", "model.bin")
    # Added, not skipped: the tree lists every file.
    assert f"files: {1 + len(TEMP_LOOKALIKES)}" in (repo / "d.cas").read_text()
    (repo / "model.bin").write_bytes(b"model v2")
    run_cas(repo, "add", "model.bin")  # a re-add used to delete 'its' temp files
    assert beside.read_bytes() == b"user's notes"
    # A checkout that rewrites the folder restores them all and deletes none.
    snap = snapshot(d)
    for n in TEMP_LOOKALIKES:
        (d / n).unlink()
    (d / "f.bin").write_bytes(b"changed")
    run_cas(repo, "checkout", "--force", "d")
    assert snapshot(d) == snap
    # A new look-alike is a change status reports, and checkout keeps it (it is not in the
    # cache, so only --force could delete it).
    extra = d / ".g.bin.fedcba987654.cas-tmp"
    extra.write_bytes(b"new user file")
    entry = next(e for e in status(repo) if e["path"] == "d")
    assert entry["states"] == ["modified"] and entry["added"] == [extra.name], entry
    res = run_cas(repo, "checkout", "d", check=False)
    assert extra.read_bytes() == b"new user file", res


@pytest.mark.parametrize("length", [234, 243, 255])
def test_long_names_inside_a_tracked_folder_are_restored(repo: Path, length: int) -> None:
    d = repo / "d"
    name = ("é" * (length // 2) + "n" * (length % 2))  # UTF-8: bytes count, not characters
    assert len(name.encode()) == length
    write_random(d / name, 300_000, seed=length)
    (d / "sub").mkdir()
    (d / "sub" / ("s" * length)).write_bytes(b"small")
    run_cas(repo, "add", "d")
    snap = snapshot(d)
    (d / name).unlink()
    (d / "sub" / ("s" * length)).write_bytes(b"changed")
    run_cas(repo, "checkout", "--force", "d")
    assert snapshot(d) == snap


def test_long_top_level_names(repo: Path) -> None:
    ok = "m" * 251  # its pointer's name, NAME.cas, is 255 bytes: the longest possible
    (repo / ok).write_bytes(b"x" * 1000)
    run_cas(repo, "add", ok)
    (repo / ok).unlink()
    run_cas(repo, "checkout", ok)
    assert (repo / ok).read_bytes() == b"x" * 1000
    too_long = "t" * 252
    (repo / too_long).write_bytes(b"y")
    line = one_error_line(run_cas(repo, "add", too_long, check=False))
    assert "too long" in line


def test_twelve_hundred_nested_folders(repo: Path) -> None:
    d = repo / "deep"
    d.mkdir()
    try:
        _deep_checks(repo, d)
    finally:
        # pytest's own clean-up of old temp folders recurses and would fail on this tree.
        subprocess.run(["rm", "-rf", str(d)], check=True)


def _deep_checks(repo: Path, d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        # Built with *at calls: the full path is longer than the shell likes to see.
        cur = fd
        for _ in range(1200):
            os.mkdir("a", dir_fd=cur)
            nxt = os.open("a", os.O_RDONLY, dir_fd=cur)
            if cur != fd:
                os.close(cur)
            cur = nxt
        wfd = os.open("f.bin", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=cur)
        os.write(wfd, b"bottom")
        os.close(wfd)
        os.close(cur)
    finally:
        os.close(fd)
    for args in (("add", "deep"), ("status",)):
        res = run_cas(repo, *args, check=False)
        assert res.returncode == 0 and "internal error" not in res.stderr, res
    subprocess.run(["rm", "-rf", str(d)], check=True)
    res = run_cas(repo, "checkout", check=False)
    assert res.returncode == 0, res
    bottom = d.joinpath(*(["a"] * 1200), "f.bin")
    assert bottom.read_bytes() == b"bottom"
    assert all(e["states"] == [] for e in status(repo))


def test_non_utf8_names_are_refused_at_add_with_one_line(repo: Path) -> None:
    root = os.fsencode(repo)
    os.mkdir(root + b"/nu")
    with open(root + b"/nu/caf\xe9.bin", "wb") as f:
        f.write(b"x")
    line = one_error_line(run_cas(repo, "add", "nu", check=False))
    assert "UTF-8" in line and "nu/caf" in line
    with open(root + b"/\xff\xfe.bin", "wb") as f:
        f.write(b"x")
    res = subprocess.run([CAS, "add", b"\xff\xfe.bin"], cwd=repo, capture_output=True,
                         text=True)
    assert "UTF-8" in one_error_line(res)
    assert not [p for p in repo.glob("*.cas") if p.is_file()]
    assert not (repo / ".gitignore").exists()
    # A tracked folder that later gains such a file: status says so in one line too.
    os.mkdir(root + b"/ok")
    with open(root + b"/ok/a.bin", "wb") as f:
        f.write(b"x")
    run_cas(repo, "add", "ok")
    with open(root + b"/ok/\xff.bin", "wb") as f:
        f.write(b"x")
    assert "UTF-8" in one_error_line(run_cas(repo, "status", check=False))


def test_backslash_names_get_the_right_reason(repo: Path) -> None:
    d = repo / "d"
    d.mkdir()
    (d / "back\\slash").write_bytes(b"x")
    line = one_error_line(run_cas(repo, "add", "d", check=False))
    assert "backslash" in line and ".git" not in line
    (repo / "weights\\v2.bin").write_bytes(b"x")
    line = one_error_line(run_cas(repo, "add", "weights\\v2.bin", check=False))
    assert "backslash" in line
    # What add refuses never becomes a pointer that every later command would trip on.
    assert not [p for p in repo.glob("*.cas") if p.is_file()]


def _payload_pointer(repo: Path) -> str:
    payload = repo / "payload"
    payload.write_text("#!/bin/sh\necho pwned > /tmp/cas-pwned\n")
    payload.chmod(0o755)
    run_cas(repo, "add", "payload")
    return (repo / "payload.cas").read_text()


def test_no_checkout_through_a_link_into_git(repo: Path) -> None:
    text = _payload_pointer(repo)
    (repo / "lnk").symlink_to(".git")
    hooks = repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "pre-commit.cas").write_text(text.replace("path: payload", "path: pre-commit"))
    for target in ("lnk/hooks/pre-commit.cas", "lnk/hooks/pre-commit", "lnk/hooks"):
        res = run_cas(repo, "checkout", "--force", target, check=False)
        assert res.returncode != 0 and "Traceback" not in res.stderr, res
        assert not (hooks / "pre-commit").exists()
    # A folder pointer through the link: lnk/hooks.cas would replace .git/hooks.
    d = repo / "h"
    d.mkdir()
    (d / "post-checkout").write_text("#!/bin/sh\necho pwned\n")
    run_cas(repo, "add", "h")
    (repo / ".git" / "hooks.cas").write_text((repo / "h.cas").read_text().replace(
        "path: h", "path: hooks"))
    res = run_cas(repo, "checkout", "--force", "lnk/hooks.cas", check=False)
    assert "metadata folder" in one_error_line(res)
    assert not (hooks / "post-checkout").exists()
    # And add refuses a path that resolves into .git.
    line = one_error_line(run_cas(repo, "add", "lnk/config", check=False))
    assert "metadata" in line


def test_no_checkout_through_a_link_outside_the_work_tree(repo: Path, tmp_path: Path) -> None:
    text = _payload_pointer(repo)
    outside = tmp_path / "outside"
    outside.mkdir()
    (repo / "out").symlink_to(outside)
    (outside / "evil.cas").write_text(text.replace("path: payload", "path: evil"))
    res = run_cas(repo, "checkout", "out/evil.cas", check=False)
    assert "outside the repository" in one_error_line(res)
    assert sorted(os.listdir(outside)) == ["evil.cas"]


def test_unrelated_cas_file_and_casignore(repo: Path, tmp_path: Path) -> None:
    (repo / "model.bin").write_bytes(b"weights")
    run_cas(repo, "add", "model.bin")
    run_cas(repo, "remote", "add", "origin", str(tmp_path / "remote"), "--default")
    docs = repo / "docs"
    docs.mkdir()
    (docs / "algebra.cas").write_text("x^2 + 1 = 0\n")
    for cmd in (("status",), ("checkout",), ("ls",), ("gc",), ("push",)):
        line = one_error_line(run_cas(repo, *cmd, check=False))
        assert "docs/algebra.cas" in line and ".casignore" in line, (cmd, line)
    (repo / ".casignore").write_text("# computer-algebra sources, not pointers\ndocs/*.cas\n")
    for cmd in (("status",), ("checkout",), ("ls",), ("gc",), ("push",)):
        res = run_cas(repo, *cmd, check=False)
        assert res.returncode == 0, (cmd, res)
    assert [e["path"] for e in status(repo)] == ["model.bin"]
    # Git-style folder patterns work as well, and the file is left untouched.
    (repo / ".casignore").write_text("/docs/\n")
    assert run_cas(repo, "ls", check=False).returncode == 0
    assert (docs / "algebra.cas").read_text() == "x^2 + 1 = 0\n"
