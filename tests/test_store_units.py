"""Unit tests for the store's building blocks: chunker, index, packs, recipes, trees."""

from __future__ import annotations

import io
import os
import resource
from pathlib import Path

import numpy as np
import pytest

from casstore.chunker import Chunker, ChunkParams
from casstore.errors import CorruptObjectError, PointerError
from casstore.hashing import digest_bytes, digest_file
from casstore.pointer import Pointer, parse_pointer_text
from casstore.recipe import decode_recipe, encode_recipe
from casstore.store.index import Index
from casstore.store.indexfile import decode_index, encode_index
from casstore.store.local import LocalStore
from casstore.store.objects import Codec, ObjectType
from casstore.store.packfile import ENTRY_DTYPE, decode_trailer
from casstore.tree import TreeEntry, decode_tree, encode_tree


def _chunks(chunker: Chunker, data: bytes) -> list[bytes]:
    """The chunks of ``data`` as add cuts them (``cut_blocks``, the path files.py takes)."""
    out = []
    for block, ends in chunker.cut_blocks(io.BytesIO(data)):
        out += [bytes(block[start:end]) for start, end in zip([0, *ends], ends, strict=False)]
    return out


def test_chunker_is_blockwise_exact_and_bounded() -> None:
    data = os.urandom(40 << 20)
    p = ChunkParams()
    chunks = _chunks(Chunker(p), data)
    assert b"".join(chunks) == data
    assert all(len(c) <= p.max for c in chunks)
    assert all(len(c) >= p.min for c in chunks[:-1])
    mean = len(data) / len(chunks)
    assert 0.7 * p.avg < mean < 1.5 * p.avg
    # Cut points resynchronise after an insertion: most chunks are shared.
    shifted = _chunks(Chunker(p), b"x" * 100 + data)
    assert len(set(chunks) & set(shifted)) > 0.95 * len(chunks)


def test_kept_blocks_stay_intact_until_given_back() -> None:
    """A consumer that keeps each block (as the pack writer does) sees the same chunks as one
    that copies them, and the chunker reuses a buffer only after it was given back."""
    data = os.urandom(30 << 20)
    chunker = Chunker()
    kept: list[tuple[memoryview, bytes, object]] = []
    seen: list[bytes] = []
    for block, _ends in chunker.cut_blocks(io.BytesIO(data)):
        seen.append(bytes(block))
        kept.append((block, seen[-1], chunker.keep()))
        if len(kept) > 2:  # give back with a lag, like a writer thread behind the reader
            view, copy, give_back = kept.pop(0)
            assert bytes(view) == copy  # untouched while kept
            give_back()  # type: ignore[operator]
    for view, copy, give_back in kept:
        assert bytes(view) == copy
        give_back()  # type: ignore[operator]
    assert b"".join(seen) == data
    assert chunker._made <= 4  # buffers were reused, not allocated per block


def test_background_writer_keeps_order_and_reports_write_errors() -> None:
    from casstore.writeback import BackgroundWriter

    out = io.BytesIO()
    with BackgroundWriter(out, 1024, count=2) as w:
        for i in range(50):  # many more writes than buffers: each is reused after writing
            buf = w.take(1024)
            buf[:1024] = bytes([i]) * 1024
            w.write(buf, 1000, pooled=True)
        w.write(b"tail", 4, pooled=False)
    got = out.getvalue()
    assert got == b"".join(bytes([i]) * 1000 for i in range(50)) + b"tail"

    class Full(io.BytesIO):
        def write(self, data: object) -> int:
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        with BackgroundWriter(Full(), 16) as w:
            w.write(b"x" * 16, 16, pooled=False)


def test_file_digest_is_streaming_xxh3_128(tmp_path: Path) -> None:
    import xxhash

    f = tmp_path / "f"
    f.write_bytes(os.urandom(9_000_001))
    assert digest_file(f).hex() == xxhash.xxh3_128_hexdigest(f.read_bytes())


def _entries(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = np.zeros(n, ENTRY_DTYPE)
    e["id"] = np.frombuffer(rng.integers(0, 256, n * 16, dtype=np.uint8).tobytes(), "V16")
    e["offset"] = np.arange(n) * 100 + 8
    e["length"] = 100
    e["raw_length"] = 100
    return e


def test_index_lookup_and_membership() -> None:
    e = _entries(1000)
    idx = Index(["a" * 32], np.zeros(1000, np.uint32), e)
    for i in (0, 17, 999):
        oid = e["id"][i].tobytes()
        loc = idx.get(oid)
        assert loc is not None and loc.offset == int(e["offset"][i])
    assert idx.get(b"\x00" * 16) is None
    q = np.concatenate([e["id"][:10], _entries(10, seed=9)["id"]])
    assert idx.contains_many(q).tolist() == [True] * 10 + [False] * 10


def test_index_of_5_million_entries_stays_under_100_bytes_each() -> None:
    n = 5_000_000
    e = _entries(n, seed=3)
    data = encode_index(["b" * 32], np.zeros(n, np.uint32), e)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    idx = Index.merge([decode_index(data)])
    per_entry = idx.nbytes() / n
    assert per_entry < 50, per_entry
    probe = e["id"][::50_000]
    assert idx.contains_many(probe).all()
    assert idx.get(e["id"][123_456].tobytes()).offset == int(e["offset"][123_456])
    del data, e
    # The peak during load includes the decoded copy; the steady state is the arrays above.
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert grown * 1024 / n < 400


def test_index_file_rejects_garbage() -> None:
    with pytest.raises(CorruptObjectError):
        decode_index(b"not arrow at all")
    e = _entries(3)
    data = encode_index(["c" * 32], np.array([0, 0, 1], np.uint32), e)
    with pytest.raises(CorruptObjectError):
        decode_index(data)  # row names a pack outside the list


def test_pack_roundtrip_trailer_and_bounds(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s", fsync=False)
    blobs = [os.urandom(1000 + i) for i in range(20)] + [b"a" * 50_000]
    with store.writer() as w:
        for b in blobs:
            w.put(digest_bytes(b), ObjectType.CHUNK, b, Codec.ZSTD)
        assert not w.put(digest_bytes(blobs[0]), ObjectType.CHUNK, blobs[0])
    (name,) = store.list_packs()
    # The trailer lists each object once, and each reads back (decompressed, verified).
    assert sorted(e["id"].tobytes() for e in store.read_trailer(name)) == \
        sorted({digest_bytes(b) for b in blobs})
    assert all(store.read(digest_bytes(b)) == (ObjectType.CHUNK, b) for b in blobs)
    # zstd kept only where it helps: the repetitive blob is stored small
    loc = store.locate(digest_bytes(blobs[-1]))
    assert loc is not None and loc.codec == Codec.ZSTD and loc.length < 1000
    raw = store.pack_path(name).read_bytes()
    with pytest.raises(CorruptObjectError):
        decode_trailer(raw[:-3], len(raw) - 3)
    bad = bytearray(raw)
    # Point the first entry's offset past the end of the pack.
    table_start = len(raw) - 16 - 34 * len(blobs)
    bad[table_start + 18:table_start + 26] = (len(raw) * 2).to_bytes(8, "little")
    with pytest.raises(CorruptObjectError):
        decode_trailer(bytes(bad), len(bad))


def test_recipe_roundtrip_and_validation() -> None:
    ids = [os.urandom(16) for _ in range(5)]
    data = encode_recipe(ids, [10, 20, 30, 40, 50])
    rows = decode_recipe(data, expect_size=150)
    assert [r["id"].tobytes() for r in rows] == ids
    with pytest.raises(CorruptObjectError):
        decode_recipe(data, expect_size=151)
    with pytest.raises(CorruptObjectError):
        decode_recipe(data[:-1])


@pytest.mark.parametrize("path", ["../x", "/abs", "a//b", "a/./b", "a/../../b", "a\nb", ""])
def test_tree_rejects_unsafe_paths(path: str) -> None:
    text = f"cas-tree 1\nf 1 {'0' * 32} {path}\n".encode()
    with pytest.raises(CorruptObjectError):
        decode_tree(text)


def test_tree_roundtrip_sorted_and_canonical() -> None:
    entries = [TreeEntry("b/c", "f", 3, b"\x01" * 16), TreeEntry("a", "x", 1, b"\x02" * 16),
               TreeEntry("e", "d", 0, None)]
    data = encode_tree(entries)
    assert decode_tree(data) == sorted(entries, key=lambda e: e.path)
    assert encode_tree(list(reversed(entries))) == data
    with pytest.raises(CorruptObjectError):
        decode_tree(b"cas-tree 1\nf 1 " + b"0" * 32 + b" a\nf 1 " + b"0" * 32 + b" a/b\n")


def test_pointer_roundtrip_and_rejections() -> None:
    p = Pointer(path="m.bin", kind="file", size=5, digest=b"\x11" * 16, chunks=1,
                meta={"version": "1.0.0", "metrics": {"acc": 0.9}})
    text = p.dumps()
    q = parse_pointer_text(text, "m.bin.cas")
    assert q.dumps() == text
    bad = [
        text.replace("path: m.bin", "path: ../m.bin"),
        text.replace("path: m.bin", "path: /etc/passwd"),
        text.replace("cas: 1", "cas: 99"),
        text.replace("size: 5", "size: -1"),
        text.replace("size: 5", "size: '5'"),
        text.replace("11" * 16, "11" * 15),
        "a: &x [1]\nb: *x\n",
        "- just a list\n",
        "cas: 1\npath: m.bin\n",
        "<<<<<<< HEAD\n" + text + "=======\n" + text + ">>>>>>> other\n",
    ]
    for t in bad:
        with pytest.raises(PointerError) as info:
            parse_pointer_text(t, "m.bin.cas")
        assert "m.bin.cas" in str(info.value) and "\n" not in str(info.value)
