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
    packs_built: int = 0  # new packs built from objects of partly-present local packs
    bytes_uploaded: int = 0
    resent_after_gc: int = 0  # objects sent again because a collector condemned their pack
    root_record: str | None = None  # name of the root record this push wrote
    missing: list[str] = field(default_factory=list)  # pointers whose data is nowhere
    warnings: list[str] = field(default_factory=list)


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
