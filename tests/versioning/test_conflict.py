import pytest

from casstore.review.conflicts import (
    PointerConflictError,
    check_conflict,
    conflict_message,
    find_conflict_markers,
)

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
    check_conflict("cas: 1\npath: a\nmeta:\n  message: 'x ======= y <<<<<<<'\n", "a.cas")
    assert not find_conflict_markers("title\n=======\n")  # a lone separator is not a conflict


def test_error_is_one_clear_line():
    with pytest.raises(PointerConflictError) as e:
        check_conflict(CONFLICTED, "model.safetensors.cas")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg == conflict_message("model.safetensors.cas")
    assert msg.startswith("model.safetensors.cas has unresolved Git conflict markers")
    assert "git checkout --ours model.safetensors.cas" in msg
    assert "cas version model.safetensors --set VERSION" in msg
    assert msg.endswith("`git add model.safetensors.cas`")
    assert e.value.path == "model.safetensors.cas"


def test_diff3_and_crlf():
    text = "a\r\n<<<<<<< ours\r\nx\r\n||||||| base\r\ny\r\n=======\r\nz\r\n>>>>>>> theirs\r\n"
    m = find_conflict_markers(text)
    assert m.base == [4] and m.separators == [6] and m.theirs == [8]
