"""Hostile or damaged remotes cost a fixed amount of memory and fail fast with one line.

Each case crafts a remote in a local folder with the real formats (packs, Arrow index
files, zstd frames that truly expand to what they declare) and runs `cas pull` against it
in a subprocess whose peak memory is measured (getrusage of the child). The bounds asserted
are generous (the measured figures are in docs/security.md): the point is that a remote of
a few kilobytes can no longer cost gigabytes, nor an unreachable endpoint many seconds.
"""

from __future__ import annotations

import json
import struct
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import CAS, git_env, init_repo, run_cas

from casstore.errors import CorruptObjectError, RemoteError
from casstore.hashing import digest_bytes
from casstore.recipe import HEAD, MAGIC, ROW
from casstore.remote import fs as rfs
from casstore.remote.config import RemoteSpec
from casstore.store.indexfile import encode_index
from casstore.store.objects import Codec, ObjectType
from casstore.store.packfile import ENTRY_DTYPE, encode_trailer, pack_name
from casstore.tree import HEADER

MiB = 1 << 20
RSS_BOUND = 600 * MiB  # generous: the measured peaks are ~100 MB (docs/security.md)


def rle_zstd_frame(size: int) -> bytes:
    """A valid zstd frame of ``size`` zero bytes in RLE blocks: ~4 bytes per 128 KiB, and
    its header declares ``size``, so it passes the declared-size check and really expands."""
    out = bytearray(struct.pack("<IB", 0xFD2FB528, 0xE0) + struct.pack("<Q", size))
    left = size
    while left:
        k = min(left, 128 << 10)
        left -= k
        out += ((k << 3) | (1 << 1) | (0 if left else 1)).to_bytes(3, "little") + b"\0"
    return bytes(out)


class HostileRemote:
    """A remote in a local folder, written object by object with the real formats."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def pack(self, objects: list[tuple[bytes, int, int, int, bytes]],
             index_entries: np.ndarray | None = None) -> str:
        """Write a pack of (id, type, codec, raw_length, stored) and its index file (by
        default the pack's own entries; ``index_entries`` to lie about them)."""
        body = bytearray(b"CASPACK1")
        ents = np.zeros(len(objects), ENTRY_DTYPE)
        for k, (oid, otype, codec, raw_length, stored) in enumerate(objects):
            ents[k] = (np.frombuffer(oid, "V16")[0], otype, codec, raw_length, len(body),
                       len(stored))
            body += stored
        name = pack_name(ents)
        path = self.root / "packs" / name[:2] / f"{name}.pack"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes(body) + encode_trailer(ents))
        idx = ents if index_entries is None else index_entries
        self.index_file(name, encode_index([name], np.zeros(len(idx), np.uint32), idx))
        return name

    def index_file(self, name: str, data: bytes) -> None:
        (self.root / "index").mkdir(parents=True, exist_ok=True)
        (self.root / "index" / f"{name}.idx").write_bytes(data)


def make_repo(tmp_path: Path) -> tuple[Path, HostileRemote]:
    root = init_repo(tmp_path / "repo")
    run_cas(root, "remote", "add", "origin", str(tmp_path / "remote"), "--default")
    (tmp_path / "remote").mkdir()
    return root, HostileRemote(tmp_path / "remote")


def pointer(repo: Path, name: str, **fields: object) -> None:
    d = {"cas": 1, "path": name, **fields}
    (repo / f"{name}.cas").write_text(yaml.safe_dump(d, sort_keys=False))


def recipe_bytes(ids: list[bytes], lengths: list[int]) -> bytes:
    rows = np.empty(len(ids), ROW)
    rows["id"] = np.frombuffer(b"".join(ids), "V16")
    rows["length"] = lengths
    return HEAD.pack(MAGIC, len(ids)) + rows.tobytes()


def measured(repo: Path, *args: str, timeout: float = 120) -> tuple[int, list[str], int, float]:
    """Run `cas ARGS`: (exit code, non-empty stderr lines, peak RSS in bytes of this child,
    seconds). Each run forks a fresh child: RUSAGE_CHILDREN's maximum covers every child
    so far, so the child measures itself and reports through a pipe."""
    code = ("import resource, subprocess, sys, json\n"
            "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
            "r = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
            "print(json.dumps([p.returncode, p.stderr, r * 1024]))\n")
    t0 = time.monotonic()
    out = subprocess.run(["python3", "-c", code, CAS, *args], cwd=repo, capture_output=True,
                         text=True, env=git_env(), timeout=timeout, check=True).stdout
    seconds = time.monotonic() - t0
    rc, stderr, rss = json.loads(out)
    assert "Traceback" not in stderr, stderr
    return rc, [ln for ln in stderr.splitlines() if ln.strip()], rss, seconds


def assert_one_line(lines: list[str], *names: str) -> None:
    """Exactly one error line (progress notes may precede it), naming each of ``names``."""
    errors = [ln for ln in lines if ln.startswith("cas: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], lines
    for n in names:
        assert n in errors[0], (n, errors[0])


def test_rss_probe_is_per_command() -> None:
    """The probe reports the child's own peak (a tiny command stays small)."""
    rc, _, rss, _ = measured(Path.cwd(), "--help")
    assert rc == 0 and rss < 200 * MiB


# --- chunks that expand to what they declare -----------------------------------------------
def test_zstd_bomb_chunks_are_refused_before_decompression(tmp_path: Path) -> None:
    """Issue 12: 8 chunks whose real zstd frames expand to 512 MiB each (a 16 KB remote)
    made `cas pull` allocate 8 x 512 MiB at once. A chunk may not claim more than
    chunking.max: refused from the index entry, before a byte is read."""
    repo, remote = make_repo(tmp_path)
    big = 512 * MiB
    frame = rle_zstd_frame(big)
    chunk_ids = [digest_bytes(f"chunk {k}".encode()) for k in range(8)]
    lengths = [200_000] * 8  # what the recipe claims: plausible chunks
    fake_file = digest_bytes(b"the file")
    recipe = recipe_bytes(chunk_ids, lengths)
    remote.pack([(fake_file, ObjectType.RECIPE, Codec.NONE, len(recipe), recipe)]
                + [(c, ObjectType.CHUNK, Codec.ZSTD, big, frame) for c in chunk_ids])
    pointer(repo, "model.bin", kind="file", size=sum(lengths), xxh128=fake_file.hex(),
            chunks=8)
    rc, lines, rss, _ = measured(repo, "pull", "-j", "256")
    assert rc == 1
    assert_one_line(lines, "remote 'origin'", chunk_ids[0].hex(),
                    "fsck --remote", "chunking.max")
    assert rss < RSS_BOUND, rss
    assert not (repo / "model.bin").exists()


def test_chunk_over_max_in_a_real_frame_is_refused_with_small_chunking(tmp_path: Path
                                                                       ) -> None:
    """The bound is the repository's own chunking.max, passed down from its config: with
    max 64 KiB a 1 MiB chunk is refused, although the widest format bound would allow it."""
    repo, remote = make_repo(tmp_path)
    cfg = repo / ".cas" / "config.yaml"
    data = yaml.safe_load(cfg.read_text())
    data["chunking"].update({"min": 4096, "avg": 16384, "max": 65536})
    cfg.write_text(yaml.safe_dump(data))
    raw = bytes(MiB)
    oid = digest_bytes(raw)
    remote.pack([(oid, ObjectType.CHUNK, Codec.ZSTD, len(raw), rle_zstd_frame(len(raw)))])
    pointer(repo, "one.bin", kind="file", size=len(raw), xxh128=oid.hex(), chunks=1)
    rc, lines, _, _ = measured(repo, "pull")
    assert rc == 1
    assert_one_line(lines, "remote 'origin'", oid.hex(), "65536", "fsck --remote")


# --- index files ---------------------------------------------------------------------------
def compressed_index(name: str, rows: int) -> bytes:
    """An Arrow index file of ``rows`` zero rows with zstd-compressed buffers (~48 KB for
    40 million rows): valid Arrow, the right schema and metadata, named for its pack."""
    import pyarrow as pa

    def col(dtype: type) -> pa.Array:
        arr = np.zeros(rows, dtype)
        return pa.Array.from_buffers(pa.from_numpy_dtype(dtype), rows, [None, pa.py_buffer(arr)])

    ids = pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), rows,
                                               [None, pa.py_buffer(np.zeros(rows * 16, np.uint8))])
    table = pa.table({"id": ids, "pack": col(np.uint32), "type": col(np.uint8),
                      "codec": col(np.uint8), "raw_length": col(np.uint32),
                      "offset": col(np.uint64), "length": col(np.uint32)})
    table = table.replace_schema_metadata({"format": "cas-index-1", "packs": json.dumps([name])})
    sink = pa.BufferOutputStream()
    opts = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_file(sink, table.schema, options=opts) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


def test_index_bomb_is_refused_and_not_cached(tmp_path: Path) -> None:
    """Issue 12: a 48 KB index with compressed buffers and 40 M rows reached 8.6 GB RSS and
    28 s, and was then kept in the local index cache. Now refused from its metadata."""
    repo, remote = make_repo(tmp_path)
    name = "ab" * 16
    data = compressed_index(name, 4_000_000)  # 10x fewer than the issue's: the test is fast
    assert len(data) < 100_000
    remote.index_file(name, data)
    pointer(repo, "x.bin", kind="file", size=10, xxh128="00" * 16, chunks=1)
    rc, lines, rss, _ = measured(repo, "pull")
    assert rc == 1
    assert_one_line(lines, "remote 'origin'", name, "fsck --remote")
    assert rss < RSS_BOUND, rss
    cached = list((repo / ".cas" / "cache" / "remotes").rglob("*.idx"))
    assert cached == [], cached


def test_index_rows_beyond_their_bytes_are_refused() -> None:
    """An uncompressed index may not claim more rows than its bytes can hold (checked
    from the metadata: a file whose batches are uncompressed but whose length is a lie
    must not be read). And a row whose stored size exceeds its decoded size, or that
    points into the pack header, is not a row of any pack."""
    from casstore.store.indexfile import ROW_BYTES, check_rows

    ents = np.zeros(3, ENTRY_DTYPE)
    ents["offset"] = 8
    ents["raw_length"] = ents["length"] = 10
    check_rows(ents, np.zeros(3, np.uint32), 1)
    bad = ents.copy()
    bad["codec"], bad["length"] = 1, 11
    with pytest.raises(ValueError):
        check_rows(bad, np.zeros(3, np.uint32), 1)
    bad = ents.copy()
    bad["offset"] = 0
    with pytest.raises(ValueError):
        check_rows(bad, np.zeros(3, np.uint32), 1)
    assert ROW_BYTES == sum(ENTRY_DTYPE[c].itemsize for c in ENTRY_DTYPE.names) + 4


def test_remote_index_with_impossible_rows_is_not_cached(tmp_path: Path) -> None:
    """A remote index whose rows no pack can have is refused with one line and never kept
    in remotes/<hash>/index (it would cost every later command again)."""
    repo, remote = make_repo(tmp_path)
    raw = b"x" * 100
    oid = digest_bytes(raw)
    ents = np.zeros(1, ENTRY_DTYPE)
    ents[0] = (np.frombuffer(oid, "V16")[0], 0, 1, 10, 8, 100)  # zstd larger than raw
    remote.pack([(oid, ObjectType.CHUNK, Codec.NONE, 100, raw)], index_entries=ents)
    pointer(repo, "x.bin", kind="file", size=100, xxh128=oid.hex(), chunks=1)
    rc, lines, _, _ = measured(repo, "pull")
    assert rc == 1
    assert_one_line(lines, "remote 'origin'", "fsck --remote")
    assert list((repo / ".cas" / "cache" / "remotes").rglob("*.idx")) == []


# --- recipes and trees ---------------------------------------------------------------------
def test_recipe_bomb_is_refused_before_its_rows_are_read(tmp_path: Path) -> None:
    """Issue 12: a recipe of a few KB decoding to 5 M rows cost ~17 s of CPU. A file of S
    bytes has at most S // chunking.min + 1 chunks: the recipe's declared size is refused
    from its index entry."""
    import pyarrow as pa

    repo, remote = make_repo(tmp_path)
    rows = 5_000_000
    cid = digest_bytes(b"one chunk")
    raw = HEAD.pack(MAGIC, rows) + (cid + struct.pack("<I", 1)) * rows
    stored = pa.compress(raw, codec="zstd", asbytes=True)
    assert len(stored) < 50_000
    fid = digest_bytes(b"file")
    remote.pack([(fid, ObjectType.RECIPE, Codec.ZSTD, len(raw), stored)])
    pointer(repo, "r.bin", kind="file", size=rows, xxh128=fid.hex(), chunks=rows)
    rc, lines, rss, seconds = measured(repo, "pull")
    assert rc == 1
    assert_one_line(lines, "remote 'origin'", fid.hex(), "fsck --remote")
    assert rss < RSS_BOUND, rss


def test_recipe_within_size_but_with_too_many_rows_is_refused(tmp_path: Path) -> None:
    """Rows are bounded by the file's size even when the recipe's bytes pass: 1,000 rows of
    64 bytes rebuild a 64,000-byte file only if chunks can be that small (min 16 KiB)."""
    repo, remote = make_repo(tmp_path)
    ids = [digest_bytes(b"%d" % k) for k in range(1000)]
    raw = recipe_bytes(ids, [64] * 1000)
    fid = digest_bytes(b"file2")
    # Claim a file size whose recipe bound admits the bytes, yet not the rows' lengths.
    remote.pack([(fid, ObjectType.RECIPE, Codec.NONE, len(raw), raw)])
    pointer(repo, "r.bin", kind="file", size=64_000, xxh128=fid.hex(), chunks=1000)
    rc, lines, _, _ = measured(repo, "pull")
    assert rc == 1
    assert_one_line(lines, "remote 'origin'", fid.hex(), "fsck --remote")


def test_hostile_tree_names_the_pointer_and_the_remote(tmp_path: Path) -> None:
    """A tree that hashes to its pointer's digest (both crafted, say in a pull request) but
    holds an unsafe path: the error names the pointer and the remote."""
    repo, remote = make_repo(tmp_path)
    tree = HEADER + b"f 3 " + b"00" * 16 + b" ../escape\n"
    tid = digest_bytes(tree)
    remote.pack([(tid, ObjectType.TREE, Codec.NONE, len(tree), tree)])
    pointer(repo, "data", kind="dir", size=3, xxh128=tid.hex(), files=1)
    rc, lines, _, _ = measured(repo, "pull")
    assert rc == 1
    assert_one_line(lines, "data", "remote 'origin'", "fsck --remote")


def test_tree_over_the_cap_is_refused_unread(tmp_path: Path) -> None:
    """A tree may not claim more than the tree cap (a folder of ~700,000 entries)."""
    from casstore.store.limits import TREE_MAX

    repo, remote = make_repo(tmp_path)
    tid = digest_bytes(b"a tree")
    remote.pack([(tid, ObjectType.TREE, Codec.ZSTD, TREE_MAX + 1,
                  rle_zstd_frame(TREE_MAX + 1))])
    pointer(repo, "data", kind="dir", size=3, xxh128=tid.hex(), files=1)
    rc, lines, _, _ = measured(repo, "pull")
    assert rc == 1
    assert_one_line(lines, "remote 'origin'", tid.hex(), "fsck --remote")


# --- bytes in flight across threads --------------------------------------------------------
def test_download_threads_share_one_byte_budget(tmp_path: Path) -> None:
    """-j 256 must not multiply span reads: items start only while the bytes held (started
    and not yet consumed) fit the budget, however many threads there are."""
    from casstore.remote.store import RemoteStore

    remote = rfs.open_remote(RemoteSpec("origin", str(tmp_path / "r"), {}), tmp_path)
    rs = RemoteStore(remote, tmp_path / "cache", jobs=256)
    lock = threading.Lock()
    live = 0
    peak = 0

    def work(i: int) -> int:
        nonlocal live, peak
        with lock:
            live += 1
            peak = max(peak, live)
        time.sleep(0.002)
        return i

    got = []
    for i in rs.map(work, range(200), weight=lambda i: 10 * MiB, budget=64 * MiB):
        got.append(i)
        with lock:
            live -= 1
    assert sorted(got) == list(range(200))
    assert peak <= 6, peak  # 64 MiB / 10 MiB


def test_pull_with_many_threads_stays_within_budget(tmp_path: Path) -> None:
    """A real pull at -j 256 of ~190 MB of incompressible data held in 8 MiB spans: peak
    memory stays bounded by the in-flight budget, not by 256 x 8 MiB."""
    repo, remote = make_repo(tmp_path)
    rng = np.random.default_rng(7)
    chunk = 200_000
    n = 960  # ~192 MB in 3 packs
    ids, objects = [], []
    for _k in range(n):
        raw = rng.integers(0, 256, chunk, dtype=np.uint8).tobytes()
        oid = digest_bytes(raw)
        ids.append(oid)
        objects.append((oid, ObjectType.CHUNK, Codec.NONE, chunk, raw))
        if len(objects) == 320:
            remote.pack(objects)
            objects = []
    # The file's digest: the chunks' bytes are regenerated in the same order.
    import xxhash

    h = xxhash.xxh3_128()
    rng = np.random.default_rng(7)
    for _ in range(n):
        h.update(rng.integers(0, 256, chunk, dtype=np.uint8).tobytes())
    fid = h.digest()
    recipe = recipe_bytes(ids, [chunk] * n)
    remote.pack([(fid, ObjectType.RECIPE, Codec.NONE, len(recipe), recipe)])
    pointer(repo, "big.bin", kind="file", size=n * chunk, xxh128=fid.hex(), chunks=n)
    rc, lines, rss, _ = measured(repo, "fetch", "-j", "256", timeout=300)
    assert rc == 0, lines
    assert rss < 400 * MiB, rss


# --- failing fast --------------------------------------------------------------------------
def test_index_pointing_past_the_pack_end_fails_at_once(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12: ~7 s of retries before the clean error. A range beyond the end of a file
    is damage, not a transient fault: no retry (no backoff sleep), one error naming the
    pack and `cas fsck --remote`."""
    from casstore import Repo

    repo, remote = make_repo(tmp_path)
    raw = b"y" * 5000
    oid = digest_bytes(raw)
    ents = np.zeros(1, ENTRY_DTYPE)
    ents[0] = (np.frombuffer(oid, "V16")[0], 0, 0, 5000, 1 << 30, 5000)
    name = remote.pack([(oid, ObjectType.CHUNK, Codec.NONE, 5000, raw)], index_entries=ents)
    pointer(repo, "y.bin", kind="file", size=5000, xxh128=oid.hex(), chunks=1)
    # Every failed attempt of a remote call is classified (to decide on a retry): count
    # them, rather than time.sleep, which other threads of the process use too.
    failed: list[str] = []
    real = rfs.classify
    monkeypatch.setattr(rfs, "classify", lambda exc: failed.append(repr(exc)) or real(exc))
    with Repo(repo) as r, pytest.raises(CorruptObjectError) as err:
        r.fetch()
    msg = str(err.value)
    assert "\n" not in msg and name in msg and "fsck --remote" in msg and "origin" in msg
    assert failed == []
    # And from the command line: one line, exit 1.
    rc, lines, _, _ = measured(repo, "pull")
    assert rc == 1
    assert_one_line(lines, name, "fsck --remote")


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:1", "http://nonexistent.invalid"])
def test_unreachable_endpoint_fails_on_the_first_attempt(tmp_path: Path, endpoint: str,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """Connection refused and an unknown host took 11-16 s of silent retries (botocore's
    5 attempts with backoff). Not faults a retry fixes: one request, one line."""
    pytest.importorskip("s3fs")
    spec = RemoteSpec("origin", "s3://bucket/p", {"endpoint_url": endpoint, "key": "k",
                                                   "secret": "s"})
    remote = rfs.open_remote(spec, tmp_path)
    sent: list[str] = []
    remote.fs.s3.meta.events.register("before-send.s3", lambda **kw: sent.append("x"))
    failed: list[str] = []
    real = rfs.classify
    monkeypatch.setattr(rfs, "classify", lambda exc: failed.append(repr(exc)) or real(exc))
    with pytest.raises(RemoteError) as err:
        rfs.FsspecBackend(remote).list("index")
    assert len(sent) == 1, sent
    assert len(failed) == 1 and real(Exception(failed[0])) == "fatal", failed
    assert "\n" not in str(err.value) and "origin" in str(err.value)


def test_unreachable_endpoint_from_the_command_line(tmp_path: Path) -> None:
    pytest.importorskip("s3fs")
    repo, _ = make_repo(tmp_path)
    run_cas(repo, "remote", "add", "s3", "s3://bucket/p")
    run_cas(repo, "remote", "modify", "s3", "endpoint_url", "http://127.0.0.1:1", "--local")
    (repo / "f.bin").write_bytes(b"z" * 1000)
    run_cas(repo, "add", "f.bin")
    env = git_env()
    env.update({"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"})
    # That a refused connection is tried once, not in rounds of retries, is counted in
    # process by the test above; here the command's answer is checked (the timeout only
    # guards against a hang, it is not a speed check).
    res = subprocess.run([CAS, "push", "--remote", "s3"], cwd=repo, capture_output=True,
                         text=True, env=env, timeout=120)
    assert res.returncode == 1
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert_one_line(lines, "'s3'", "127.0.0.1:1")
