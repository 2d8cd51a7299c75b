"""End-to-end: numeric weight diffs between safetensors versions, single files, files inside
tracked folders and sharded Hugging Face models, read from the cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from conftest import git


def _save(path: Path, tensors: dict[str, np.ndarray]) -> None:
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))


def _commit(repo: Path, cas, target: str, msg: str) -> None:
    cas("add", target)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", msg)


def _bf16(x: np.ndarray) -> np.ndarray:
    # safetensors.numpy has no bfloat16: write the top 16 bits of float32 as BF16 by hand.
    return (x.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)


def test_scaled_tensor_rel_l2_and_ten_changed_elements(repo: Path, cas) -> None:
    rng = np.random.default_rng(0)
    t = {"enc.weight": rng.standard_normal((256, 128)).astype(np.float32),
         "enc.bias": rng.standard_normal(128).astype(np.float16),
         "quant.weight": rng.integers(-120, 120, 4096).astype(np.int8),
         "head.weight": rng.standard_normal((128, 10)).astype(np.float32)}
    _save(repo / "model.safetensors", t)
    _commit(repo, cas, "model.safetensors", "v1")
    t["enc.weight"] = (t["enc.weight"] * np.float32(1.01)).astype(np.float32)
    head = t["head.weight"].copy()
    head.flat[[0, 7, 100, 200, 333, 500, 640, 777, 901, 1279]] += 0.5
    t["head.weight"] = head
    q = t["quant.weight"].copy()
    q[:3] = q[:3] // 2 - 1
    t["quant.weight"] = q
    _save(repo / "model.safetensors", t)
    _commit(repo, cas, "model.safetensors", "v2")

    res = json.loads(cas("compare", "model.safetensors@HEAD~1", "model.safetensors@HEAD",
                         "--json").stdout)
    changed = {c["name"]: c for c in res["tensors"]["changed"]}
    enc = changed["enc.weight"]
    assert abs(enc["rel_l2"] - 0.01) < 1e-6
    assert enc["changed_share"] > 0.99 and enc["cosine"] > 0.99999
    head = changed["head.weight"]
    assert head["changed_elements"] == 10 and head["elements"] == 1280
    assert abs(head["max_abs"] - 0.5) < 1e-6 and abs(head["mean_abs"] - 10 * 0.5 / 1280) < 1e-6
    assert changed["quant.weight"]["changed_elements"] == 3
    assert [c["name"] for c in res["tensors"]["unchanged"]] == ["enc.bias"]
    for key in ("changed_elements", "changed_share", "max_abs", "mean_abs", "rel_l2", "cosine"):
        assert key in head

    text = cas("compare", "model.safetensors@HEAD~1", "model.safetensors@HEAD").stdout
    rows = [ln for ln in text.splitlines() if ln.startswith("    ~ ")]
    # Largest relative change first.
    by_rel = sorted(changed, key=lambda n: -changed[n]["rel_l2"])
    assert [r.split()[1] for r in rows] == by_rel and by_rel[-1] == "enc.weight"
    assert "10 of 1280 elements (0.781%)" in text and "rel_l2 0.01," in text
    md = cas("diff", "HEAD~1", "HEAD", "--format", "markdown").stdout
    assert "| `head.weight` | changed | F32[128, 10] | 10 of 1280 (0.781%) |" in md


def test_model_file_inside_a_tracked_folder(repo: Path, cas) -> None:
    rng = np.random.default_rng(1)
    w = rng.standard_normal(1000).astype(np.float32)
    _save(repo / "m" / "model.safetensors", {"w": w, "h": w.astype(np.float16)})
    (repo / "m" / "config.json").write_text('{"model_type": "toy"}')
    _commit(repo, cas, "m", "v1")
    # Doubling is exact in F16 and F32, so rel_l2 is exactly 1 for both.
    _save(repo / "m" / "model.safetensors", {"w": w * 2, "h": (w * 2).astype(np.float16)})
    _commit(repo, cas, "m", "v2")
    res = json.loads(cas("diff", "HEAD~1", "HEAD", "--json").stdout)
    [e] = res["entries"]
    model = e["tensor_files"]["model.safetensors"]
    ch = {c["name"]: c for c in model["changed"]}
    assert abs(ch["h"]["rel_l2"] - 1.0) < 1e-12 and ch["h"]["changed_elements"] == 1000
    assert abs(ch["w"]["rel_l2"] - 1.0) < 1e-12 and abs(ch["w"]["cosine"] - 1.0) < 1e-12


def test_bf16_header(tmp_path: Path) -> None:
    """BF16 values are widened to float32 exactly (no numpy dtype for them)."""
    import struct

    from casstore.review.tensors import diff_tensors, parse_header

    w = np.random.default_rng(2).standard_normal(64).astype(np.float32)

    def file(x: np.ndarray) -> bytes:
        data = _bf16(x).tobytes()
        head = json.dumps({"w": {"dtype": "BF16", "shape": [64],
                                 "data_offsets": [0, len(data)]}}).encode()
        return struct.pack("<Q", len(head)) + head + data

    a, b = file(w), file(w * 1.5)
    ra, rb = (lambda o, n: a[o:o + n]), (lambda o, n: b[o:o + n])
    d = diff_tensors(parse_header(ra, len(a)), parse_header(rb, len(b)), ra, rb)
    [c] = d.changed
    assert abs(c.rel_l2 - 0.5) < 1e-2 and c.changed_elements == 64


def test_sharded_model_compared_by_tensor_name_across_shards(repo: Path, cas) -> None:
    rng = np.random.default_rng(3)
    layers = {f"model.layers.{i}.mlp.weight": rng.standard_normal((64, 64)).astype(np.float32)
              for i in range(4)}
    layers["lm_head.weight"] = rng.standard_normal((64, 32)).astype(np.float32)
    folder = repo / "llm"

    def write(shards: list[list[str]]) -> None:
        for old in folder.glob("model-*.safetensors"):
            old.unlink()
        weight_map = {}
        for i, names in enumerate(shards, 1):
            fname = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
            _save(folder / fname, {n: layers[n] for n in names})
            weight_map.update(dict.fromkeys(names, fname))
        (folder / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {}, "weight_map": weight_map}))

    names = sorted(layers)
    write([names[:3], names[3:]])
    _commit(repo, cas, "llm", "v1")
    # Re-shard (tensors move between files) and change one layer: only that one changed.
    layers["model.layers.2.mlp.weight"] = layers["model.layers.2.mlp.weight"] * np.float32(1.01)
    write([names[:2], names[2:4], names[4:]])
    _commit(repo, cas, "llm", "v2")

    res = json.loads(cas("diff", "HEAD~1", "HEAD", "--json").stdout)
    [e] = res["entries"]
    model = e["tensor_files"]["model.safetensors"]
    assert [c["name"] for c in model["changed"]] == ["model.layers.2.mlp.weight"]
    assert abs(model["changed"][0]["rel_l2"] - 0.01) < 1e-6
    assert model["added"] == [] and model["removed"] == []
    assert len(model["unchanged"]) == 4
    moved = model["changed"][0]
    assert moved["old_file"] == "model-00002-of-00002.safetensors"
    assert moved["new_file"] == "model-00002-of-00003.safetensors"
    assert model["layers"][0]["layer"] == "model.layers.2"
    text = cas("diff", "HEAD~1", "HEAD").stdout
    assert "tensors llm/model.safetensors:" in text
    assert "~ model.layers.2.mlp.weight  F32[64, 64]" in text


def test_per_layer_summary_for_many_tensors(repo: Path, cas) -> None:
    rng = np.random.default_rng(4)
    t = {f"blocks.{i}.{p}": rng.standard_normal(8).astype(np.float32)
         for i in range(60) for p in ("q", "k", "v", "o")}
    _save(repo / "big.safetensors", t)
    _commit(repo, cas, "big.safetensors", "v1")
    for p in ("q", "k"):
        t[f"blocks.7.{p}"] = t[f"blocks.7.{p}"] * np.float32(1.5)
    t["blocks.9.o"] = t["blocks.9.o"] * np.float32(1.1)
    _save(repo / "big.safetensors", t)
    _commit(repo, cas, "big.safetensors", "v2")
    text = cas("diff", "HEAD~1", "HEAD").stdout
    assert "layers changed: 2" in text
    lines = text.splitlines()
    i = next(n for n, ln in enumerate(lines) if "layers changed: 2" in ln)
    assert lines[i + 1].strip().startswith("blocks.7: 2 of 4 tensors, rel_l2 0.5")
    assert lines[i + 2].strip().startswith("blocks.9: 1 of 4 tensors")
    md = cas("diff", "HEAD~1", "HEAD", "--format", "markdown").stdout
    assert "**Layers changed:** 2" in md and "| `blocks.7` | 2 of 4 |" in md
