"""The collector's lease: one gc at a time per store, no coordinator.

A lease is a file ``locks/gc.<generation>.lease`` holding who took it and until when.
Taking it means creating the next generation with a conditional write (``O_EXCL``/link on
a local directory, ``If-None-Match: *`` on S3): of two collectors that saw the same
generation, exactly one creates the next. A live lease held by someone else stops a new
collector with one line naming the holder; an expired one (its holder was killed) is
superseded by the next generation, never deleted by anyone but a successor.

On backends without a conditional write the new lease is written plainly and then read
back and the listing checked for a rival; two collectors starting in the same instant could
both pass, which docs/remotes.md and ``cas gc --remote`` say.

Pushes, fetches and readers never look at the lease: they never wait for a collector.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

from ..errors import CasError
from .records import who_am_i
from .store import Store

LOCKS = "locks"
# Seconds. A holder renews its lease as it goes, so only a killed collector's lease is ever
# waited out, for at most this long.
DEFAULT_TTL = 3600.0
MAX_LEASE = 1 << 16


class LeaseHeldError(CasError):
    """Another collector holds the store's lease."""


@dataclass
class Lease:
    store: Store
    generation: int
    token: str
    who: str
    taken: float
    expires: float
    conditional: bool

    @property
    def key(self) -> str:
        return _key(self.generation)

    def check(self, margin: float = 60.0) -> None:
        """Before a destructive step: renew the lease when a quarter of it is used, and
        raise if it ran out (a collector that outlived it may have been superseded and
        must not delete anything more)."""
        now = time.time()
        if now > self.expires - margin:
            raise CasError(f"gc on {self.store.label} ran past its lease; it stopped before "
                           "deleting more. Run 'cas gc' again")
        ttl = self.expires - self.taken
        if now - self.taken < ttl / 4:
            return
        # The next generation, created like any lease: only we can, while ours is live.
        body = _body(self.who, self.token, now, now + ttl)
        if not self.store.backend.create(_key(self.generation + 1), body):
            doc = _read(self.store, self.generation + 1) or {}
            if doc.get("token") != self.token:
                raise CasError(f"gc on {self.store.label} lost its lease to "
                               f"{_holder(doc)}; it stopped before deleting more")
        old = self.key
        self.generation += 1
        self.taken, self.expires = now, now + ttl
        self.store.backend.delete(old)

    def release(self) -> None:
        self.store.backend.delete(self.key)


def _key(gen: int) -> str:
    return f"{LOCKS}/gc.{gen:012d}.lease"


def _generations(store: Store) -> list[int]:
    out = []
    for e in store.backend.list(LOCKS):
        base = e.key.rsplit("/", 1)[-1]
        mid = base[3:-6] if base.startswith("gc.") and base.endswith(".lease") else ""
        if len(mid) == 12 and mid.isdigit():
            out.append(int(mid))
    return sorted(out)


def _read(store: Store, gen: int) -> dict[str, object] | None:
    try:
        doc = json.loads(store.read_small(_key(gen), MAX_LEASE))
        return doc if isinstance(doc, dict) else {}
    except FileNotFoundError:
        return None
    except (ValueError, CasError):
        return {}  # unreadable: treated as held until it expires by its file's age


def _body(who: str, token: str, taken: float, expires: float) -> bytes:
    return json.dumps({"who": who, "token": token, "taken": taken, "expires": expires},
                      sort_keys=True).encode()


def _holder(doc: dict[str, object]) -> str:
    return str(doc.get("who") or "another collector")


def acquire(store: Store, *, ttl: float = DEFAULT_TTL, now: float | None = None) -> Lease:
    """Take the lease or raise LeaseHeldError naming the holder."""
    now = time.time() if now is None else now
    gens = _generations(store)
    top = gens[-1] if gens else 0
    if gens:
        doc = _read(store, top)
        if doc is not None:
            expires = doc.get("expires")
            if not isinstance(expires, (int, float)) or expires > now:
                until = time.strftime("%Y-%m-%d %H:%M:%S UTC",
                                      time.gmtime(float(expires))) \
                    if isinstance(expires, (int, float)) else "it expires"
                raise LeaseHeldError(
                    f"another gc is running on {store.label} ({_holder(doc)}, lease until "
                    f"{until}); wait for it to finish (a killed one's lease runs out then), "
                    "then run gc again")
    token = uuid.uuid4().hex
    who = who_am_i()
    lease = Lease(store, top + 1, token, who, now, now + ttl,
                  store.backend.conditional_create)
    body = _body(who, token, now, now + ttl)
    if not store.backend.create(lease.key, body):
        doc = _read(store, top + 1) or {}
        # A token of ours means our own write, whose answer was lost and retried.
        if doc.get("token") != token:
            raise LeaseHeldError(
                f"another gc started on {store.label} just now ({_holder(doc)}); wait for it "
                "to finish, then run gc again")
    if not lease.conditional:
        # No conditional write: read back and look for a rival generation.
        doc = _read(store, lease.generation) or {}
        later = [g for g in _generations(store) if g > lease.generation]
        if doc.get("token") != token or later:
            if doc.get("token") == token:
                lease.release()
            raise LeaseHeldError(f"another gc started on {store.label} just now; wait for it "
                                 "to finish, then run gc again")
    for g in gens:  # superseded generations (expired or released)
        store.backend.delete(_key(g))
    return lease
