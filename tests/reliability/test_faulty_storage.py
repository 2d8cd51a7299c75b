"""Faulty local storage: a flipped bit in a pack, a damaged index, a full disk during add."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cas, write_random

from casstore import Repo
from casstore.store.indexfile import encode_index

from .helpers import MiB, assert_store_consistent, fsck, snapshot, temp_leftovers


def _pack(repo: Path) -> Path:
    packs = sorted((repo / ".cas" / "cache" / "packs").rglob("*.pack"))
    assert len(packs) == 1, packs
    return packs[0]


def _flip_bit(path: Path, offset: int, bit: int = 3) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([b ^ (1 << bit)]))


def _location(repo: Path, digest_hex: str) -> tuple[int, int]:
    with Repo(repo) as r:
        loc = r.cache.locate(bytes.fromhex(digest_hex))
        assert loc is not None
        return loc.offset, loc.length


def _digest(repo: Path, pointer: str) -> str:
    for line in (repo / pointer).read_text().splitlines():
        if line.startswith("xxh128: "):
            return line.split()[1]
    raise AssertionError(pointer)


@pytest.mark.parametrize("victim", ["small", "big"])
def test_one_flipped_bit_in_a_pack(repo: Path, victim: str) -> None:
    """fsck names the damaged object; checkout refuses that file and restores the others."""
    files = {"a.txt": b"alpha\n" * 1000, "b.txt": b"bravo\n" * 1000}
    for n, d in files.items():
        (repo / n).write_bytes(d)
    files["big.bin"] = write_random(repo / "big.bin", 3 * MiB, seed=5)
    run_cas(repo, "add", "--json", *files)
    target = "b.txt" if victim == "small" else "big.bin"
    if victim == "small":
        oid = _digest(repo, "b.txt.cas")  # a one-chunk file: its chunk id is its digest
    else:
        with Repo(repo) as r:
            from casstore.files import chunk_list

            chunks = chunk_list(r.cache, bytes.fromhex(_digest(repo, "big.bin.cas")), 3 * MiB)
            oid = chunks[len(chunks) // 2][0].hex()
    off, length = _location(repo, oid)
    _flip_bit(_pack(repo), off + length // 2)

    report = fsck(repo)
    assert report["rc"] == 1 and not report["ok"]
    assert any(oid in d and "corrupt" in d for d in report["damaged"]), report["damaged"]
    text = run_cas(repo, "fsck", check=False)
    assert f"damaged: chunk {oid}" in text.stderr and "Traceback" not in text.stderr

    for n in files:
        (repo / n).unlink()
    res = run_cas(repo, "checkout", check=False)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(errors) == 1 and target in errors[0] and "corrupt" in errors[0], errors
    assert not (repo / target).exists()  # no half-written or unverified file
    for n, d in files.items():
        if n != target:
            assert (repo / n).read_bytes() == d
    assert temp_leftovers(repo) == []


def test_damaged_index_entry_is_named_by_fsck(repo: Path) -> None:
    (repo / "a.txt").write_bytes(b"index damage\n" * 500)
    run_cas(repo, "add", "a.txt")
    oid = _digest(repo, "a.txt.cas")
    idx = next((repo / ".cas" / "cache" / "index").glob("*.idx"))
    pack = _pack(repo).name[:-5]
    with Repo(repo) as r:
        ents = r.cache.read_trailer(pack).copy()
    ents["offset"] += 1  # every entry now starts one byte late
    idx.write_bytes(encode_index([pack], np.zeros(len(ents), np.uint32), ents))
    report = fsck(repo)
    assert report["rc"] == 1 and any(oid in d and "index" in d for d in report["damaged"])
    # The documented recovery: move the index away and rebuild it from the packs' trailers.
    shutil.move(str(idx.parent), str(repo / "index.bad"))
    run_cas(repo, "fsck", "--repair")
    assert_store_consistent(repo)
    (repo / "a.txt").unlink()
    run_cas(repo, "checkout")
    assert (repo / "a.txt").read_bytes() == b"index damage\n" * 500


def _tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                         capture_output=True)
    return res.returncode == 0


def test_disk_full_during_add_on_tmpfs(repo: Path, tmp_path: Path) -> None:
    """A cache on an 8 MiB file system: adding 12 MiB fails with one clear line."""
    mnt = tmp_path / f"small-{uuid.uuid4().hex[:6]}"
    if not _tmpfs(mnt, "8m"):
        pytest.skip("cannot mount a tmpfs here (needs root); the injected-ENOSPC test covers it")
    try:
        with Repo(repo) as r:
            r.config.set("cache.dir", str(mnt / "cache"), local=True)
            r.config.save(True)
        small = write_random(repo / "small.bin", 1 * MiB, seed=1)
        run_cas(repo, "add", "small.bin")
        write_random(repo / "big.bin", 12 * MiB, seed=2)
        before = snapshot(repo, skip=(".git", ".cas"))
        res = run_cas(repo, "add", "big.bin", check=False)
        assert res.returncode == 1, res
        errors = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(errors) == 1 and "Traceback" not in res.stderr, res.stderr
        assert "no space left" in errors[0].lower(), errors[0]
        assert not (repo / "big.bin.cas").exists()  # no pointer to data that is not stored
        assert snapshot(repo, skip=(".git", ".cas")) == before
        report = assert_store_consistent(repo)
        assert not report["warnings"], report  # the failed pack's temp file was removed
        # The cache still serves what it had, and works again once space is freed.
        (repo / "small.bin").unlink()
        run_cas(repo, "checkout", "small.bin")
        assert (repo / "small.bin").read_bytes() == small
        (repo / "big.bin").unlink()
        write_random(repo / "big.bin", 2 * MiB, seed=3)
        run_cas(repo, "add", "big.bin")
        assert_store_consistent(repo)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_injected_enospc_during_add(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same promise without root: every pack write fails once 1 MiB is written."""
    from casstore.store import local

    write_random(repo / "ok.bin", 256 * 1024, seed=4)
    run_cas(repo, "add", "ok.bin")
    write_random(repo / "big.bin", 6 * MiB, seed=5)
    write_random(repo / "ds" / "x.bin", 3 * MiB, seed=6)
    real_open = open
    budget = {"left": 1 * MiB}

    class FullDisk:
        """A pack temp file on a disk that fills up after ``budget`` bytes."""

        def __init__(self, f: object) -> None:
            self.f = f

        def write(self, data: bytes) -> int:
            budget["left"] -= len(data)
            if budget["left"] < 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return self.f.write(data)  # type: ignore[attr-defined,no-any-return]

        def __getattr__(self, name: str) -> object:
            return getattr(self.f, name)

    def small_disk_open(path: object, mode: str = "r", *a: object, **kw: object) -> object:
        f = real_open(path, mode, *a, **kw)  # type: ignore[call-overload]
        return FullDisk(f) if "w" in mode and str(path).endswith(".pack.tmp") else f

    monkeypatch.setattr(local, "open", small_disk_open, raising=False)
    with Repo(repo) as r, pytest.raises(OSError) as info:
        r.add([repo / "big.bin", repo / "ds"])
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert not (repo / "big.bin.cas").exists() and not (repo / "ds.cas").exists()
    assert list((repo / ".cas" / "cache" / "tmp").iterdir()) == []
    report = assert_store_consistent(repo)
    assert not report["warnings"], report
    out = json.loads(run_cas(repo, "add", "--json", "big.bin", "ds").stdout)
    assert {i["path"] for i in out["items"]} == {"big.bin", "ds"}
    assert_store_consistent(repo)
