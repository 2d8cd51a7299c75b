"""Root records and condemnation records: what makes shared storage safe to collect.

Both are small immutable JSON files with unique names, never rewritten:

- A **root record** (``records/roots/``) is written by every push after its data: the
  pointer roots the push made reachable, the Git commit and branch it came from, who and
  when. The collector keeps what root records reach for the retention window, so data a
  teammate pushed but has not yet pushed to Git (or pushed on a branch this clone never
  fetched) is live.
- A **condemnation record** (``records/condemned/``) is the collector's first phase: the
  packs it found dead and the names of the root records it had listed when it decided. A
  later run, at least the grace period after, deletes those packs only if they are still
  dead, counting every root record the first run had not seen. Pushes never rely on
  objects held only in condemned packs: they upload them again.

Everything read back is bounded by the listed size before it is read and validated.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import CorruptObjectError
from ..hashing import parse_hex_id
from .backend import Entry
from .graph import Root
from .store import NAME_RE, Store

ROOTS = "records/roots"
CONDEMNED = "records/condemned"
FORMAT = 1
MAX_RECORD = 64 << 20  # bytes; a record naming a million pointers is ~150 MB, refused
KINDS = ("file", "dir")
T = TypeVar("T")


@dataclass(frozen=True)
class RootRecord:
    name: str
    time: float
    who: str
    commit: str | None
    branch: str | None
    roots: tuple[Root, ...]


@dataclass(frozen=True)
class Condemnation:
    name: str
    time: float
    who: str
    packs: tuple[str, ...]
    seen: frozenset[str] = field(default_factory=frozenset)  # root records listed then


def who_am_i() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


def new_name(now: float | None = None) -> str:
    """A unique, time-ordered record name: milliseconds since the epoch, then randomness."""
    ms = int((time.time() if now is None else now) * 1000)
    return f"{ms:015d}-{uuid.uuid4().hex[:16]}"


def _valid_name(name: str) -> bool:
    head, _, tail = name.partition("-")
    return len(head) == 15 and head.isdigit() and len(tail) == 16 and \
        all(c in "0123456789abcdef" for c in tail)


def _listing(store: Store, folder: str) -> dict[str, Entry]:
    out = {}
    for e in store.backend.list(folder):
        base = e.key.rsplit("/", 1)[-1]
        if e.key.count("/") == folder.count("/") + 1 and base.endswith(".json") \
                and _valid_name(base[:-5]):
            out[base[:-5]] = e
    return dict(sorted(out.items()))


def _read_json(store: Store, key: str, size: int | None, what: str) -> dict[str, Any]:
    if size is not None and size > MAX_RECORD:
        raise CorruptObjectError(f"{what} in {store.label} is {size} bytes (over the "
                                 f"{MAX_RECORD >> 20} MiB limit); run 'cas fsck --remote'")
    data = store.read_small(key, MAX_RECORD, size)
    try:
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("cas_record") != FORMAT:
            raise ValueError("not a casstore record")
    except ValueError as exc:
        raise CorruptObjectError(f"{what} in {store.label} is not readable ({exc}); run "
                                 "'cas fsck --remote'") from None
    return doc


def _write(store: Store, folder: str, kind: str, now: float | None, **fields: object) -> str:
    """Publish a new record; returns its name."""
    now = time.time() if now is None else now
    name = new_name(now)
    doc = {"cas_record": FORMAT, "type": kind, "time": now, "who": who_am_i(), **fields}
    store.backend.write(f"{folder}/{name}.json",
                        json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())
    return name


def _parse(store: Store, folder: str, name: str, size: int | None, what: str,
           build: Callable[[dict[str, Any]], T]) -> T:
    """Read, bound and validate one record; ``build`` turns its JSON into the result."""
    doc = _read_json(store, f"{folder}/{name}.json", size, what)
    try:
        return build(doc)
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptObjectError(f"{what} in {store.label} is malformed ({exc}); run "
                                 "'cas fsck --remote'") from None


# root records -----------------------------------------------------------------------
def write_root_record(store: Store, roots: Iterable[Root], *, commit: str | None = None,
                      branch: str | None = None, now: float | None = None) -> str:
    """Publish a root record; called after the data it names is on the store."""
    uniq = {(r.digest, r.kind): r for r in roots}
    return _write(store, ROOTS, "roots", now, commit=commit, branch=branch,
                  roots=[uniq[k].to_dict() for k in sorted(uniq)])


def list_root_records(store: Store) -> dict[str, Entry]:
    return _listing(store, ROOTS)


def read_root_record(store: Store, name: str, size: int | None = None) -> RootRecord:
    def build(doc: dict[str, Any]) -> RootRecord:
        roots = []
        for r in doc["roots"]:
            if r["kind"] not in KINDS or not isinstance(r["size"], int) or r["size"] < 0:
                raise ValueError("bad root")
            roots.append(Root(parse_hex_id(r["id"]), r["kind"], r["size"], str(r["name"])))
        return RootRecord(name, float(doc["time"]), str(doc.get("who", "")),
                          _opt(doc.get("commit")), _opt(doc.get("branch")), tuple(roots))

    return _parse(store, ROOTS, name, size, f"root record {name}", build)


def delete_root_record(store: Store, name: str) -> None:
    store.backend.delete(f"{ROOTS}/{name}.json")


def _opt(v: object) -> str | None:
    return None if v is None else str(v)


# condemnations ----------------------------------------------------------------------
def write_condemnation(store: Store, packs: Iterable[str], seen: Iterable[str], *,
                       now: float | None = None) -> str:
    return _write(store, CONDEMNED, "condemned", now, packs=sorted(packs), seen=sorted(seen))


def list_condemnations(store: Store) -> dict[str, Entry]:
    return _listing(store, CONDEMNED)


def read_condemnation(store: Store, name: str, size: int | None = None) -> Condemnation:
    def build(doc: dict[str, Any]) -> Condemnation:
        packs = tuple(str(p) for p in doc["packs"])
        if not all(NAME_RE.match(p) for p in packs):
            raise ValueError("bad pack name")
        return Condemnation(name, float(doc["time"]), str(doc.get("who", "")), packs,
                            frozenset(str(s) for s in doc["seen"]))

    return _parse(store, CONDEMNED, name, size, f"condemnation record {name}", build)


def read_condemnations(store: Store) -> list[Condemnation]:
    """Every condemnation record listed now. One that goes between the listing and its read
    was executed by a collector, which deletes a record only after the packs it named and
    their index rows: a reader that looks at the index next sees what went."""
    out = []
    for n, e in list_condemnations(store).items():
        try:
            out.append(read_condemnation(store, n, e.size))
        except FileNotFoundError:
            continue
    return out


def condemned_packs(store: Store) -> set[str]:
    """Every pack some condemnation record names: not to be relied on by a push."""
    return {p for c in read_condemnations(store) for p in c.packs}


def delete_condemnation(store: Store, name: str) -> None:
    store.backend.delete(f"{CONDEMNED}/{name}.json")
