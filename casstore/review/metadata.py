"""Params, metrics and environment for a pointer's ``meta`` block.

Everything returned here is deterministic: plain dicts with sorted keys,
numbers kept as numbers, and no timestamps or hostnames, so recording the same
run twice writes a byte-identical pointer.
"""

from __future__ import annotations

import json
import platform
import re
import sys
from collections.abc import Iterable, Mapping
from functools import reduce
from importlib import metadata as importlib_metadata
from os import PathLike
from pathlib import Path
from typing import Any

import yaml

from ..config import deep_merge
from ..pointer import sorted_deep

__all__ = [
    "DEFAULT_ENV_PACKAGES",
    "MetadataError",
    "capture_env",
    "env_from_requirements",
    "load_mapping_file",
    "merge",
    "parse_kv",
    "parse_kv_flags",
    "parse_scalar",
    "sort_nested",
]

#: Packages whose versions matter for reproducing a model; captured when installed.
DEFAULT_ENV_PACKAGES: tuple[str, ...] = (
    "torch",
    "tensorflow",
    "jax",
    "numpy",
    "transformers",
    "scikit-learn",
    "pandas",
)


class MetadataError(ValueError):
    """Params/metrics/env input could not be parsed; the message is one line for the user."""


_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")


def parse_scalar(text: str) -> Any:
    """Turn a flag value into int, float, bool, None or (otherwise) the string itself.

    Follows YAML 1.2 core spellings (``true``/``false``, ``null``/``~``), but
    unlike YAML 1.1 never turns ``yes``/``on`` into booleans or ``1_000`` into a
    number: a surprising type change in a pointer is worse than a string.
    ``nan``/``inf`` stay strings because JSON cannot hold them.
    """
    s = text.strip()
    low = s.lower()
    if low == "true":
        return True
    if low == "false":
        return False
    if low in ("null", "none", "~", ""):
        return None
    if _INT.match(s):
        return int(s)
    if _FLOAT.match(s):
        return float(s)
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return s[1:-1]  # quoted: the user asked for a string, e.g. version="1.0"
    return s


def _set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    if any(not p for p in parts):
        raise MetadataError(f"invalid key {dotted!r}: empty part between dots")
    node = target
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            prefix = ".".join(parts[: i + 1])
            raise MetadataError(
                f"key {dotted!r} conflicts with the value already set for {prefix!r}"
            )
        node = child
    node[parts[-1]] = value


def parse_kv(flag: str) -> tuple[str, Any]:
    """Parse one ``key=value`` flag into ``(key, typed value)``; the key may be dotted."""
    key, sep, value = flag.partition("=")
    key = key.strip()
    if not sep or not key:
        raise MetadataError(f"invalid flag {flag!r}: expected key=value, e.g. lr=0.001")
    return key, parse_scalar(value)


def parse_kv_flags(flags: Iterable[str]) -> dict[str, Any]:
    """Parse ``key=value`` flags into a nested dict: ``a.b=1`` -> ``{"a": {"b": 1}}``.

    Later flags override earlier ones for the same key.
    """
    out: dict[str, Any] = {}
    for flag in flags:
        key, value = parse_kv(flag)
        _set_dotted(out, key, value)
    return sort_nested(out)


def load_mapping_file(path: str | PathLike[str]) -> dict[str, Any]:
    """Load params or metrics from a ``.json``, ``.yaml`` or ``.yml`` file (a mapping at top level).

    Other suffixes are tried as JSON then YAML. YAML is read with the safe
    loader, so a file cannot construct Python objects.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise MetadataError(f"cannot read {p}: {e.strerror or e}") from None
    suffix = p.suffix.lower()
    data: Any
    try:
        if suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            try:
                data = json.loads(text)
            except json.JSONDecodeError:
                data = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        line = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise MetadataError(f"cannot parse {p}: {line}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise MetadataError(f"{p} must hold a mapping of names to values, not {kind}")
    return sort_nested(data)


def merge(*mappings: Mapping[str, Any] | None) -> dict[str, Any]:
    """Deep-merge mappings left to right (later wins; nested dicts merged key by key)."""
    # Nested blocks take string keys before they merge, top-level keys only after: the
    # order this function has always normalised in.
    blocks = [{k: sort_nested(v) for k, v in m.items()} for m in mappings if m]
    return sort_nested(reduce(deep_merge, blocks, {}))


def sort_nested(value: Any) -> Any:
    """Return ``value`` with every dict's keys sorted (as strings), recursively.

    Keys are converted to strings: YAML may produce int keys, and a pointer's
    keys must compare and serialise the same way every time.
    """
    return sorted_deep(value, str_keys=True)


def _norm(name: str) -> str:
    # PEP 503 normalisation, so "scikit_learn" and "Scikit-Learn" match.
    return re.sub(r"[-_.]+", "-", name).lower()


def capture_env(
    packages: Iterable[str] | None = None,
    *,
    requirements: str | PathLike[str] | None = None,
) -> dict[str, str]:
    """Describe the environment: ``python``, ``platform`` and package versions.

    Package versions come from ``requirements`` (a requirements.txt or
    ``pip freeze`` output file) when given, otherwise from the installed
    distributions via importlib.metadata (never importing the packages: importing
    torch or tensorflow costs seconds). Only packages in ``packages`` (default
    :data:`DEFAULT_ENV_PACKAGES`) are recorded; ``packages=["*"]`` with a
    requirements file records all of them. Missing packages are left out.
    """
    wanted = list(DEFAULT_ENV_PACKAGES if packages is None else packages)
    env: dict[str, str] = {
        "platform": f"{platform.system()}-{platform.machine()}".lower(),
        "python": platform.python_version(),
    }
    if requirements is not None:
        pinned = env_from_requirements(requirements)
        if wanted == ["*"]:
            env.update(pinned)
        else:
            by_norm = {_norm(k): (k, v) for k, v in pinned.items()}
            for name in wanted:
                hit = by_norm.get(_norm(name))
                if hit:
                    env[name] = hit[1]
    else:
        for name in wanted:
            try:
                env[name] = importlib_metadata.version(name)
            except importlib_metadata.PackageNotFoundError:
                continue
    return dict(sorted(env.items()))


_REQ_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(===?|@)\s*(\S+)")


def env_from_requirements(path: str | PathLike[str]) -> dict[str, str]:
    """Read pinned versions from a requirements.txt or ``pip freeze`` output file.

    Understands ``name==1.2.3`` (also ``===`` and extras) and ``name @ url``
    (recorded as the URL, because that is what pins it). Comments, options
    (``-r``, ``--index-url``), editable installs and unpinned lines are skipped:
    they do not name a version.
    """
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise MetadataError(f"cannot read {p}: {e.strerror or e}") from None
    out: dict[str, str] = {}
    for raw in lines:
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        line = line.split(";", 1)[0].strip()  # drop environment markers
        m = _REQ_LINE.match(line)
        if m:
            out[m[1]] = m[3]
    return dict(sorted(out.items()))


def python_version() -> str:
    """The running interpreter's version, e.g. ``3.11.7`` (exposed for callers and tests)."""
    return "{}.{}.{}".format(*sys.version_info[:3])
