"""Read safetensors headers lazily and tell which tensors changed between two files.

A safetensors file is an 8-byte little-endian header length ``N``, ``N`` bytes
of JSON (tensor name -> dtype, shape, data_offsets relative to the data
region), then the data region. Everything here goes through a
``read(offset, length) -> bytes`` callable, so the caller can serve bytes from
the store (only the chunks covering the requested range) without a checkout,
and no function ever holds a whole file in memory.

The header is untrusted input (it comes from a pointer's content, possibly from
a contributor's branch), so it is validated strictly before any offset in it
is used to read.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

import xxhash

from ..units import human_bytes

__all__ = [
    "BLOCK_SIZE",
    "DTYPE_BITS",
    "MAX_HEADER_SIZE",
    "ReadFn",
    "RangesEqualFn",
    "SafetensorsError",
    "SafetensorsHeader",
    "TensorChange",
    "TensorDiff",
    "TensorInfo",
    "diff_tensors",
    "file_reader",
    "parse_header",
    "render_markdown",
    "render_text",
    "to_dict",
]

#: ``read(offset, length) -> bytes``: absolute offset in the file; may return fewer
#: bytes only at the end of the file.
ReadFn = Callable[[int, int], bytes]
#: ``ranges_equal(offset_a, offset_b, length) -> True | False | None``: optional
#: knowledge of the caller (e.g. both ranges are made of the same chunks). True
#: means "certainly equal, skip reading", anything else means "read and compare".
RangesEqualFn = Callable[[int, int, int], "bool | None"]

#: Same bound as the reference implementation: a larger header is refused
#: before it is read, so a hostile file cannot make us allocate gigabytes.
MAX_HEADER_SIZE = 100_000_000
#: Bytes read per step when comparing tensors (bounded memory: two blocks).
BLOCK_SIZE = 1 << 20

#: Bits per element of every dtype the safetensors format defines.
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "I64": 64,
    "U64": 64,
    "F64": 64,
    "C64": 64,
}


class SafetensorsError(ValueError):
    """The bytes are not a valid safetensors file; the message is one line saying why."""


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as the header describes it.

    ``begin``/``end`` are the header's ``data_offsets`` (relative to the data
    region); ``offset`` is the absolute file offset of the first byte.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int
    offset: int

    @property
    def nbytes(self) -> int:
        """Size of the tensor's bytes in the file."""
        return self.end - self.begin


@dataclass(frozen=True)
class SafetensorsHeader:
    """A validated header: tensors by name, free-form ``__metadata__``, and where data starts."""

    header_size: int
    data_start: int
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str] = field(default_factory=dict)
    file_size: int | None = None

    @property
    def data_size(self) -> int:
        """Bytes of the data region that tensors use (the end of the last tensor)."""
        return max((t.end for t in self.tensors.values()), default=0)


def file_reader(f: BinaryIO) -> ReadFn:
    """A :data:`ReadFn` over a seekable binary file object (handy for local files and tests)."""

    def read(offset: int, length: int) -> bytes:
        f.seek(offset)
        return f.read(length)

    return read


def _read_exact(read: ReadFn, offset: int, length: int, what: str) -> bytes:
    data = read(offset, length)
    if len(data) != length:
        raise SafetensorsError(
            f"file is truncated: {what} needs bytes {offset}..{offset + length}, "
            f"got {len(data)} of {length}"
        )
    return bytes(data) if not isinstance(data, bytes) else data


def _fail(msg: str) -> SafetensorsError:
    return SafetensorsError(f"invalid safetensors header: {msg}")


def parse_header(read: ReadFn, size: int | None = None) -> SafetensorsHeader:
    """Read and validate the header of a safetensors file through ``read``.

    ``size`` is the file size if known (the pointer records it): then tensors
    must lie inside the file and cover the data region exactly. Validation
    (each failure raises :class:`SafetensorsError` with one line):

    * the length prefix is 8 bytes, > 0, < 100 MB and inside the file;
    * the header is UTF-8 JSON holding an object; ``__metadata__``, if present,
      maps strings to strings; no key appears twice;
    * every tensor has a known ``dtype``, a ``shape`` of non-negative ints and
      ``data_offsets`` ``[begin, end]`` with ``0 <= begin <= end``, whose length
      equals ``prod(shape) * dtype bits / 8``;
    * tensors do not overlap and leave no holes (the format requires the data
      region to be fully indexed), starting at 0.
    """
    if size is not None and size < 8:
        raise SafetensorsError(f"file is too small to be safetensors ({size} bytes)")
    (n,) = struct.unpack("<Q", _read_exact(read, 0, 8, "the header length"))
    if n == 0:
        raise _fail("header length is 0")
    if n >= MAX_HEADER_SIZE:
        raise _fail(f"header length {n} exceeds the {MAX_HEADER_SIZE}-byte limit")
    if size is not None and 8 + n > size:
        raise _fail(f"header length {n} runs past the end of the {size}-byte file")
    raw = _read_exact(read, 8, n, "the header")
    try:
        obj = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError:
        raise _fail("header is not UTF-8") from None
    except json.JSONDecodeError as e:
        raise _fail(f"header is not valid JSON ({e.msg} at byte {e.pos})") from None
    if not isinstance(obj, dict):
        raise _fail(f"header must be a JSON object, not {type(obj).__name__}")

    metadata = obj.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise _fail("__metadata__ must map strings to strings")

    data_start = 8 + n
    tensors = {name: _tensor(name, spec, data_start) for name, spec in obj.items()}

    # Overlaps and holes: sort by begin and walk. Zero-length tensors may share
    # an offset with a neighbour without overlapping it.
    pos = 0
    for t in sorted(tensors.values(), key=lambda t: (t.begin, t.end)):
        if t.begin < pos:
            raise _fail(
                f"tensor {t.name!r} overlaps the previous tensor (starts at {t.begin}, "
                f"previous ends at {pos})"
            )
        if t.begin > pos:
            raise _fail(
                f"hole in the data region before tensor {t.name!r} "
                f"(bytes {pos}..{t.begin} belong to no tensor)"
            )
        pos = t.end
    if size is not None and data_start + pos != size:
        raise _fail(f"tensors end at byte {data_start + pos} but the file has {size} bytes")
    return SafetensorsHeader(
        n, data_start, dict(sorted(tensors.items())), dict(sorted(metadata.items())), size
    )


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of duplicate keys silently; a header naming a
    # tensor twice is ambiguous (readers may disagree on which one is real).
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _fail(f"key {key!r} appears twice")
        out[key] = value
    return out


def _tensor(name: str, spec: Any, data_start: int) -> TensorInfo:
    if not isinstance(spec, dict):
        raise _fail(f"tensor {name!r} must be an object")
    dtype = spec.get("dtype")
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise _fail(f"tensor {name!r} has unknown dtype {dtype!r}")
    shape = spec.get("shape")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise _fail(f"tensor {name!r} shape must be a list of non-negative integers, got {shape!r}")
    offs = spec.get("data_offsets")
    if (
        not isinstance(offs, list)
        or len(offs) != 2
        or not all(type(o) is int and o >= 0 for o in offs)
        or offs[0] > offs[1]
    ):
        raise _fail(
            f"tensor {name!r} data_offsets must be [begin, end] with "
            f"0 <= begin <= end, got {offs!r}"
        )
    bits = math.prod(shape) * DTYPE_BITS[dtype]
    if bits % 8 or bits // 8 != offs[1] - offs[0]:
        raise _fail(
            f"tensor {name!r} has {offs[1] - offs[0]} bytes but {dtype}{shape} needs {bits / 8:g}"
        )
    return TensorInfo(name, dtype, tuple(shape), offs[0], offs[1], data_start + offs[0])


# -- diff ----------------------------------------------------------------------------

#: numpy dtype of each safetensors dtype whose values can be compared numerically.
#: BF16 has no numpy dtype: its 16 bits are the high half of a float32 (see _decode).
NUMERIC_DTYPES: dict[str, str] = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "u1",
}
#: Unsigned view used to count changed elements bit for bit (NaN == NaN, -0.0 != 0.0).
_BITS = {1: "u1", 2: "<u2", 4: "<u4", 8: "<u8"}


@dataclass(frozen=True)
class TensorChange:
    """One tensor in either file.

    ``status`` is ``added``, ``removed``, ``changed`` or ``unchanged``.
    ``bytes_changed`` (only when the tensor is in both files) is the number of
    byte positions ``i < min(old_nbytes, new_nbytes)`` where the two tensors'
    bytes differ, plus ``|old_nbytes - new_nbytes|``: a byte-level Hamming
    distance that is 0 exactly when the bytes are identical and counts every
    byte of growth or shrinkage. It is None when the caller's ``ranges_equal``
    hint proved equality without reading (then it is 0 in effect).
    ``old_xxh128``/``new_xxh128`` are XXH3-128 digests of the tensor bytes when
    they were read.

    The numeric fields are set for a changed tensor whose dtype and shape are the same on
    both sides and whose dtype is numeric (:data:`NUMERIC_DTYPES`), with ``a`` the old
    values and ``b`` the new ones, computed in float64:

    * ``changed_elements``: elements whose bits differ; ``changed_share`` = that / elements;
    * ``max_abs`` = max |b − a|, ``mean_abs`` = mean |b − a| over all elements;
    * ``rel_l2`` = ‖b − a‖ / ‖a‖ (None when ‖a‖ = 0), ``cosine`` = a·b / (‖a‖‖b‖)
      (None when either norm is 0); ``l2_old`` = ‖a‖ and ``l2_diff`` = ‖b − a‖, which
      let a report combine tensors into a per-layer figure;
    * ``nonfinite``: elements where a or b is NaN or infinite; they count as changed
      when their bits differ but are left out of the sums, which they would poison.

    ``old_file``/``new_file`` name the shard holding the tensor when the tensors of
    several files (a sharded model) are compared as one set.
    """

    name: str
    status: str
    old_dtype: str | None = None
    new_dtype: str | None = None
    old_shape: tuple[int, ...] | None = None
    new_shape: tuple[int, ...] | None = None
    old_nbytes: int | None = None
    new_nbytes: int | None = None
    bytes_changed: int | None = None
    old_xxh128: str | None = None
    new_xxh128: str | None = None
    elements: int | None = None
    changed_elements: int | None = None
    changed_share: float | None = None
    max_abs: float | None = None
    mean_abs: float | None = None
    rel_l2: float | None = None
    cosine: float | None = None
    l2_old: float | None = None
    l2_diff: float | None = None
    nonfinite: int | None = None
    old_file: str | None = None
    new_file: str | None = None


@dataclass(frozen=True)
class LayerSummary:
    """Changed tensors of one layer (``model.layers.12``), combined: ``rel_l2`` is
    ‖Δ‖ / ‖old‖ over all of the layer's changed tensors with numeric figures."""

    layer: str
    tensors: int  # tensors of the layer in the new file (or the old one if removed)
    changed: int
    elements: int
    changed_elements: int
    max_abs: float | None
    rel_l2: float | None


@dataclass(frozen=True)
class TensorDiff:
    """Tensors of two safetensors files, grouped by status and sorted by name."""

    added: list[TensorChange] = field(default_factory=list)
    removed: list[TensorChange] = field(default_factory=list)
    changed: list[TensorChange] = field(default_factory=list)
    unchanged: list[TensorChange] = field(default_factory=list)
    metadata_changed: bool = False

    @property
    def bytes_changed(self) -> int:
        """Changed bytes of common tensors plus all bytes of added and removed tensors."""
        return (
            sum(c.bytes_changed or 0 for c in self.changed)
            + sum(c.new_nbytes or 0 for c in self.added)
            + sum(c.old_nbytes or 0 for c in self.removed)
        )

    @property
    def has_changes(self) -> bool:
        """True when any tensor or the ``__metadata__`` differs."""
        return bool(self.added or self.removed or self.changed or self.metadata_changed)

    @property
    def tensor_count(self) -> int:
        return len(self.added) + len(self.removed) + len(self.changed) + len(self.unchanged)

    def top_changed(self) -> list[TensorChange]:
        """Changed tensors, the largest relative change first (those without numeric
        figures, e.g. a new shape, come first: they changed more than any number says)."""
        return sorted(self.changed, key=lambda c: (c.rel_l2 is not None,
                                                   -(c.rel_l2 or 0.0), c.name))

    def layers(self) -> list[LayerSummary]:
        """Per-layer figures for the layers with changes, the largest ``rel_l2`` first."""
        groups: dict[str, list[TensorChange]] = {}
        for c in self.added + self.removed + self.changed + self.unchanged:
            groups.setdefault(layer_of(c.name), []).append(c)
        out = []
        for layer, rows in groups.items():
            changed = [c for c in rows if c.status != "unchanged"]
            if not changed:
                continue
            num = [c for c in changed if c.l2_old is not None and c.l2_diff is not None]
            old2 = sum((c.l2_old or 0.0) ** 2 for c in num)
            diff2 = sum((c.l2_diff or 0.0) ** 2 for c in num)
            maxes = [c.max_abs for c in num if c.max_abs is not None]
            out.append(LayerSummary(
                layer=layer, tensors=len(rows), changed=len(changed),
                elements=sum(_elements(c) for c in rows),
                changed_elements=sum(c.changed_elements or 0 for c in changed),
                max_abs=max(maxes) if maxes else None,
                rel_l2=_finite(math.sqrt(diff2) / math.sqrt(old2)) if old2 > 0 else None))
        return sorted(out, key=lambda s: (s.rel_l2 is not None, -(s.rel_l2 or 0.0), s.layer))


def _elements(c: TensorChange) -> int:
    shape = c.new_shape if c.new_shape is not None else c.old_shape
    return math.prod(shape) if shape is not None else 0


def layer_of(name: str) -> str:
    """The layer a tensor belongs to: its name up to the first numeric part
    (``model.layers.12.mlp.up_proj.weight`` -> ``model.layers.12``), else its module
    (``lm_head.weight`` -> ``lm_head``)."""
    parts = name.split(".")
    for i, p in enumerate(parts[:-1]):
        if p.isdigit():
            return ".".join(parts[: i + 1])
    return ".".join(parts[:-1]) or name


@dataclass(frozen=True)
class TensorRef:
    """Where one tensor's bytes are: its header entry and the file's reader."""

    info: TensorInfo
    read: ReadFn
    file: str | None = None


#: ``same(a, b) -> True | None``: True when the caller knows both tensors' bytes are equal.
RefsEqualFn = Callable[[TensorRef, TensorRef], "bool | None"]


class _Stats:
    """Float64 running sums over the element pairs of one tensor."""

    def __init__(self) -> None:
        self.changed = 0
        self.nonfinite = 0
        self.max_abs = 0.0
        self.sum_abs = 0.0
        self.aa = 0.0
        self.bb = 0.0
        self.ab = 0.0
        self.dd = 0.0

    def update(self, a: Any, b: Any, bits: str) -> None:
        # start-up: numpy costs ~0.1 s; the header parse and render of weights do not need it
        import numpy as np

        self.changed += int(np.count_nonzero(a.view(bits) != b.view(bits)))
        fa, fb = a.astype(np.float64), b.astype(np.float64)
        ok = np.isfinite(fa) & np.isfinite(fb)
        if not ok.all():
            self.nonfinite += int(ok.size - np.count_nonzero(ok))
            fa, fb = fa[ok], fb[ok]
        if not fa.size:
            return
        d = fb - fa
        self.dd += float(np.dot(d, d))
        ad = np.abs(d)
        self.sum_abs += float(ad.sum())
        self.max_abs = max(self.max_abs, float(ad.max()))
        self.aa += float(np.dot(fa, fa))
        self.bb += float(np.dot(fb, fb))
        self.ab += float(np.dot(fa, fb))

    def fields(self, elements: int) -> dict[str, Any]:
        l2_old, l2_new, l2_diff = math.sqrt(self.aa), math.sqrt(self.bb), math.sqrt(self.dd)
        return dict(
            elements=elements,
            changed_elements=self.changed,
            changed_share=self.changed / elements if elements else 0.0,
            max_abs=_finite(self.max_abs),
            mean_abs=_finite(self.sum_abs / elements) if elements else 0.0,
            rel_l2=_finite(l2_diff / l2_old) if l2_old > 0 else None,
            cosine=_finite(min(1.0, max(-1.0, self.ab / (l2_old * l2_new))))
            if l2_old > 0 and l2_new > 0 else None,
            l2_old=_finite(l2_old),
            l2_diff=_finite(l2_diff),
            nonfinite=self.nonfinite,
        )


def _finite(x: float) -> float | None:
    # JSON has no NaN or infinity; a figure that overflowed is better absent than invalid.
    return x if math.isfinite(x) else None


def _decode(raw: bytes, dtype: str) -> Any:
    """Elements of one block; BF16 (no numpy dtype) becomes the float32 whose top 16 bits
    it is, exactly."""
    # start-up: numpy, as in update
    import numpy as np

    if dtype == "BF16":
        u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return u.view(np.float32)
    return np.frombuffer(raw, dtype=NUMERIC_DTYPES[dtype])


def _stream(a: TensorRef, b: TensorRef, block: int, numeric: bool
            ) -> tuple[int, str, str, dict[str, Any]]:
    """Read both tensors block by block: (differing bytes, xxh128 a, xxh128 b, numeric
    figures or {}). Memory stays at a few blocks whatever the tensor size."""
    # start-up: numpy, as in update
    import numpy as np

    len_a, len_b = a.info.nbytes, b.info.nbytes
    width = DTYPE_BITS[a.info.dtype] // 8 if numeric else 1
    # Whole elements per block, so that no element is split between two reads.
    block = max(width, block - block % width)
    ha, hb = xxhash.xxh3_128(), xxhash.xxh3_128()
    diff = abs(len_a - len_b)
    stats = _Stats() if numeric else None
    pos = 0
    while pos < max(len_a, len_b):
        na, nb = max(0, min(block, len_a - pos)), max(0, min(block, len_b - pos))
        ra = _read_exact(a.read, a.info.offset + pos, na, "a tensor") if na else b""
        rb = _read_exact(b.read, b.info.offset + pos, nb, "a tensor") if nb else b""
        ha.update(ra)
        hb.update(rb)
        common = min(na, nb)
        if common:
            va = np.frombuffer(ra, dtype=np.uint8, count=common)
            vb = np.frombuffer(rb, dtype=np.uint8, count=common)
            diff += int(np.count_nonzero(va != vb))
        if stats is not None and na:
            # BF16 elements arrive widened to float32: compare their 4-byte bits.
            bits = "<u4" if a.info.dtype == "BF16" else _BITS[width]
            stats.update(_decode(ra, a.info.dtype), _decode(rb, b.info.dtype), bits)
        pos += block
    figures = stats.fields(math.prod(a.info.shape)) if stats is not None else {}
    return diff, ha.hexdigest(), hb.hexdigest(), figures


def diff_tensor_sets(
    a: Mapping[str, TensorRef],
    b: Mapping[str, TensorRef],
    *,
    same: RefsEqualFn | None = None,
    block_size: int = BLOCK_SIZE,
    metadata_changed: bool = False,
) -> TensorDiff:
    """Which tensors were added, removed, changed or kept from set A (old) to set B (new),
    matched by name: the tensors of one file, or of all the shards of a sharded model.

    A tensor present in both is ``changed`` when its dtype or shape differ or the XXH3-128
    of its bytes differs; both sides are read in ``block_size`` blocks (memory stays at a
    few blocks whatever the model size) and :attr:`TensorChange.bytes_changed` and the
    numeric figures are computed in the same pass. If ``same`` returns True for a pair,
    the tensor is ``unchanged`` without being read (e.g. the store knows both ranges map
    to the same chunks).
    """
    if block_size <= 0:
        raise ValueError("block_size must be positive")
    out = TensorDiff(metadata_changed=metadata_changed)
    for name in sorted(a.keys() | b.keys()):
        ra, rb = a.get(name), b.get(name)
        if ra is None:
            assert rb is not None
            t = rb.info
            out.added.append(TensorChange(name, "added", new_dtype=t.dtype, new_shape=t.shape,
                                          new_nbytes=t.nbytes, new_file=rb.file))
            continue
        if rb is None:
            t = ra.info
            out.removed.append(TensorChange(name, "removed", old_dtype=t.dtype,
                                            old_shape=t.shape, old_nbytes=t.nbytes,
                                            old_file=ra.file))
            continue
        ia, ib = ra.info, rb.info
        base: dict[str, Any] = dict(
            name=name, old_dtype=ia.dtype, new_dtype=ib.dtype, old_shape=ia.shape,
            new_shape=ib.shape, old_nbytes=ia.nbytes, new_nbytes=ib.nbytes,
            old_file=ra.file, new_file=rb.file,
        )
        same_layout = ia.dtype == ib.dtype and ia.shape == ib.shape
        if same_layout and same is not None and same(ra, rb):
            out.unchanged.append(TensorChange(status="unchanged", **base))
            continue
        numeric = same_layout and ia.dtype in NUMERIC_DTYPES
        n, da, db, figures = _stream(ra, rb, block_size, numeric)
        if same_layout and da == db:
            out.unchanged.append(TensorChange(status="unchanged", bytes_changed=0,
                                              old_xxh128=da, new_xxh128=db, **base))
        else:
            out.changed.append(TensorChange(status="changed", bytes_changed=n, old_xxh128=da,
                                            new_xxh128=db, **base, **figures))
    return out


def diff_tensors(
    header_a: SafetensorsHeader,
    header_b: SafetensorsHeader,
    read_a: ReadFn,
    read_b: ReadFn,
    *,
    ranges_equal: RangesEqualFn | None = None,
    block_size: int = BLOCK_SIZE,
) -> TensorDiff:
    """:func:`diff_tensor_sets` for two single files. ``ranges_equal(offset_a, offset_b,
    length)`` may prove a tensor unchanged without reading it."""
    same: RefsEqualFn | None = None
    if ranges_equal is not None:
        eq = ranges_equal

        def same(x: TensorRef, y: TensorRef) -> bool | None:
            return eq(x.info.offset, y.info.offset, x.info.nbytes)

    return diff_tensor_sets(
        {n: TensorRef(t, read_a) for n, t in header_a.tensors.items()},
        {n: TensorRef(t, read_b) for n, t in header_b.tensors.items()},
        same=same, block_size=block_size,
        metadata_changed=header_a.metadata != header_b.metadata,
    )


# -- rendering ------------------------------------------------------------------------

#: Changed tensors listed one by one (largest relative change first); the rest are counted.
MAX_LISTED = 20
#: From this many tensors on, reports add a per-layer summary (a 7B model has ~300).
LAYER_SUMMARY_AT = 200


def _layout(dtype: str | None, shape: tuple[int, ...] | None) -> str:
    if dtype is None:
        return "-"
    return f"{dtype}[{', '.join(map(str, shape or ()))}]"


def _change_layout(c: TensorChange) -> str:
    old, new = _layout(c.old_dtype, c.old_shape), _layout(c.new_dtype, c.new_shape)
    if c.status == "added":
        return new
    return old if old == new or c.status == "removed" else f"{old} -> {new}"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def _cos(x: float | None) -> str:
    # Cosines of fine-tuned weights sit at 0.9999...: four significant digits would say 1.
    return "-" if x is None else f"{x:.6f}"


def _share(x: float | None) -> str:
    if x is None:
        return "-"
    pct = x * 100
    return f"{pct:.3g}%" if pct < 99.95 or pct == 100 else "99.9%"


def _figures(c: TensorChange) -> str:
    """``5 of 1024 elements (0.488%), rel_l2 0.0123, max|Δ| 1, mean|Δ| 0.00488, cos 0.9999``"""
    if c.changed_elements is None:
        return ""
    text = (f"{c.changed_elements} of {c.elements} elements ({_share(c.changed_share)}), "
            f"rel_l2 {_num(c.rel_l2)}, max|Δ| {_num(c.max_abs)}, mean|Δ| {_num(c.mean_abs)}, "
            f"cos {_cos(c.cosine)}")
    if c.nonfinite:
        text += f", {c.nonfinite} NaN/inf left out"
    return text


def _where(c: TensorChange) -> str:
    if c.old_file and c.new_file and c.old_file != c.new_file:
        return f"  [{c.old_file} -> {c.new_file}]"
    f = c.new_file or c.old_file
    return f"  [{f}]" if f else ""


def render_text(d: TensorDiff) -> str:
    """Plain-text tensor report: changed tensors by relative change (largest first) with
    their numeric figures, added and removed tensors, a per-layer summary for large
    models, then the totals."""
    lines = []
    for c in d.added[:MAX_LISTED]:
        lines.append(f"  + {c.name}  {_layout(c.new_dtype, c.new_shape)}  "
                     f"{human_bytes(c.new_nbytes)}{_where(c)}")
    if len(d.added) > MAX_LISTED:
        lines.append(f"  ... and {len(d.added) - MAX_LISTED} more added")
    for c in d.removed[:MAX_LISTED]:
        lines.append(f"  - {c.name}  {_layout(c.old_dtype, c.old_shape)}  "
                     f"{human_bytes(c.old_nbytes)}{_where(c)}")
    if len(d.removed) > MAX_LISTED:
        lines.append(f"  ... and {len(d.removed) - MAX_LISTED} more removed")
    top = d.top_changed()
    for c in top[:MAX_LISTED]:
        figures = _figures(c)
        lines.append(
            f"  ~ {c.name}  {_change_layout(c)}  "
            f"{human_bytes(c.bytes_changed)} of {human_bytes(c.new_nbytes)} changed"
            + (f"; {figures}" if figures else "") + _where(c)
        )
    if len(top) > MAX_LISTED:
        lines.append(f"  ... and {len(top) - MAX_LISTED} more changed (see --json)")
    if d.tensor_count >= LAYER_SUMMARY_AT:
        layers = d.layers()
        lines.append(f"layers changed: {len(layers)}")
        for s in layers[:MAX_LISTED]:
            lines.append(f"  {s.layer}: {s.changed} of {s.tensors} tensors, rel_l2 "
                         f"{_num(s.rel_l2)}, max|Δ| {_num(s.max_abs)}, "
                         f"{s.changed_elements} of {s.elements} elements changed")
        if len(layers) > MAX_LISTED:
            lines.append(f"  ... and {len(layers) - MAX_LISTED} more layers")
    lines.append(
        f"tensors: {len(d.added)} added, {len(d.removed)} removed, {len(d.changed)} changed, "
        f"{len(d.unchanged)} unchanged; {human_bytes(d.bytes_changed)} changed"
        + ("; __metadata__ changed" if d.metadata_changed else "")
    )
    return "\n".join(lines)


def _md_name(name: str) -> str:
    # A backtick or pipe in a contributor's tensor name must not break the table.
    safe = name.replace("|", "\\|").replace("`", "'")
    return f"`{safe}`"


def render_markdown(d: TensorDiff) -> str:
    """Markdown for a pull request: the changed tensors with their numeric figures (largest
    relative change first), a per-layer table for large models, then added and removed
    tensors (unchanged ones are only counted)."""
    out = [
        f"**Tensors:** {len(d.added)} added, {len(d.removed)} removed, {len(d.changed)} changed, "
        f"{len(d.unchanged)} unchanged ({human_bytes(d.bytes_changed)} changed)"
        + (" · `__metadata__` changed" if d.metadata_changed else ""),
        "",
    ]
    top = d.top_changed()
    if top:
        out += ["| Tensor | Change | dtype / shape | Elements changed | rel. L2 | max abs Δ | "
                "mean abs Δ | cosine |", "|---|---|---|---:|---:|---:|---:|---:|"]
        for c in top[:MAX_LISTED]:
            elems = "-" if c.changed_elements is None else \
                f"{c.changed_elements} of {c.elements} ({_share(c.changed_share)})"
            out.append(f"| {_md_name(c.name)} | changed | {_change_layout(c)} | {elems} | "
                       f"{_num(c.rel_l2)} | {_num(c.max_abs)} | {_num(c.mean_abs)} | "
                       f"{_cos(c.cosine)} |")
        if len(top) > MAX_LISTED:
            out.append(f"| … and {len(top) - MAX_LISTED} more | | | | | | | |")
        out.append("")
    if d.tensor_count >= LAYER_SUMMARY_AT:
        layers = d.layers()
        out += [f"**Layers changed:** {len(layers)}", "",
                "| Layer | Tensors changed | Elements changed | rel. L2 | max abs Δ |",
                "|---|---:|---:|---:|---:|"]
        for s in layers[:MAX_LISTED]:
            out.append(f"| {_md_name(s.layer)} | {s.changed} of {s.tensors} | "
                       f"{s.changed_elements} of {s.elements} | {_num(s.rel_l2)} | "
                       f"{_num(s.max_abs)} |")
        if len(layers) > MAX_LISTED:
            out.append(f"| … and {len(layers) - MAX_LISTED} more | | | | |")
        out.append("")
    rows = d.added[:MAX_LISTED] + d.removed[:MAX_LISTED]
    if rows:
        out += ["| Tensor | Change | dtype / shape | Size |", "|---|---|---|---:|"]
        for c in rows:
            size = human_bytes(c.new_nbytes if c.status == "added" else c.old_nbytes)
            out.append(f"| {_md_name(c.name)} | {c.status} | {_change_layout(c)} | {size} |")
        more = len(d.added) + len(d.removed) - len(rows)
        if more > 0:
            out.append(f"| … and {more} more | | | |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def to_dict(d: TensorDiff) -> dict[str, Any]:
    """A JSON-able dict (shapes as lists), plus ``bytes_changed`` and ``has_changes`` totals,
    and ``layers``: the per-layer summary of the layers with changes."""
    out = json.loads(json.dumps(asdict(d)))  # tuples -> lists, as JSON will show them
    out["bytes_changed"] = d.bytes_changed
    out["has_changes"] = d.has_changes
    out["layers"] = [asdict(s) for s in d.layers()]
    return out
