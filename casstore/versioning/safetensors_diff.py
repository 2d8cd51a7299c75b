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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

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


def _compare_bytes(
    read_a: ReadFn, off_a: int, len_a: int, read_b: ReadFn, off_b: int, len_b: int, block: int
) -> tuple[int, str, str]:
    """Stream both ranges block by block: (differing bytes, xxh128 a, xxh128 b)."""
    import numpy as np
    import xxhash

    ha, hb = xxhash.xxh3_128(), xxhash.xxh3_128()
    diff = abs(len_a - len_b)
    pos = 0
    while pos < max(len_a, len_b):
        na, nb = max(0, min(block, len_a - pos)), max(0, min(block, len_b - pos))
        a = _read_exact(read_a, off_a + pos, na, "a tensor") if na else b""
        b = _read_exact(read_b, off_b + pos, nb, "a tensor") if nb else b""
        ha.update(a)
        hb.update(b)
        common = min(na, nb)
        if common:
            va = np.frombuffer(a, dtype=np.uint8, count=common)
            vb = np.frombuffer(b, dtype=np.uint8, count=common)
            diff += int(np.count_nonzero(va != vb))
        pos += block
    return diff, ha.hexdigest(), hb.hexdigest()


def diff_tensors(
    header_a: SafetensorsHeader,
    header_b: SafetensorsHeader,
    read_a: ReadFn,
    read_b: ReadFn,
    *,
    ranges_equal: RangesEqualFn | None = None,
    block_size: int = BLOCK_SIZE,
) -> TensorDiff:
    """Which tensors were added, removed, changed or kept from file A (old) to file B (new).

    A tensor present in both is ``changed`` when its dtype or shape differ or
    the XXH3-128 of its bytes differs; the bytes are read in ``block_size``
    blocks from both sides (memory stays at two blocks whatever the model size)
    and :attr:`TensorChange.bytes_changed` is counted in the same pass. If
    ``ranges_equal`` is given and returns True for a tensor's two byte ranges,
    the tensor is ``unchanged`` without being read (e.g. the store knows both
    ranges map to the same chunks).
    """
    if block_size <= 0:
        raise ValueError("block_size must be positive")
    ta, tb = header_a.tensors, header_b.tensors
    out = TensorDiff(metadata_changed=header_a.metadata != header_b.metadata)
    for name in sorted(ta.keys() | tb.keys()):
        a, b = ta.get(name), tb.get(name)
        if a is None:
            assert b is not None
            out.added.append(
                TensorChange(
                    name, "added", new_dtype=b.dtype, new_shape=b.shape, new_nbytes=b.nbytes
                )
            )
            continue
        if b is None:
            out.removed.append(
                TensorChange(
                    name, "removed", old_dtype=a.dtype, old_shape=a.shape, old_nbytes=a.nbytes
                )
            )
            continue
        base = dict(
            name=name,
            old_dtype=a.dtype,
            new_dtype=b.dtype,
            old_shape=a.shape,
            new_shape=b.shape,
            old_nbytes=a.nbytes,
            new_nbytes=b.nbytes,
        )
        same_layout = a.dtype == b.dtype and a.shape == b.shape
        if same_layout and ranges_equal is not None and ranges_equal(a.offset, b.offset, a.nbytes):
            out.unchanged.append(TensorChange(status="unchanged", **base))
            continue
        n, da, db = _compare_bytes(
            read_a, a.offset, a.nbytes, read_b, b.offset, b.nbytes, block_size
        )
        if same_layout and da == db:
            out.unchanged.append(
                TensorChange(
                    status="unchanged", bytes_changed=0, old_xxh128=da, new_xxh128=db, **base
                )
            )
        else:
            out.changed.append(
                TensorChange(
                    status="changed", bytes_changed=n, old_xxh128=da, new_xxh128=db, **base
                )
            )
    return out


# -- rendering ------------------------------------------------------------------------


def _layout(dtype: str | None, shape: tuple[int, ...] | None) -> str:
    if dtype is None:
        return "-"
    return f"{dtype}[{', '.join(map(str, shape or ()))}]"


def _change_layout(c: TensorChange) -> str:
    old, new = _layout(c.old_dtype, c.old_shape), _layout(c.new_dtype, c.new_shape)
    if c.status == "added":
        return new
    return old if old == new or c.status == "removed" else f"{old} -> {new}"


def _bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def render_text(d: TensorDiff) -> str:
    """Plain-text tensor report: one line per added/removed/changed tensor, then a summary."""
    lines = []
    for c in d.added:
        lines.append(f"  + {c.name}  {_layout(c.new_dtype, c.new_shape)}  {_bytes(c.new_nbytes)}")
    for c in d.removed:
        lines.append(f"  - {c.name}  {_layout(c.old_dtype, c.old_shape)}  {_bytes(c.old_nbytes)}")
    for c in d.changed:
        lines.append(
            f"  ~ {c.name}  {_change_layout(c)}  "
            f"{_bytes(c.bytes_changed)} of {_bytes(c.new_nbytes)} changed"
        )
    lines.append(
        f"tensors: {len(d.added)} added, {len(d.removed)} removed, {len(d.changed)} changed, "
        f"{len(d.unchanged)} unchanged; {_bytes(d.bytes_changed)} changed"
        + ("; __metadata__ changed" if d.metadata_changed else "")
    )
    return "\n".join(lines)


def render_markdown(d: TensorDiff) -> str:
    """Markdown table of added/removed/changed tensors (unchanged ones are only counted)."""
    out = [
        f"**Tensors:** {len(d.added)} added, {len(d.removed)} removed, {len(d.changed)} changed, "
        f"{len(d.unchanged)} unchanged ({_bytes(d.bytes_changed)} changed)"
        + (" · `__metadata__` changed" if d.metadata_changed else ""),
        "",
    ]
    rows = d.added + d.removed + d.changed
    if rows:
        out += ["| Tensor | Change | dtype / shape | Bytes changed |", "|---|---|---|---:|"]
        for c in sorted(rows, key=lambda c: c.name):
            size = {
                "added": _bytes(c.new_nbytes),
                "removed": _bytes(c.old_nbytes),
            }.get(c.status, f"{_bytes(c.bytes_changed)} of {_bytes(c.new_nbytes)}")
            name = c.name.replace("|", "\\|")
            out.append(f"| `{name}` | {c.status} | {_change_layout(c)} | {size} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def to_dict(d: TensorDiff) -> dict[str, Any]:
    """A JSON-able dict (shapes as lists), plus ``bytes_changed`` and ``has_changes`` totals."""
    out = json.loads(json.dumps(asdict(d)))  # tuples -> lists, as JSON will show them
    out["bytes_changed"] = d.bytes_changed
    out["has_changes"] = d.has_changes
    return out
