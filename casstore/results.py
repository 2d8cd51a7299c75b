"""Typed results returned by Repo operations (and printed or JSON-dumped by the CLI)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


class _Jsonable:
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]


@dataclass
class AddedItem(_Jsonable):
    path: str
    pointer: str
    kind: str
    size: int
    digest: str
    chunks: int | None
    files: int | None
    new_bytes: int
    changed: bool


@dataclass
class AddResult(_Jsonable):
    items: list[AddedItem] = field(default_factory=list)

    @property
    def new_bytes(self) -> int:
        return sum(i.new_bytes for i in self.items)


@dataclass
class StatusEntry(_Jsonable):
    path: str
    pointer: str
    kind: str
    states: list[str]  # subset of: modified, missing, not in cache, not pushed; [] = clean
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.states


@dataclass
class CheckoutResult(_Jsonable):
    restored: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # one-line messages
    bytes_written: int = 0


@dataclass
class LsEntry(_Jsonable):
    path: str
    pointer: str
    kind: str
    size: int
    digest: str
    chunks: int | None
    files: int | None
    version: str | None


@dataclass
class GcResult(_Jsonable):
    dry_run: bool
    packs_deleted: int = 0
    packs_repacked: int = 0
    objects_removed: int = 0
    bytes_freed: int = 0
    objects_kept: int = 0
    bytes_kept: int = 0
    temp_files_removed: int = 0


@dataclass
class FsckResult(_Jsonable):
    packs_checked: int = 0
    objects_checked: int = 0
    bytes_checked: int = 0
    damaged: list[str] = field(default_factory=list)  # one line per damaged object/pack
    warnings: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.damaged
