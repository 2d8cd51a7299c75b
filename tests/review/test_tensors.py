import json
import struct

import numpy as np
import pytest
from safetensors.numpy import save_file

from casstore.review.tensors import (
    SafetensorsError,
    diff_tensors,
    parse_header,
    render_markdown,
    render_text,
    to_dict,
)


def reader(path, log=None):
    data = path.read_bytes()

    def read(offset, length):
        if log is not None:
            log.append((offset, length))
        return data[offset : offset + length]

    return read, len(data)


def header_of(path):
    read, size = reader(path)
    return parse_header(read, size), read


@pytest.fixture
def models(tmp_path):
    rng = np.random.default_rng(0)
    a = {
        "embed.weight": rng.standard_normal((64, 32)).astype(np.float32),
        "layer1.weight": rng.standard_normal((32, 32)).astype(np.float32),
        "layer1.bias": np.zeros(32, dtype=np.float16),
    }
    b = {k: v.copy() for k, v in a.items()}
    b["layer1.weight"][3, :5] += 1.0  # fine-tune a few weights of one layer
    b["head.weight"] = rng.standard_normal((10, 32)).astype(np.float32)
    pa, pb = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save_file(a, str(pa), metadata={"format": "np"})
    save_file(b, str(pb), metadata={"format": "np"})
    return a, b, pa, pb


def test_header_parsed(models):
    a, _, pa, _ = models
    h, _ = header_of(pa)
    assert list(h.tensors) == sorted(a)
    t = h.tensors["embed.weight"]
    assert (t.dtype, t.shape, t.nbytes) == ("F32", (64, 32), 64 * 32 * 4)
    assert h.metadata == {"format": "np"}
    assert h.data_start + h.data_size == pa.stat().st_size
    raw = pa.read_bytes()
    got = np.frombuffer(raw[t.offset : t.offset + t.nbytes], dtype=np.float32).reshape(64, 32)
    assert np.array_equal(got, a["embed.weight"])


def test_one_changed_one_added_reported_exactly(models):
    a, b, pa, pb = models
    log_a, log_b = [], []
    ra, size_a = reader(pa, log_a)
    rb, size_b = reader(pb, log_b)
    ha, hb = parse_header(ra, size_a), parse_header(rb, size_b)
    d = diff_tensors(ha, hb, ra, rb, block_size=1000)  # not a multiple of 4 on purpose

    assert [c.name for c in d.added] == ["head.weight"]
    assert d.added[0].new_shape == (10, 32) and d.added[0].new_nbytes == 1280
    assert d.removed == []
    assert [c.name for c in d.changed] == ["layer1.weight"]
    assert [c.name for c in d.unchanged] == ["embed.weight", "layer1.bias"]
    expected = int(
        np.count_nonzero(a["layer1.weight"].view(np.uint8) != b["layer1.weight"].view(np.uint8))
    )
    c = d.changed[0]
    assert 0 < c.bytes_changed == expected <= 5 * 4
    assert (c.old_dtype, c.old_shape, c.new_shape) == ("F32", (32, 32), (32, 32))
    assert c.old_xxh128 != c.new_xxh128 and len(c.old_xxh128) == 32
    assert d.bytes_changed == expected + 1280
    assert not d.metadata_changed and d.has_changes
    # Never more than one block per read after the header: no whole-file loads.
    assert max(n for _, n in log_a[2:] + log_b[2:]) <= 1000

    text = render_text(d)
    assert "  + head.weight  F32[10, 32]  1.2 KiB" in text
    assert f"  ~ layer1.weight  F32[32, 32]  {expected} B of 4.0 KiB changed" in text
    assert "1 added, 0 removed, 1 changed, 2 unchanged" in text
    md = render_markdown(d)
    assert "| `head.weight` | added | F32[10, 32] | 1.2 KiB |" in md
    assert "| `layer1.weight` | changed |" in md
    js = to_dict(d)
    assert json.loads(json.dumps(js)) == js
    assert js["changed"][0]["new_shape"] == [32, 32]


def test_reverse_diff_reports_removed(models):
    _, _, pa, pb = models
    hb, rb = header_of(pb)
    ha, ra = header_of(pa)
    d = diff_tensors(hb, ha, rb, ra)
    assert [c.name for c in d.removed] == ["head.weight"]


def test_identical_and_hint_skips_reads(models):
    _, _, pa, _ = models
    h, _ = header_of(pa)
    log = []
    read, _ = reader(pa, log)
    d = diff_tensors(h, h, read, read, ranges_equal=lambda oa, ob, n: True)
    assert not d.has_changes and len(d.unchanged) == 3 and log == []
    d = diff_tensors(h, h, read, read, ranges_equal=lambda oa, ob, n: None)
    assert not d.has_changes and all(c.bytes_changed == 0 for c in d.unchanged)


def test_shape_and_dtype_change(tmp_path):
    pa, pb = tmp_path / "a.st", tmp_path / "b.st"
    save_file({"w": np.ones((2, 3), np.float32), "v": np.ones(4, np.float32)}, str(pa))
    save_file({"w": np.ones((3, 2), np.float32), "v": np.ones(4, np.float64)}, str(pb))
    (ha, ra), (hb, rb) = header_of(pa), header_of(pb)
    d = diff_tensors(ha, hb, ra, rb)
    ch = {c.name: c for c in d.changed}
    assert ch["w"].bytes_changed == 0 and ch["w"].new_shape == (3, 2)  # same bytes, new shape
    assert ch["v"].new_dtype == "F64" and ch["v"].bytes_changed >= 16  # 16 bytes longer


def make(header, data=b"", raw_len=None):
    hb = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(hb) if raw_len is None else raw_len
    blob = struct.pack("<Q", n) + hb + data
    return (lambda o, n: blob[o : o + n]), len(blob)


GOOD = {"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}


@pytest.mark.parametrize(
    "header,data,raw_len,match",
    [
        (GOOD, b"\0" * 8, 200_000_000, "exceeds the 100000000-byte limit"),
        (GOOD, b"\0" * 8, 10_000, "runs past the end"),
        (b"", b"", 0, "header length is 0"),
        (b"{not json", b"", None, "not valid JSON"),
        (b"\xff\xfe", b"", None, "not UTF-8"),
        ([1, 2], b"", None, "must be a JSON object"),
        (
            {"t": {"dtype": "F33", "shape": [2], "data_offsets": [0, 8]}},
            b"\0" * 8,
            None,
            "unknown dtype 'F33'",
        ),
        (
            {"t": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}},
            b"\0" * 8,
            None,
            "non-negative integers",
        ),
        (
            {"t": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}},
            b"\0" * 8,
            None,
            "non-negative integers",
        ),
        (
            {"t": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}},
            b"\0" * 8,
            None,
            "0 <= begin <= end",
        ),
        (
            {"t": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}},
            b"\0" * 8,
            None,
            "needs 12",
        ),
        (
            {
                "t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "u": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            },
            b"\0" * 12,
            None,
            "overlaps",
        ),
        (
            {"t": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}},
            b"\0" * 12,
            None,
            "hole in the data region",
        ),
        (GOOD, b"\0" * 4, None, "tensors end at byte"),
        ({"__metadata__": {"a": 1}, **GOOD}, b"\0" * 8, None, "__metadata__"),
        ({"t": "x"}, b"", None, "must be an object"),
        (
            b'{"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "t": {}}',
            b"\0" * 8,
            None,
            "appears twice",
        ),
    ],
)
def test_malformed_headers_rejected(header, data, raw_len, match):
    read, size = make(header, data, raw_len)
    with pytest.raises(SafetensorsError, match=match) as e:
        parse_header(read, size)
    assert "\n" not in str(e.value)


def test_truncated_without_known_size():
    blob = struct.pack("<Q", 500) + b"{}"
    with pytest.raises(SafetensorsError, match="truncated"):
        parse_header(lambda o, n: blob[o : o + n])
    with pytest.raises(SafetensorsError, match="too small"):
        parse_header(lambda o, n: b"", 3)


def test_valid_handmade_with_empty_tensor():
    header = {"e": {"dtype": "BF16", "shape": [0, 4], "data_offsets": [0, 0]}, **GOOD}
    read, size = make(header, b"\0" * 8)
    h = parse_header(read, size)
    assert h.tensors["e"].nbytes == 0 and h.tensors["t"].nbytes == 8
