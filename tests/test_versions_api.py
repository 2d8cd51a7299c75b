"""The versioning library without the CLI: Repo.version/log/compare/diff and their parts."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import CAS, git, git_env, write_random

from casstore.conflicts import split_conflict
from casstore.errors import CasError, ObjectMissingError, PointerError, UsageError
from casstore.pointer import Pointer
from casstore.reader import ContentReader
from casstore.repo import Repo
from casstore.review.content import file_changes
from casstore.store.local import LocalStore

WORKFLOW = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "pr-diff.yml"


@pytest.fixture
def api(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Repo:
    monkeypatch.chdir(repo)
    for k, v in git_env().items():
        monkeypatch.setenv(k, v)
    r = Repo(repo)
    yield r
    r.close()


def _commit(repo: Path, msg: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", msg)


def test_python_api_records_logs_and_compares(repo: Path, api: Repo) -> None:
    write_random(repo / "m.bin", 50_000, seed=1)
    api.add(["m.bin"])
    first = api.version("m.bin", bump="minor", metrics=["accuracy=0.9"])
    assert (first.version, first.previous, first.changed) == ("0.1.0", None, True)
    _commit(repo, "0.1.0")
    write_random(repo / "m.bin", 50_000, seed=2)
    api.add(["m.bin"])
    second = api.version("m.bin", metrics=["accuracy=0.95"])
    assert (second.version, second.previous) == ("0.1.1", "0.1.0")
    _commit(repo, "0.1.1")
    assert [e.version for e in api.log("m.bin")] == ["0.1.1", "0.1.0"]
    cmp = api.compare("m.bin@0.1.0", "m.bin@0.1.1")
    [acc] = cmp.meta.metrics
    assert acc.delta == pytest.approx(0.05) and acc.improved is True
    d = api.diff("HEAD~1", "HEAD")
    assert [(e.path, e.old_version, e.new_version) for e in d.entries] == [
        ("m.bin", "0.1.0", "0.1.1")]
    assert api.diff().entries == []


def test_errors_are_typed_and_one_line(repo: Path, api: Repo) -> None:
    write_random(repo / "m.bin", 1000, seed=3)
    with pytest.raises(CasError, match="not tracked"):
        api.version("m.bin")
    api.add(["m.bin"])
    with pytest.raises(UsageError, match="either --bump or --set"):
        api.version("m.bin", bump="minor", set_version="1.0.0")
    with pytest.raises(UsageError, match="invalid bump"):
        api.version("m.bin", bump="huge")
    with pytest.raises(UsageError, match="does not take a bump"):
        api.version("m.bin", bump="minor", scheme="sequential")
    (repo / "m.bin").write_bytes(b"changed")
    with pytest.raises(CasError, match="changed since it was added"):
        api.version("m.bin")


def test_githash_needs_the_content_committed(repo: Path, api: Repo) -> None:
    write_random(repo / "m.bin", 1000, seed=4)
    api.add(["m.bin"])
    with pytest.raises(UsageError, match="commit m.bin.cas first"):
        api.version("m.bin", scheme="githash")
    _commit(repo, "content")
    head = git(repo, "rev-parse", "HEAD").strip()
    res = api.version("m.bin", scheme="githash")
    assert res.version == head[:7]
    _commit(repo, "version")
    # Versioning the same content again keeps its name.
    assert api.version("m.bin", message="same weights").version == head[:7]


def test_split_conflict_gives_each_side_and_drops_the_diff3_base() -> None:
    text = ("cas: 1\n<<<<<<< HEAD\nsize: 1\n||||||| base\nsize: 0\n=======\nsize: 2\n"
            ">>>>>>> other\nkind: file\n")
    assert split_conflict(text) == ("cas: 1\nsize: 1\nkind: file\n",
                                    "cas: 1\nsize: 2\nkind: file\n")


def test_folder_changes_fall_back_to_inline_entries(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "empty")
    d = "0" * 32

    def folder(names: dict[str, str]) -> Pointer:
        return Pointer(path="x", kind="dir", size=0, digest=bytes(16), files=len(names),
                       entries=[{"path": n, "size": 5, "xxh128": h} for n, h in names.items()])

    fc = file_changes(store, folder({"a": d, "b": d, "c": d}),
                      folder({"a": d, "b": "1" * 32, "n": d, "sub/": d}))
    assert fc is not None and fc.source == "entries"
    assert (fc.added, fc.removed, fc.modified) == (["n"], ["c"], ["b"])
    no_list = Pointer(path="x", kind="dir", size=0, digest=bytes(16))
    assert file_changes(store, no_list, folder({})) is None


def test_content_reader_fetches_only_missing_chunks_of_the_range(repo: Path, api: Repo,
                                                                 tmp_path: Path) -> None:
    data = write_random(repo / "big.bin", 2_000_000, seed=5)
    api.add(["big.bin"])
    ptr = api.load_pointer(repo / "big.bin.cas")
    empty = LocalStore(tmp_path / "other")
    asked: list[list[bytes]] = []

    def fetch(ids: object) -> None:
        ids = list(ids)  # type: ignore[call-overload]
        asked.append(ids)
        with empty.writer() as w:
            for oid in ids:
                otype, raw = api.cache.read(oid, verify=False)
                w.put(oid, otype, raw)

    rd = ContentReader(empty, ptr.digest, ptr.size, fetch=fetch)
    assert asked == [[ptr.digest]]  # the recipe first
    assert rd.read_at(1_000_000, 10) == data[1_000_000:1_000_010]
    assert len(asked) == 2 and len(asked[1]) == 1
    with pytest.raises(ObjectMissingError):
        ContentReader(LocalStore(tmp_path / "none"), ptr.digest, ptr.size,
                      fetch=lambda ids: None)


def test_pointer_conflict_in_history_state_is_refused_cleanly(repo: Path, api: Repo) -> None:
    write_random(repo / "m.bin", 1000, seed=6)
    api.add(["m.bin"])
    p = repo / "m.bin.cas"
    p.write_text(p.read_text() + "<<<<<<< HEAD\nx: 1\n=======\nx: 2\n>>>>>>> b\n")
    with pytest.raises(PointerError, match="unresolved Git conflict markers"):
        api.log("m.bin")
    with pytest.raises(PointerError, match="unresolved Git conflict markers"):
        api.diff()


def test_pr_workflow_script_posts_the_markdown_diff(repo: Path, cas, tmp_path: Path) -> None:
    """Run the workflow's diff step as GitHub would, in a clone with no cache."""
    d = repo / "data"
    d.mkdir()
    (d / "a.txt").write_text("a")
    cas("add", "data")
    _commit(repo, "base")
    git(repo, "checkout", "-qb", "feature")
    (d / "b.txt").write_text("b")
    cas("add", "data")
    _commit(repo, "feature")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "-b", "feature", str(repo), str(clone))
    # The workflow runs casstore's own action, whose diff step is this script.
    assert "uses: ./" in WORKFLOW.read_text()
    script = WORKFLOW.parents[1] / "action" / "diff.sh"
    env = dict(git_env(), CAS_BASE_REF="main", CAS_FETCH="false",
               GITHUB_OUTPUT=str(tmp_path / "out"), GITHUB_STEP_SUMMARY=str(tmp_path / "sum"),
               PATH=os.path.dirname(CAS) + ":" + os.environ["PATH"])
    proc = subprocess.run(["bash", str(script)], cwd=clone, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    md = (clone / "cas-diff.md").read_text()
    assert md.startswith("<!-- cas-diff -->")
    assert ("| <code>data/</code> | modified (1 added, 0 removed, 0 modified "
            "(from the pointers' file lists))") in md
    assert "- added: <code>data/b.txt</code>" in md


def test_hostile_file_names_cannot_rewrite_the_pr_comment(tmp_path: Path) -> None:
    from casstore.ops.diff import DiffEntry, DiffResult
    from casstore.review.content import FileChanges
    from casstore.review.render import diff_markdown

    evil = "x`</details>\n# Approved | ok"
    e = DiffEntry(path="d", pointer="d.cas", status="modified", kind="dir", old_size=1,
                  new_size=2, files=FileChanges(added=[evil], source="entries"))
    md = diff_markdown(DiffResult(old="main", new="HEAD", old_commit=None, new_commit=None,
                                  entries=[e]))
    assert "\n# Approved" not in md and "</details>\n# " not in md
    assert "<code>d/x`&lt;/details&gt; # Approved &#124; ok</code>" in md
