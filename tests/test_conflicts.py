import pytest

from casstore.conflicts import (
    conflict_message,
    find_conflict_markers,
    marker_kind,
    split_conflict,
)
from casstore.errors import PointerError
from casstore.pointer import parse_pointer_text

CONFLICTED = """cas: 1
path: model.safetensors
kind: file
<<<<<<< HEAD
size: 100
meta:
  version: 1.3.0
=======
size: 120
meta:
  version: 1.3.0
>>>>>>> feature
"""


def test_detects_markers_with_line_numbers():
    m = find_conflict_markers(CONFLICTED)
    assert (m.ours, m.separators, m.theirs) == ([4], [8], [12])
    assert m


def test_clean_and_lookalikes_pass():
    clean = ("cas: 1\npath: a\nkind: file\nsize: 0\nxxh128: " + "ab" * 16
             + "\nmeta:\n  message: 'x ======= y <<<<<<<'\n")
    assert not find_conflict_markers(clean)
    assert parse_pointer_text(clean, "a.cas").meta == {"message": "x ======= y <<<<<<<"}
    assert not find_conflict_markers("title\n=======\n")  # a lone separator is not a conflict


def test_error_is_one_clear_line():
    with pytest.raises(PointerError) as e:
        parse_pointer_text(CONFLICTED, "model.safetensors.cas")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg == conflict_message("model.safetensors.cas")
    assert msg.startswith("model.safetensors.cas has unresolved Git conflict markers")
    assert "git checkout --ours model.safetensors.cas" in msg
    assert "cas version model.safetensors --set VERSION" in msg
    assert msg.endswith("`git add model.safetensors.cas`")


def test_diff3_and_crlf():
    text = "a\r\n<<<<<<< ours\r\nx\r\n||||||| base\r\ny\r\n=======\r\nz\r\n>>>>>>> theirs\r\n"
    m = find_conflict_markers(text)
    assert m.base == [4] and m.separators == [6] and m.theirs == [8]


def test_one_rule_for_finding_splitting_and_parsing():
    # Longer markers (Git's conflict-marker-size) count everywhere, the same way...
    text = "cas: 1\n<<<<<<<<< ours\nsize: 1\n=========\nsize: 2\n>>>>>>>>> theirs\n"
    assert find_conflict_markers(text)
    assert split_conflict(text) == ("cas: 1\nsize: 1\n", "cas: 1\nsize: 2\n")
    with pytest.raises(PointerError, match="unresolved Git conflict markers"):
        parse_pointer_text(text, "m.cas")
    # ...and a line that merely begins with marker characters counts nowhere.
    assert marker_kind("<<<<<<<x") is None and marker_kind(">>>>>>>>") == ">"
    assert marker_kind("=======\r\n") == "=" and marker_kind("||||||| base\n") == "|"
    assert split_conflict("a\n<<<<<<<x\n") == ("a\n<<<<<<<x\n", "a\n<<<<<<<x\n")
