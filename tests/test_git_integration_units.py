"""Pure parts of the Git integration: pointer summaries, tree and meta merges, hook blocks."""

from __future__ import annotations

from pathlib import Path

from casstore.githooks import BEGIN, END, install_hook, uninstall_hook
from casstore.ops.merge import merge_meta, merge_trees
from casstore.pointer import Pointer
from casstore.review.textconv import summarize
from casstore.tree import TreeEntry

D1 = bytes(range(16))
D2 = bytes(range(1, 17))
D3 = bytes(range(2, 18))


def test_summary_shows_size_digest_version_and_metrics() -> None:
    p = Pointer(path="model.pth", kind="file", size=3 * 1024 ** 3, digest=D1, chunks=7,
                meta={"version": "1.3.0", "metrics": {"accuracy": 0.93},
                      "params": {"lr": 0.001}, "owner": "ml"})
    text = summarize(p.dumps())
    assert "size: 3.0 GiB (3221225472 bytes)" in text
    assert f"xxh128: {D1.hex()}" in text
    assert "version: 1.3.0" in text
    assert "metrics:\n  accuracy: 0.93" in text
    assert "params:\n  lr: 0.001" in text
    assert "meta:\n  owner: ml" in text
    folder = Pointer(path="data", kind="dir", size=10, digest=D2, files=1,
                     entries=[{"path": "a.csv", "size": 10, "xxh128": D3.hex()}])
    assert f"  a.csv  10 B  {D3.hex()}" in summarize(folder.dumps())
    # Anything that is not a pointer is shown as it is.
    assert summarize("<<<<<<< ours\nx\n") == "<<<<<<< ours\nx\n"


def _f(path: str, digest: bytes, size: int = 1) -> TreeEntry:
    return TreeEntry(path, "f", size, digest)


def test_tree_merge_takes_each_sides_changes_and_names_real_conflicts() -> None:
    base = [_f("a", D1), _f("b", D1)]
    ours = [_f("a", D2), _f("b", D1), _f("new/x", D1)]
    theirs = [_f("a", D1), _f("c", D3), TreeEntry("empty", "d", 0, None)]
    merged, conflicts = merge_trees(base, ours, theirs, "data")
    assert not conflicts
    assert {(e.path, e.digest) for e in merged} == {("a", D2), ("new/x", D1), ("c", D3),
                                                     ("empty", None)}
    _, conflicts = merge_trees(base, [_f("a", D2), _f("b", D1)],
                               [_f("a", D3), _f("b", D1)], "data")
    assert conflicts == ["data/a: changed differently on both sides"]
    _, conflicts = merge_trees(base, [_f("b", D1)], [_f("a", D3), _f("b", D1)], "data")
    assert conflicts == ["data/a: deleted on our side and changed on the other"]
    # A file on one side where the other side made a folder of the same name.
    _, conflicts = merge_trees([], [_f("x", D1)], [_f("x/y", D2)], "data")
    assert len(conflicts) == 1 and "clash" in conflicts[0]
    # An empty folder that gains a file on the other side is simply no longer empty.
    merged, conflicts = merge_trees([TreeEntry("e", "d", 0, None)],
                                    [TreeEntry("e", "d", 0, None), _f("e/f", D1)],
                                    [TreeEntry("e", "d", 0, None)], "data")
    assert not conflicts and [e.path for e in merged] == ["e/f"]


def test_meta_merges_key_by_key() -> None:
    out, bad = merge_meta({"version": "1.0"}, {"version": "1.1"}, {"version": "1.0",
                                                                   "metrics": {"acc": 1}}, "m")
    assert out == {"version": "1.1", "metrics": {"acc": 1}} and not bad
    _, bad = merge_meta({"version": "1.0"}, {"version": "1.1"}, {"version": "2.0"}, "m.cas")
    assert len(bad) == 1 and "meta.version" in bad[0]


def test_hook_blocks_are_added_once_and_removed_exactly(tmp_path: Path) -> None:
    hook = tmp_path / "post-merge"
    user = "#!/bin/bash\nset -e\necho hi\n"
    hook.write_text(user)
    assert install_hook(tmp_path, "post-merge", "cas") is True
    install_hook(tmp_path, "post-merge", "cas2")
    text = hook.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1 and "cas2 hook post-merge" in text
    assert text.startswith("#!/bin/bash\n" + BEGIN)
    assert uninstall_hook(tmp_path, "post-merge")
    assert hook.read_text() == user
    assert not uninstall_hook(tmp_path, "post-merge")
    # A hook of our own only: removed entirely.
    assert install_hook(tmp_path, "post-checkout", "cas") is False
    assert uninstall_hook(tmp_path, "post-checkout")
    assert not (tmp_path / "post-checkout").exists()
