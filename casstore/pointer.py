"""Pointer files: the small YAML committed to Git beside tracked data.

Pointers are untrusted input (they arrive through pull requests): they are size-limited,
parsed without YAML aliases or custom tags, schema-checked, and their ``path`` must stay
within the pointer's folder. Output is deterministic: known keys in a fixed order, then
unknown keys (kept, never dropped) sorted, so identical content gives identical bytes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .conflicts import conflict_message, find_conflict_markers
from .errors import PointerError
from .hashing import parse_hex_id

SUFFIX = ".cas"
FORMAT_VERSION = 1
MAX_POINTER_BYTES = 1 << 20
KNOWN_ORDER = ("cas", "path", "kind", "size", "xxh128", "sha256", "chunks", "files",
               "executable", "mode", "follow_symlinks", "entries", "meta", "source")
# 'mode' records a file's permission class only when it is not the default one (readable
# by all: 0644, or 0755 with 'executable'): a private file is 0600 (0700 executable).
# Finer bits (group-writable, 0640) follow each machine's umask, as Git does, so that
# teammates with different umasks write byte-identical pointers.
PRIVATE_MODES = ("0600", "0700")
MAX_SIZE = 1 << 62


class NotAPointerError(PointerError):
    """A ``*.cas`` file that does not even look like a pointer (not YAML, not a mapping,
    no ``cas:`` key): possibly someone's unrelated file, which ``.casignore`` can exclude."""


@dataclass
class Pointer:
    """One pointer file's content."""

    path: str  # the data's name, relative to the pointer's folder
    kind: str  # "file" or "dir"
    size: int
    digest: bytes
    chunks: int | None = None
    files: int | None = None
    sha256: str | None = None
    executable: bool = False
    mode: str | None = None  # "0600"/"0700" for a private file; None = the default class
    follow_symlinks: bool = False  # dir: links inside were read as what they point to
    entries: list[dict[str, Any]] | None = None
    meta: dict[str, Any] | None = None
    source: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"cas": FORMAT_VERSION, "path": self.path, "kind": self.kind,
                             "size": self.size, "xxh128": self.digest.hex()}
        if self.sha256 is not None:
            d["sha256"] = self.sha256
        if self.kind == "file" and self.chunks is not None:
            d["chunks"] = self.chunks
        if self.kind == "dir" and self.files is not None:
            d["files"] = self.files
        if self.executable:
            d["executable"] = True
        if self.kind == "file" and self.mode is not None:
            d["mode"] = self.mode
        if self.kind == "dir" and self.follow_symlinks:
            d["follow_symlinks"] = True
        if self.entries is not None:
            d["entries"] = self.entries
        if self.meta:
            d["meta"] = sorted_deep(self.meta)
        if self.source:
            d["source"] = sorted_deep(self.source)
        for k in sorted(self.extra):
            d[k] = self.extra[k]
        return d

    def dumps(self) -> str:
        return dump_yaml(self.to_dict())


def sorted_deep(value: Any, *, str_keys: bool = False) -> Any:
    """``value`` with every mapping's keys sorted (compared as strings), recursively, lists
    and tuples as lists: nested blocks serialise the same way every time. ``str_keys`` also
    turns the keys into strings (YAML may give int keys)."""
    if isinstance(value, Mapping):
        return {(str(k) if str_keys else k): sorted_deep(value[k], str_keys=str_keys)
                for k in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [sorted_deep(v, str_keys=str_keys) for v in value]
    return value


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_presenter)


def dump_yaml(d: dict[str, Any]) -> str:
    return yaml.dump(d, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=100)


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors/aliases, which enable 'billion laughs' pointers."""

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            raise PointerError("YAML aliases are not allowed in pointer files")
        event = self.peek_event()
        if getattr(event, "anchor", None):
            raise PointerError("YAML anchors are not allowed in pointer files")
        return super().compose_node(parent, index)


def parse_pointer_text(text: str, name: str) -> Pointer:
    """Parse and validate pointer text; ``name`` is used in error messages."""
    if find_conflict_markers(text):
        raise PointerError(conflict_message(name))
    if "\x00" in text:
        raise NotAPointerError(f"{name} contains NUL bytes; restore it from Git")
    try:
        data = yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - SafeLoader subclass
    except PointerError as exc:
        raise PointerError(f"{name}: {exc}") from None
    except RecursionError:
        # PyYAML composes recursively: thousands of nested brackets exhaust the stack.
        raise PointerError(f"{name} is nested too deeply to be a pointer file; restore it "
                           "from Git") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise NotAPointerError(f"{name} is not valid YAML{where}; restore it from Git "
                           "or re-run 'cas add'") from None
    if not isinstance(data, dict):
        raise NotAPointerError(f"{name} is not a casstore pointer (expected a YAML mapping)")
    return pointer_from_dict(data, name)


def _need(data: dict[str, Any], key: str, typ: type | tuple[type, ...], name: str) -> Any:
    if key not in data:
        raise PointerError(f"{name} lacks the '{key}' key; re-run 'cas add' on the data")
    v = data[key]
    if not isinstance(v, typ) or (isinstance(v, bool) and typ is int):
        raise PointerError(f"{name}: '{key}' has the wrong type ({type(v).__name__})")
    return v


def _count(data: dict[str, Any], key: str, name: str) -> int | None:
    if key not in data:
        return None
    v = _need(data, key, int, name)
    if not 0 <= v <= MAX_SIZE:
        raise PointerError(f"{name}: '{key}' is out of range")
    return v


RESERVED_NAMES = (".git", ".cas")  # restoring data there would rewrite Git's or our metadata


def check_data_name(path: str, name: str) -> str:
    """A pointer's ``path`` names a sibling: no folders, no '..', nothing absolute, and
    neither Git's or casstore's metadata folder nor a pointer file."""
    if not path or path in (".", "..") or "/" in path or "\\" in path or "\x00" in path \
            or os.path.isabs(path):
        raise PointerError(f"{name}: path {path!r:.80} must name an entry beside the pointer "
                           "(no '/', '..' or absolute paths)")
    if path.lower() in RESERVED_NAMES or path.endswith(SUFFIX):
        raise PointerError(f"{name}: path {path!r:.80} names a metadata folder or a pointer "
                           "file, which tracked data may not replace")
    return path


def pointer_from_dict(data: dict[str, Any], name: str) -> Pointer:
    version = data.get("cas")
    if version is None:
        raise NotAPointerError(f"{name} is not a casstore pointer (no 'cas:' format key)")
    if not isinstance(version, int) or isinstance(version, bool):
        raise PointerError(f"{name}: 'cas' format version must be a number")
    if version > FORMAT_VERSION:
        raise PointerError(f"{name} uses pointer format {version}, newer than this cas "
                           f"understands ({FORMAT_VERSION}); upgrade casstore")
    if version < 1:
        raise PointerError(f"{name}: unknown pointer format {version}")
    path = check_data_name(_need(data, "path", str, name), name)
    kind = _need(data, "kind", str, name)
    if kind not in ("file", "dir"):
        raise PointerError(f"{name}: kind must be 'file' or 'dir', not {kind!r:.40}")
    size = _count(data, "size", name)
    if size is None:
        raise PointerError(f"{name} lacks the 'size' key; re-run 'cas add' on the data")
    try:
        digest = parse_hex_id(_need(data, "xxh128", str, name))
    except ValueError as exc:
        raise PointerError(f"{name}: xxh128 is invalid ({exc})") from None
    sha = data.get("sha256")
    if sha is not None and (not isinstance(sha, str) or len(sha) != 64
                            or any(c not in "0123456789abcdef" for c in sha)):
        raise PointerError(f"{name}: sha256 must be 64 lower-case hex digits")
    meta = data.get("meta")
    if meta is not None and not isinstance(meta, dict):
        raise PointerError(f"{name}: 'meta' must be a mapping")
    source = data.get("source")
    if source is not None and not isinstance(source, dict):
        raise PointerError(f"{name}: 'source' must be a mapping")
    entries = data.get("entries")
    if entries is not None and not (isinstance(entries, list)
                                    and all(isinstance(e, dict) for e in entries)):
        raise PointerError(f"{name}: 'entries' must be a list of mappings")
    if meta is not None:
        _check_depth(meta, name)
    executable = data.get("executable", False)
    if not isinstance(executable, bool):
        raise PointerError(f"{name}: 'executable' must be true or false")
    mode = data.get("mode")
    if mode is not None and mode not in PRIVATE_MODES:
        raise PointerError(f"{name}: 'mode' must be one of {', '.join(PRIVATE_MODES)} "
                           "(quoted), or absent for the default permissions")
    follow = data.get("follow_symlinks", False)
    if not isinstance(follow, bool):
        raise PointerError(f"{name}: 'follow_symlinks' must be true or false")
    extra = {k: v for k, v in data.items() if k not in KNOWN_ORDER}
    return Pointer(path=path, kind=kind, size=size, digest=digest,
                   chunks=_count(data, "chunks", name), files=_count(data, "files", name),
                   sha256=sha, executable=executable, mode=mode, follow_symlinks=follow,
                   entries=entries, meta=meta,
                   source=source, extra=extra)


def _check_depth(v: Any, name: str, depth: int = 0) -> None:
    # Deep nesting is a way to exhaust the stack of whatever later walks 'meta'.
    if depth > 32:
        raise PointerError(f"{name}: 'meta' is nested too deeply")
    if isinstance(v, dict):
        for x in v.values():
            _check_depth(x, name, depth + 1)
    elif isinstance(v, list):
        for x in v:
            _check_depth(x, name, depth + 1)


def read_pointer(path: Path, display: str | None = None) -> Pointer:
    name = display or str(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_POINTER_BYTES + 1)
    except FileNotFoundError:
        raise PointerError(f"{name} does not exist") from None
    except IsADirectoryError:
        raise PointerError(f"{name} is a folder, not a pointer file") from None
    return parse_pointer_bytes(raw, name)


def parse_pointer_bytes(raw: bytes, name: str) -> Pointer:
    """Parse a pointer's raw bytes (from disk or from Git), size-limited and UTF-8 checked."""
    if len(raw) > MAX_POINTER_BYTES:
        raise NotAPointerError(f"{name} is larger than 1 MiB; pointer files are small YAML files")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise NotAPointerError(f"{name} is not UTF-8 text; restore it from Git") from None
    return parse_pointer_text(text, name)


def pointer_path_for(data_path: Path) -> Path:
    return data_path.with_name(data_path.name + SUFFIX)


def data_path_for(pointer_path: Path, ptr: Pointer) -> Path:
    return pointer_path.with_name(ptr.path)
