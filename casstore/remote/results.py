"""Typed results of remote operations (printed or JSON-dumped by the CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..results import CheckoutResult, _Jsonable


@dataclass
class PushResult(_Jsonable):
    remote: str
    objects_needed: int = 0  # objects the pushed pointers reference
    objects_present: int = 0  # of those, already on the remote
    objects_sent: int = 0
    packs_uploaded: int = 0  # local packs sent whole
    packs_repacked: int = 0  # new packs built from objects of partly-present local packs
    bytes_uploaded: int = 0
    missing: list[str] = field(default_factory=list)  # pointers whose data is nowhere


@dataclass
class FetchResult(_Jsonable):
    remote: str
    objects_needed: int = 0
    objects_fetched: int = 0
    bytes_downloaded: int = 0
    ranges: int = 0  # range requests made
    missing: list[str] = field(default_factory=list)  # one line per pointer lacking data


@dataclass
class PullResult(_Jsonable):
    fetch: FetchResult
    checkout: CheckoutResult


@dataclass
class RemoteGcResult(_Jsonable):
    remote: str
    dry_run: bool
    grace_hours: float
    packs_deleted: list[str] = field(default_factory=list)
    packs_repacked: list[str] = field(default_factory=list)  # live objects moved, pack deleted
    bytes_freed: int = 0
    packs_kept: int = 0
    bytes_kept: int = 0
    packs_too_young: int = 0  # dead, but younger than the grace period
    unindexed_deleted: int = 0  # packs without an index (interrupted pushes), past grace
    index_files_replaced: int = 0
    temp_files_deleted: int = 0


@dataclass
class RemoteFsckResult(_Jsonable):
    remote: str
    packs_checked: int = 0
    objects_checked: int = 0
    bytes_checked: int = 0
    index_files: int = 0
    damaged: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.damaged
