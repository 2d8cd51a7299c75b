"""The store's id bookkeeping in arrays (IdSet, IdBuffer, WrittenIds, vectorised lookups):
same answers as Python sets, at 16 bytes per id. Small sizes; memory itself is measured by
the "many files" benchmark, not here."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest

from casstore.hashing import digest_bytes
from casstore.store.graph import Root, expand
from casstore.store.index import IdBuffer, IdSet, Index, ids_array, sort_order, split_ids
from casstore.store.local import LocalStore, WrittenIds
from casstore.store.objects import ObjectType
from casstore.store.packfile import ENTRY_DTYPE


def _ids(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(16) for _ in range(n)]


def _same_hi(n: int) -> list[bytes]:
    """Ids whose first halves tie (only a crafted store has them): the slow sort path."""
    hi = b"\x01" * 8
    return [hi + os.urandom(8) for _ in range(n)]


@pytest.mark.parametrize("make", [lambda: _ids(500, 1), lambda: _same_hi(50) + _ids(50, 2)])
def test_idset_matches_a_python_set(make: object) -> None:
    ids = make()  # type: ignore[operator]
    with_dups = ids + ids[: len(ids) // 3]
    random.Random(3).shuffle(with_dups)
    s = IdSet.of(with_dups)
    assert len(s) == len(set(ids))
    assert list(s) == sorted(set(ids))  # bytes order is the order of the ids as numbers
    assert all(x in s for x in ids)
    others = _ids(200, 4)
    assert not any(x in s for x in others)
    assert b"short" not in s
    probe = ids_array(ids[:10] + others[:10])
    assert s.contains_many(probe).tolist() == [True] * 10 + [False] * 10
    assert s == set(ids)
    assert s.array().tobytes() == b"".join(sorted(set(ids)))


def test_idset_union_and_difference() -> None:
    a, b = _ids(300, 5), _ids(300, 6)
    sa, sb = IdSet.of(a), IdSet.of(a[:100] + b)
    assert set(sa | sb) == set(a) | set(b)
    assert set(sa | b[:7]) == set(a) | set(b[:7])  # with a plain iterable of bytes
    assert set(sa.without(sb)) == set(a) - set(a[:100] + b)
    assert set(IdSet.union_of([IdSet.empty(), sa, IdSet.empty()])) == set(a)
    assert len(IdSet.empty()) == 0 and not IdSet.empty()


def test_sort_order_orders_ids_as_128_bit_numbers() -> None:
    ids = _same_hi(40) + _ids(40, 7) + _same_hi(3)
    hi, lo = split_ids(ids_array(ids))
    order = sort_order(hi, lo)
    assert [ids[i] for i in order] == sorted(ids)


def test_id_buffer_folds_duplicates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(IdBuffer, "FOLD", 16)  # fold often
    ids = _ids(100, 8)
    buf = IdBuffer()
    for _ in range(5):
        for x in ids:
            buf.add(x)
    buf.extend(ids_array(ids[:10]))
    assert list(buf.ids()) == sorted(set(ids))


def test_written_ids_fold_keeps_membership(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(WrittenIds, "FOLD", 8)
    w = WrittenIds()
    ids = _ids(100, 9)
    for x in ids:
        w.add(x)
    assert len(w.folded) > 0  # some were folded into the array
    assert all(x in w for x in ids)
    assert not any(x in w for x in _ids(50, 10))


def test_index_types_of_and_holds() -> None:
    ids = _ids(50, 11)
    ents = np.zeros(len(ids), ENTRY_DTYPE)
    ents["id"] = ids_array(ids)
    ents["type"] = [i % 3 for i in range(len(ids))]
    idx = Index(["p"], np.zeros(len(ids), np.uint32), ents)
    other = _ids(5, 12)
    types = idx.types_of(ids_array(ids + other))
    assert types[: len(ids)].tolist() == [i % 3 for i in range(len(ids))]
    assert types[len(ids):].tolist() == [-1] * 5
    ents2 = np.zeros(6, ENTRY_DTYPE)
    ents2["id"] = ids_array(ids[:3] + other[:3])
    small = Index(["q"], np.zeros(6, np.uint32), ents2)
    held = idx.holds(small)
    assert sorted(small.id_at(i) for i in np.nonzero(held)[0]) == sorted(ids[:3])
    assert idx.mask_of(IdSet.of(ids[:4])).sum() == 4
    assert idx.mask_of(set(ids[:4])).sum() == 4


def _store_with_files(root: Path, n: int) -> tuple[LocalStore, list[bytes]]:
    store = LocalStore(root, fsync=False)
    digests = []
    with store.writer() as w:
        for i in range(n):
            data = f"file {i}".encode() * 3
            d = digest_bytes(data)
            w.put(d, ObjectType.CHUNK, data)
            digests.append(d)
    return store, digests


def test_expand_returns_each_id_once(tmp_path: Path) -> None:
    store, digests = _store_with_files(tmp_path / "c", 40)
    lost = _ids(3, 13)
    # The same files named by several roots, and some the store lacks.
    roots = [Root(d, "file", 15, f"f{i}") for i, d in enumerate(digests)]
    roots += [Root(d, "file", 15, f"again{i}") for i, d in enumerate(digests[:10])]
    roots += [Root(d, "file", 1, f"lost{i}") for i, d in enumerate(lost)]
    missing: set[bytes] = set()
    need = expand(store, roots, missing=missing)
    assert isinstance(need, IdSet)
    assert list(need) == sorted(set(digests))
    assert missing == set(lost)


def test_expand_without_vectorised_lookup_gives_the_same(tmp_path: Path) -> None:
    store, digests = _store_with_files(tmp_path / "c", 20)

    class Plain:  # an ObjectSource with locate/read only
        def locate(self, oid: bytes):  # type: ignore[no-untyped-def]
            return store.locate(oid)

        def read(self, oid: bytes, *, verify: bool = True):  # type: ignore[no-untyped-def]
            return store.read(oid, verify=verify)

    roots = [Root(d, "file", 15, "x") for d in digests] + [Root(b"\x07" * 16, "file", 1, "y")]
    m1: set[bytes] = set()
    m2: set[bytes] = set()
    assert expand(Plain(), roots, missing=m1) == expand(store, roots, missing=m2)
    assert m1 == m2 == {b"\x07" * 16}


def test_index_merge_of_several_files_equals_one_index() -> None:
    """Merging builds the index column by column; the result is the same as one file."""
    ids = _ids(90, 14)
    ents = np.zeros(len(ids), ENTRY_DTYPE)
    ents["id"] = ids_array(ids)
    ents["type"] = [i % 3 for i in range(len(ids))]
    ents["offset"] = np.arange(len(ids)) * 10 + 8
    ents["length"] = ents["raw_length"] = 10
    packs = ["a" * 32, "b" * 32, "c" * 32]
    pack_of_row = np.array([i % 3 for i in range(len(ids))], np.uint32)
    whole = Index(packs, pack_of_row, ents)
    parts = [([packs[k]], np.zeros(int((pack_of_row == k).sum()), np.uint32),
              ents[pack_of_row == k]) for k in range(3)]
    merged = Index.merge(parts)
    assert len(merged) == len(whole)
    for oid in ids:
        assert merged.get(oid) == whole.get(oid)
    assert bool((merged.hi[1:] >= merged.hi[:-1]).all())


def test_writer_that_does_not_remember_still_writes_every_object(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "c", fsync=False)
    data = [os.urandom(100 + i) for i in range(50)]
    with store.writer(remember=False) as w:
        for d in data:
            w.put_stored(digest_bytes(d), ObjectType.CHUNK, 0, len(d), d)
        assert not any(digest_bytes(d) in w.written for d in data)
    store.invalidate()
    assert [store.read(digest_bytes(d))[1] for d in data] == data
