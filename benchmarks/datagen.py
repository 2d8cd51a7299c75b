"""Deterministic test data: random big files, many small files, model checkpoint histories.

Random bytes are incompressible and never repeat, so every byte a tool dedups or skips is a byte
it really recognised, not one a compressor squeezed. Seeds make each run see the same data, and
files are generated once into benchmarks/.work/data and reused by later runs.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

MiB = 1024 * 1024
GiB = 1024 * MiB
_BLOCK = 64 * MiB  # generation block: large enough to be fast, small enough to keep RSS low


def _stamp_ok(path: Path, spec: dict[str, object]) -> bool:
    stamp = path.with_name(path.name + ".spec.json")
    if not path.exists() or not stamp.exists():
        return False
    try:
        return bool(json.loads(stamp.read_text()) == spec)
    except (OSError, ValueError):
        return False


def _holds(root: Path, count: int, size: int) -> bool:
    """Whether a reused tree still has all its files at their size: a stamp says what was
    generated, not what is left (a partly deleted tree once passed for a whole one)."""
    found = 0
    for folder in os.scandir(root):
        if not folder.is_dir(follow_symlinks=False):
            return False
        for entry in os.scandir(folder.path):
            if not entry.is_file(follow_symlinks=False) or entry.stat().st_size != size:
                return False
            found += 1
    return found == count


def _write_stamp(path: Path, spec: dict[str, object]) -> None:
    path.with_name(path.name + ".spec.json").write_text(json.dumps(spec))


def random_file(path: Path, size: int, seed: int) -> Path:
    """A file of `size` random bytes; regenerated only when missing or of another spec."""
    spec = {"kind": "random", "size": size, "seed": seed}
    if _stamp_ok(path, spec) and path.stat().st_size == size:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # concurrent runs: own temp names
    with open(tmp, "wb") as fh:
        left = size
        while left:
            n = min(left, _BLOCK)
            fh.write(rng.bytes(n))
            left -= n
    os.replace(tmp, path)
    _write_stamp(path, spec)
    return path


def small_files(root: Path, count: int, folders: int, size: int, seed: int) -> Path:
    """`count` files of `size` random bytes spread evenly over `folders` sub-folders."""
    spec = {"kind": "small", "count": count, "folders": folders, "size": size, "seed": seed}
    if _stamp_ok(root, spec) and _holds(root, count, size):
        return root
    if root.exists():
        shutil.rmtree(root)
    tmp = root.with_name(f"{root.name}.{os.getpid()}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    rng = np.random.default_rng(seed)
    per_folder = -(-count // folders)
    # One bulk draw, then slices: tens of thousands of tiny rng calls would dominate generation.
    blob = rng.bytes(count * size)
    for i in range(count):
        folder = tmp / f"d{i // per_folder:02d}"
        if i % per_folder == 0:
            folder.mkdir(parents=True)
        (folder / f"f{i:05d}.bin").write_bytes(blob[i * size : (i + 1) * size])
    if root.exists():  # another run finished the same data first
        shutil.rmtree(tmp)
    else:
        os.replace(tmp, root)
    _write_stamp(root, spec)
    return root


def edit_middle(path: Path, length: int, seed: int) -> None:
    """Overwrite `length` bytes in the middle of a file, in place (size unchanged)."""
    size = path.stat().st_size
    data = np.random.default_rng(seed).bytes(length)
    with open(path, "r+b") as fh:
        fh.seek(max(0, size // 2 - length // 2))
        fh.write(data)


def insert_at_start(src: Path, dst: Path, length: int, seed: int) -> None:
    """Copy `src` to `dst` with `length` new bytes in front: every later byte shifts."""
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        fout.write(np.random.default_rng(seed).bytes(length))
        shutil.copyfileobj(fin, fout, 16 * MiB)


def change_one_file(path: Path, seed: int) -> None:
    """New content of the same size, written to a new file that replaces `path`, as editors
    save: `path` may be a hard link to the scenario's source data, which must not change."""
    size = path.stat().st_size
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(np.random.default_rng(seed).bytes(size))
    os.replace(tmp, path)


def model_history(out_dir: Path, total_bytes: int, steps: int, layers: int, trainable: int,
                  seed: int) -> list[Path]:
    """Checkpoints of a model fine-tuned in `steps` steps with all but `trainable` layers frozen.

    Like a real fine-tune of a head: the frozen layers keep identical bytes in every checkpoint,
    while the trainable ones (the last `trainable` layers) get a small update at each step, which
    changes every byte of those tensors. Saved with safetensors, as a trainer would.
    """
    from safetensors.numpy import save_file

    spec = {"kind": "model", "total": total_bytes, "steps": steps, "layers": layers,
            "trainable": trainable, "seed": seed}
    paths = [out_dir / f"step-{i + 1}.safetensors" for i in range(steps)]
    stamp = out_dir / "model"
    if _stamp_ok(stamp, spec) and all(p.exists() for p in paths):
        return paths
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    # Square weight matrices plus a bias per layer, sized so the file totals ~total_bytes.
    per_layer = total_bytes // layers
    dim = int((per_layer / 4) ** 0.5)
    tensors: dict[str, np.ndarray] = {}
    for i in range(layers):
        tensors[f"layers.{i}.weight"] = rng.standard_normal((dim, dim), dtype=np.float32) * 0.02
        tensors[f"layers.{i}.bias"] = np.zeros(dim, dtype=np.float32)
    trainable_names = [n for n in tensors if int(n.split(".")[1]) >= layers - trainable]
    for path in paths:
        for name in trainable_names:
            update = rng.standard_normal(tensors[name].shape, dtype=np.float32) * 1e-3
            tensors[name] = tensors[name] + update
        save_file(tensors, str(path), metadata={"format": "np"})
    stamp.write_text("model history\n")
    _write_stamp(stamp, spec)
    return paths


def tree_bytes(root: Path) -> int:
    """Sum of the apparent sizes of all files under root (directories themselves not counted).

    Unlike `du -sb` this leaves out directory entries, which would otherwise add ~1 MiB of noise
    for a cache fanned out over 256 sub-directories and blur the "<= 1.5 MiB stored" target.
    """
    if not root.exists():
        return 0
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total
