from datetime import date

import pytest

from casstore.review.schemes import InvalidVersionError, get_scheme


def record(scheme, n, **kw):
    history: list[str] = []
    for _ in range(n):
        history.append(scheme.next_version(history, **kw))
    return history


def test_semantic_three_versions_and_bumps():
    s = get_scheme("semantic")
    h = ["0.1.0"]
    h.append(s.next_version(h, bump="minor"))
    h.append(s.next_version(h, bump="patch"))
    h.append(s.next_version(h, bump="major"))
    assert h == ["0.1.0", "0.2.0", "0.2.1", "1.0.0"]
    assert s.next_version([]) == "0.1.0"
    assert s.next_version([], bump="major") == "1.0.0"


def test_semantic_next_is_from_max_not_order():
    s = get_scheme("semantic")
    # After a merge, history order is Git's, not numeric; 1.10.0 > 1.9.0.
    assert s.next_version(["1.10.0", "1.2.0", "1.9.0"], bump="minor") == "1.11.0"
    assert s.sorted(["1.10.0", "1.2.0", "junk", "1.9.0"]) == ["1.2.0", "1.9.0", "1.10.0"]


def test_semantic_explicit_validated():
    s = get_scheme("semantic")
    assert s.next_version(["1.2.0"], explicit="2.0.0") == "2.0.0"
    assert s.next_version(["1.2.0"], explicit="v2.0.0") == "2.0.0"
    with pytest.raises(InvalidVersionError, match="already exists"):
        s.next_version(["1.2.0"], explicit="1.2.0")
    with pytest.raises(InvalidVersionError, match="lower than the latest"):
        s.next_version(["1.2.0"], explicit="1.1.9")
    with pytest.raises(InvalidVersionError, match="MAJOR.MINOR.PATCH"):
        s.next_version([], explicit="1.2")
    with pytest.raises(InvalidVersionError, match="invalid bump"):
        s.next_version([], bump="huge")
    with pytest.raises(ValueError):  # the error is a ValueError for generic callers
        s.validate("01.2.3")


def test_calendar_three_versions_same_and_next_day():
    s = get_scheme("calendar")
    d = date(2024, 5, 31)
    assert record(s, 3, today=d) == ["2024.05.31", "2024.05.31.1", "2024.05.31.2"]
    assert s.next_version(["2024.05.31", "2024.05.31.1"], today=date(2024, 6, 1)) == "2024.06.01"
    assert s.sorted(["2024.05.31.10", "2024.05.31.2", "2024.05.31"]) == [
        "2024.05.31",
        "2024.05.31.2",
        "2024.05.31.10",
    ]


def test_calendar_never_goes_backwards():
    s = get_scheme("calendar")
    assert s.next_version(["2024.06.01"], today=date(2024, 5, 31)) == "2024.06.01.1"
    with pytest.raises(InvalidVersionError, match="lower than the latest"):
        s.next_version(["2024.06.01"], explicit="2024.05.01")


def test_calendar_errors():
    s = get_scheme("calendar")
    with pytest.raises(InvalidVersionError, match="today"):
        s.next_version([])
    with pytest.raises(InvalidVersionError, match="YYYY.MM.DD"):
        s.validate("2024.02.30")
    with pytest.raises(InvalidVersionError, match="does not take a bump"):
        s.next_version([], today=date(2024, 1, 1), bump="minor")


def test_sequential_three_versions():
    s = get_scheme("sequential")
    assert record(s, 3) == ["1", "2", "3"]
    assert s.next_version(["2", "10", "9"]) == "11"
    assert s.sorted(["10", "9", "1"]) == ["1", "9", "10"]
    with pytest.raises(InvalidVersionError, match="positive whole number"):
        s.validate("0")


def test_githash_three_versions():
    s = get_scheme("githash")
    h: list[str] = []
    for c in ("3f9c2ab1d0e", "a1b2c3d4e5f6", "0123456789abcdef"):
        h.append(s.next_version(h, commit=c))
    assert h == ["3f9c2ab", "a1b2c3d", "0123456"]
    with pytest.raises(InvalidVersionError, match="already exists"):
        s.next_version(h, commit="3f9c2ab1d0e")
    with pytest.raises(InvalidVersionError, match="needs the commit"):
        s.next_version(h)
    with pytest.raises(InvalidVersionError, match="hex digits"):
        s.validate("xyz")


def test_unknown_scheme():
    with pytest.raises(InvalidVersionError, match="unknown version scheme 'roman'"):
        get_scheme("roman")


@pytest.mark.parametrize("name", ["semantic", "calendar", "sequential", "githash"])
def test_messages_are_one_line(name):
    with pytest.raises(InvalidVersionError) as e:
        get_scheme(name).validate("not a version\nsecond")
    assert "\n" not in str(e.value).replace("\\n", "")
