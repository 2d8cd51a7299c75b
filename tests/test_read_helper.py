"""Big walks read every other folder in a helper process (workspace.ReadHelper): what they
find must be exactly what a walk on its own finds (digests, changes, refusals, warnings),
and a helper that fails must cost only its speed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from casstore import Repo, digests, workspace
from casstore.digests import WorkTree
from casstore.errors import PathError


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every walk starts its helper at once (not after 20,000 files, whatever the load);
    the folders it answered with a fingerprint are listed."""
    monkeypatch.setattr(digests, "HELPER_AFTER_FILES", 0)
    monkeypatch.setattr(digests, "_idle_core", lambda: True)  # the test machine is busy
    answered: list[str] = []
    original = workspace.ReadHelper.answer

    def answer(self: workspace.ReadHelper, path: str, rel: str) -> workspace.Folder | None:
        folder = original(self, path, rel)
        if folder is not None:
            answered.append(rel)
        return folder

    monkeypatch.setattr(workspace.ReadHelper, "answer", answer)
    return answered


def _tree(root: Path, folders: int = 12) -> None:
    for i in range(folders):
        for j in range(3):
            (root / f"d{i:02d}").mkdir(parents=True, exist_ok=True)
            (root / f"d{i:02d}" / f"f{j}.bin").write_bytes(os.urandom(100 + j))
        (root / f"d{i:02d}" / "sub" / "deeper").mkdir(parents=True)
        (root / f"d{i:02d}" / "sub" / "deeper" / "g.bin").write_bytes(bytes([i]) * 50)
    (root / "top.bin").write_bytes(b"top")


def _digest(r: Repo, path: Path, *, helper: bool) -> bytes:
    # trust=False: every folder's tree is computed from its files, none taken from the
    # stat cache's folder rows.
    return WorkTree(r, path, trust=lambda _d: False, helper=helper).build().digest


def test_a_walk_with_a_helper_finds_what_a_walk_alone_finds(repo: Path,
                                                           asked: list[str]) -> None:
    _tree(repo / "data")
    with Repo(repo) as r:
        added = r.add([repo / "data"]).items[0]
        assert len(asked) >= 6  # half of the 12 folders and their subfolders
        alone = _digest(r, repo / "data", helper=False)
        assert added.digest == alone.hex()
        asked.clear()
        assert _digest(r, repo / "data", helper=True) == alone
        assert asked
        # A walk served by the stat cache's folder rows, helped: the same digest.
        assert WorkTree(r, repo / "data").build().digest == alone
        assert r.status()[0].states == []


def test_changes_in_folders_the_helper_read_are_found(repo: Path, asked: list[str]) -> None:
    _tree(repo / "data")
    with Repo(repo) as r:
        r.add([repo / "data"])
        assert r.status()[0].states == []
        # An edit that keeps size and mtime, in every folder (some read by the helper).
        for i in range(12):
            target = repo / "data" / f"d{i:02d}" / "f1.bin"
            before = target.stat()
            target.write_bytes(b"\xee" * before.st_size)
            os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
        (repo / "data" / "d03" / "sub" / "new.bin").write_bytes(b"new")
        (repo / "data" / "d04" / "f2.bin").unlink()
        asked.clear()
        entry = r.status()[0]
        assert asked
        assert entry.states == ["modified"]
        assert entry.modified == [f"d{i:02d}/f1.bin" for i in range(12)]
        assert entry.added == ["d03/sub/new.bin"] and entry.removed == ["d04/f2.bin"]
        # The re-add records what status saw; the folder is clean again.
        r.add([repo / "data"])
        assert r.status()[0].states == []


@pytest.mark.parametrize("bad", [".git", "inner.cas", "link"])
def test_what_a_helper_meets_is_reported_by_the_walk(repo: Path, asked: list[str],
                                                     bad: str) -> None:
    """A '.git' folder, a pointer or a link in a folder handed to the helper is refused or
    warned about exactly as a walk alone does it."""
    _tree(repo / "data")
    where = repo / "data" / "d00"  # the first folder the helper is asked for
    if bad == ".git":
        (where / ".git").mkdir()
    elif bad == "inner.cas":
        (where / "inner.cas").write_text("not really a pointer\n")
    else:
        (where / "link").symlink_to(where / "f0.bin")
    with Repo(repo) as r:
        outcomes = []
        for helper in (False, True):
            warned: list[str] = []
            try:
                WorkTree(r, repo / "data", adding=True, helper=helper,
                         warn=warned.append).build()
                outcomes.append(("ok", warned))
            except PathError as exc:
                outcomes.append((str(exc), warned))
        assert outcomes[0] == outcomes[1]
        if bad == "link":
            assert outcomes[1][1] == ["skipped data/d00/link: a symbolic link (add with "
                                      "--follow-symlinks to store what it points to)"]
        else:
            assert outcomes[1][0] != "ok" and "data/d00" in outcomes[1][0]
        assert "d00" not in asked  # it came back unanswered and was read by the walk


@pytest.mark.parametrize("program", [
    "import sys; sys.exit(3)",  # ends at once
    "import sys; sys.stdin.readline(); print('nonsense', flush=True); sys.stdin.read()",
    "import sys; sys.stdin.readline(); print('{\"fp\": \"00\", \"dirs\": []}', flush=True)",
    "import sys; sys.stdin.readline(); print('null\\nnull', flush=True); sys.stdin.read()",
])
def test_a_failing_helper_costs_only_its_speed(repo: Path, asked: list[str],
                                               monkeypatch: pytest.MonkeyPatch,
                                               program: str) -> None:
    _tree(repo / "data")
    with Repo(repo) as r:
        alone = _digest(r, repo / "data", helper=False)
        monkeypatch.setattr(workspace, "_HELPER_CODE", program)
        monkeypatch.setattr(workspace, "HELPER_PATIENCE", 0.5)  # one stops answering
        helpers: list[workspace.ReadHelper] = []
        original = workspace.ReadHelper.__init__

        def init(self: workspace.ReadHelper, *args: object) -> None:
            original(self, *args)  # type: ignore[arg-type]
            helpers.append(self)

        monkeypatch.setattr(workspace.ReadHelper, "__init__", init)
        assert _digest(r, repo / "data", helper=True) == alone
        assert WorkTree(r, repo / "data").build().digest == alone
        assert helpers and all(h.proc is None for h in helpers)  # ended and waited for
        assert not asked


def test_the_helper_is_ended_after_a_walk_that_fails(repo: Path, asked: list[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(repo / "data")
    (repo / "data" / "d11" / ".git").mkdir()  # read by the walk itself, after the helper starts
    helpers: list[workspace.ReadHelper] = []
    original = workspace.ReadHelper.__init__

    def init(self: workspace.ReadHelper, *args: object) -> None:
        original(self, *args)  # type: ignore[arg-type]
        helpers.append(self)

    monkeypatch.setattr(workspace.ReadHelper, "__init__", init)
    with Repo(repo) as r, pytest.raises(PathError, match="'.git' folder"):
        WorkTree(r, repo / "data", adding=True).build()
    assert helpers and all(h.proc is None for h in helpers)


def test_no_helper_on_a_busy_machine(repo: Path, asked: list[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(repo / "data")
    monkeypatch.setattr(digests, "_idle_core", lambda: False)
    started: list[object] = []
    monkeypatch.setattr(digests, "ReadHelper", lambda *a: started.append(a))
    with Repo(repo) as r:
        assert WorkTree(r, repo / "data").build().digest == _digest(r, repo / "data",
                                                                     helper=False)
    assert not started
