"""Repository configuration: committed ``.cas/config.yaml`` plus git-ignored
``.cas/config.local.yaml`` (secrets, machine-specific paths), merged key by key."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .atomic import atomic_write_text
from .errors import ConfigError

DEFAULTS: dict[str, Any] = {
    "core": {"compression": "auto", "fsync": True, "sha256": False},
    "chunking": {"algorithm": "fastcdc2020", "avg": 65536, "min": 16384, "max": 262144},
}


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``over``, nested mappings merged key by key (copies, never views)."""
    out = copy.deepcopy(dict(base))
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _load(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid YAML ({str(exc).splitlines()[0]}); fix or "
                          "restore it from Git") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must be a YAML mapping")
    return data


class Config:
    """The merged view plus the two files it came from, for editing one of them."""

    def __init__(self, cas_dir: Path) -> None:
        self.shared_path = cas_dir / "config.yaml"
        self.local_path = cas_dir / "config.local.yaml"
        self.reload()

    def reload(self) -> None:
        self.shared = _load(self.shared_path)
        self.local = _load(self.local_path)
        self.data = deep_merge(deep_merge(DEFAULTS, self.shared), self.local)

    def get(self, dotted: str, default: Any = None) -> Any:
        cur: Any = self.data
        for part in dotted.split("."):
            if not isinstance(cur, dict) or part not in cur:
                return default
            cur = cur[part]
        return cur

    def file_data(self, local: bool) -> dict[str, Any]:
        return self.local if local else self.shared

    def save(self, local: bool) -> None:
        path = self.local_path if local else self.shared_path
        text = yaml.safe_dump(self.file_data(local), sort_keys=True, default_flow_style=False)
        atomic_write_text(path, text)
        self.reload()

    def set(self, dotted: str, value: Any, *, local: bool = False) -> None:
        cur = self.file_data(local)
        parts = dotted.split(".")
        for part in parts[:-1]:
            nxt = cur.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"config key {part!r} is not a section")
            cur = nxt
        cur[parts[-1]] = value

    def unset(self, dotted: str, *, local: bool = False) -> bool:
        cur = self.file_data(local)
        parts = dotted.split(".")
        path = [cur]
        for part in parts[:-1]:
            cur = cur.get(part)
            if not isinstance(cur, dict):
                return False
            path.append(cur)
        if cur.pop(parts[-1], None) is None:
            return False
        # Drop sections left empty, so the committed file shows no `cache: {}` residue.
        for parent, part in zip(reversed(path[:-1]), reversed(parts[:-1]), strict=True):
            if parent.get(part) == {}:
                del parent[part]
        return True
