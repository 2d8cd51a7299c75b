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
    # Files found as tracked, or whole folders (a trailing "/") whose tree digest matched:
    # an unchanged million-file folder is one entry, not a million.
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
    """One collection of a store (the cache or a remote)."""

    store: str
    dry_run: bool
    grace_hours: float
    retention_days: float
    conditional_lease: bool  # the lease was taken with a conditional write
    packs_condemned: list[str] = field(default_factory=list)  # phase one of this run
    packs_deleted: list[str] = field(default_factory=list)  # condemned earlier, still dead
    packs_rescued: list[str] = field(default_factory=list)  # condemned, but needed again
    packs_repacked: list[str] = field(default_factory=list)  # live objects copied out
    bytes_freed: int = 0
    packs_kept: int = 0
    bytes_kept: int = 0
    objects_kept: int = 0  # index rows holding a live object
    objects_dead: int = 0  # index rows no root reaches
    condemnations_pending: int = 0  # earlier condemnations still inside the grace period
    root_records: int = 0
    root_records_live: int = 0  # within the retention window
    root_records_deleted: int = 0
    unindexed_packs: int = 0
    unindexed_reindexed: int = 0
    index_files_replaced: int = 0
    temp_files_deleted: int = 0
    clones: list[str] = field(default_factory=list)  # clones whose pointers were kept
    clones_dropped: list[str] = field(default_factory=list)  # registrations of gone clones
    warnings: list[str] = field(default_factory=list)


@dataclass
class FsckResult(_Jsonable):
    """One verification of a store (the cache or a remote)."""

    store: str = ""
    index_files: int = 0
    packs_checked: int = 0
    objects_checked: int = 0
    bytes_checked: int = 0
    damaged: list[str] = field(default_factory=list)  # one line per damaged object/pack
    warnings: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    condemned_packs: list[str] = field(default_factory=list)  # awaiting deletion by gc
    root_records: int = 0
    condemnation_records: int = 0

    @property
    def ok(self) -> bool:
        return not self.damaged
