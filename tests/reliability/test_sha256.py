"""Optional SHA-256: recorded by `cas add --sha256` (or core.sha256) and verified on checkout
and pull, so a pointer whose XXH3 matches the cache but whose SHA-256 does not is refused."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

from conftest import git, run_cas, write_random

from casstore import Repo

from .helpers import MiB, snapshot, temp_leftovers


def _sha_of(pointer: Path) -> str:
    m = re.search(r"^sha256: ([0-9a-f]{64})$", pointer.read_text(), re.M)
    assert m, pointer.read_text()
    return m.group(1)


def _tamper(pointer: Path, new_sha: str) -> None:
    text = pointer.read_text()
    pointer.write_text(re.sub(r"^sha256: [0-9a-f]{64}$", f"sha256: {new_sha}", text,
                              flags=re.M))


def _one_error(res: object, name: str) -> str:
    assert res.returncode == 1 and "Traceback" not in res.stderr, res  # type: ignore[attr-defined]
    errors = [ln for ln in res.stderr.splitlines() if ln.strip()]  # type: ignore[attr-defined]
    assert len(errors) == 1 and name in errors[0] and "sha256" in errors[0], errors
    return errors[0]


def test_file_sha256_recorded_and_verified(repo: Path) -> None:
    data = write_random(repo / "model.bin", 2 * MiB, seed=1)
    run_cas(repo, "add", "--sha256", "model.bin")
    assert _sha_of(repo / "model.bin.cas") == hashlib.sha256(data).hexdigest()
    (repo / "model.bin").unlink()
    run_cas(repo, "checkout")
    assert (repo / "model.bin").read_bytes() == data


def test_crafted_file_pointer_with_wrong_sha256_is_refused(repo: Path) -> None:
    """The XXH3 digest names content in the cache; only the SHA-256 disagrees."""
    data = write_random(repo / "model.bin", 2 * MiB, seed=2)
    (repo / "other.txt").write_text("kept\n")
    run_cas(repo, "add", "--sha256", "model.bin", "other.txt")
    _tamper(repo / "model.bin.cas", hashlib.sha256(data + b"x").hexdigest())
    (repo / "model.bin").unlink()
    (repo / "other.txt").unlink()
    _one_error(run_cas(repo, "checkout", check=False), "model.bin")
    assert not (repo / "model.bin").exists()
    assert (repo / "other.txt").read_text() == "kept\n"
    assert temp_leftovers(repo) == []


def _make_dir(repo: Path) -> dict[str, bytes]:
    files = {f"d/{i}.bin": write_random(repo / "d" / f"{i}.bin", 50_000 + i, seed=i)
             for i in range(6)}
    files["d/sub/big.bin"] = write_random(repo / "d" / "sub" / "big.bin", 1 * MiB, seed=9)
    return files


def test_folder_sha256_recorded_and_verified(repo: Path) -> None:
    files = _make_dir(repo)
    with Repo(repo) as r:
        r.config.set("core.sha256", True)
        r.config.save(False)
    run_cas(repo, "add", "d")
    h = hashlib.sha256()
    for rel in sorted(files, key=lambda p: p.removeprefix("d/").encode()):
        h.update(f"{rel.removeprefix('d/')}\0{hashlib.sha256(files[rel]).hexdigest()}\n"
                 .encode())
    assert _sha_of(repo / "d.cas") == h.hexdigest()
    shutil.rmtree(repo / "d")
    run_cas(repo, "checkout")
    assert {k: (repo / k).read_bytes() for k in files} == files


def test_crafted_folder_pointer_with_wrong_sha256_is_refused(repo: Path) -> None:
    files = _make_dir(repo)
    run_cas(repo, "add", "--sha256", "d")
    _tamper(repo / "d.cas", "0" * 64)
    (repo / "d" / "2.bin").unlink()
    (repo / "d" / "extra.bin").write_bytes(files["d/1.bin"])  # in the cache, so removable
    before = snapshot(repo / "d")
    _one_error(run_cas(repo, "checkout", check=False), "d")
    assert snapshot(repo / "d") == before  # nothing restored, nothing removed
    shutil.rmtree(repo / "d")
    _one_error(run_cas(repo, "checkout", check=False), "d")
    assert not (repo / "d").exists() or snapshot(repo / "d") == {}


def test_pull_verifies_sha256(repo: Path, tmp_path: Path) -> None:
    data = write_random(repo / "model.bin", 2 * MiB, seed=3)
    files = _make_dir(repo)
    run_cas(repo, "add", "--sha256", "model.bin", "d")
    run_cas(repo, "remote", "add", "origin", str(tmp_path / "remote"), "--default")
    run_cas(repo, "push")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "data")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    # An untrusted contributor's change: same XXH3 digests, different SHA-256 values.
    _tamper(clone / "model.bin.cas", hashlib.sha256(b"evil").hexdigest())
    _tamper(clone / "d.cas", hashlib.sha256(b"evil").hexdigest())
    res = run_cas(clone, "pull", check=False)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    errors = [ln for ln in res.stderr.splitlines() if "error" in ln]
    assert any("model.bin" in e and "sha256" in e for e in errors), res.stderr
    assert any(re.search(r"\bd\b", e) and "sha256" in e for e in errors), res.stderr
    assert not (clone / "model.bin").exists() and not (clone / "d").exists()
    git(clone, "checkout", "--", "model.bin.cas", "d.cas")  # back to the trusted pointers
    run_cas(clone, "pull")
    assert (clone / "model.bin").read_bytes() == data
    assert {k: (clone / k).read_bytes() for k in files} == files
