"""Version schemes: semantic, calendar, sequential and Git hash.

The next version is always derived from the versions already present in the
pointer's history (their maximum), never from a stored counter: two branches
that both bump produce the same version string, so the merge shows a visible
conflict in the pointer instead of silently skipping or duplicating a number.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from datetime import date
from typing import Any

__all__ = [
    "CalendarScheme",
    "GitHashScheme",
    "InvalidVersionError",
    "Scheme",
    "SemanticScheme",
    "SequentialScheme",
    "SCHEMES",
    "get_scheme",
]


class InvalidVersionError(ValueError):
    """A version string (or a request for the next one) is not valid for a scheme.

    ``str(err)`` is a single line meant to be shown to the user as is.
    """


class Scheme(ABC):
    """A version scheme. Stateless; instances come from :func:`get_scheme`."""

    name: str = ""

    @abstractmethod
    def validate(self, v: str) -> str:
        """Return the canonical form of ``v`` or raise :class:`InvalidVersionError`."""

    @abstractmethod
    def sort_key(self, v: str) -> Any:
        """A key ordering versions of this scheme from oldest to newest."""

    @abstractmethod
    def next_version(
        self,
        history: list[str],
        *,
        bump: str | None = None,
        explicit: str | None = None,
        today: date | None = None,
        commit: str | None = None,
    ) -> str:
        """The version to record next, given every version already in the history.

        ``history`` may hold versions in any order, duplicates, and (after a
        scheme change) strings of other schemes; those are ignored.
        """

    # -- helpers shared by the schemes -------------------------------------------------

    def latest(self, history: list[str]) -> str | None:
        """The greatest valid version in ``history``, or None if there is none."""
        valid = self._valid(history)
        return max(valid, key=self.sort_key) if valid else None

    def sorted(self, history: list[str]) -> list[str]:
        """Valid versions of ``history`` in ascending order (invalid ones dropped)."""
        return sorted(self._valid(history), key=self.sort_key)

    def _valid(self, history: list[str]) -> list[str]:
        out = []
        for v in history:
            try:
                out.append(self.validate(v))
            except InvalidVersionError:
                continue
        return out

    def _check_explicit(self, explicit: str, history: list[str]) -> str:
        # An explicit version must be new and must not go backwards: going
        # backwards would make "latest" ambiguous in `cas log`.
        v = self.validate(explicit)
        valid = self._valid(history)
        if v in valid:
            raise InvalidVersionError(f"version {v} already exists in the history")
        latest = self.latest(history)
        if latest is not None and self.sort_key(v) < self.sort_key(latest):
            raise InvalidVersionError(f"version {v} is lower than the latest version {latest}")
        return v

    def _no(self, what: str, value: object) -> None:
        if value is not None:
            raise InvalidVersionError(f"the {self.name} scheme does not take {what}")


_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")


class SemanticScheme(Scheme):
    """``major.minor.patch``; next by ``bump`` (default patch) or an explicit version.

    The first version is ``0.1.0`` for a minor/patch bump or ``1.0.0`` for a
    major bump (the usual semver convention), unless set explicitly.
    Pre-release and build suffixes are not supported: they have no total order
    that teams agree on, and a pointer needs one.
    """

    name = "semantic"
    BUMPS = ("major", "minor", "patch")

    def validate(self, v: str) -> str:
        s = str(v).strip()
        if s.startswith(("v", "V")):
            s = s[1:]
        if not _SEMVER.match(s):
            raise InvalidVersionError(
                f"invalid semantic version {v!r}: expected MAJOR.MINOR.PATCH, e.g. 1.2.0"
            )
        return s

    def sort_key(self, v: str) -> tuple[int, int, int]:
        major, minor, patch = (int(p) for p in self.validate(v).split("."))
        return (major, minor, patch)

    def next_version(
        self,
        history: list[str],
        *,
        bump: str | None = None,
        explicit: str | None = None,
        today: date | None = None,
        commit: str | None = None,
    ) -> str:
        self._no("a date", today)
        self._no("a commit", commit)
        if explicit is not None:
            if bump is not None:
                raise InvalidVersionError("give either a bump or an explicit version, not both")
            return self._check_explicit(explicit, history)
        bump = bump or "patch"
        if bump not in self.BUMPS:
            raise InvalidVersionError(
                f"invalid bump {bump!r}: expected one of {', '.join(self.BUMPS)}"
            )
        latest = self.latest(history)
        if latest is None:
            return "1.0.0" if bump == "major" else "0.1.0"
        major, minor, patch = self.sort_key(latest)
        if bump == "major":
            return f"{major + 1}.0.0"
        if bump == "minor":
            return f"{major}.{minor + 1}.0"
        return f"{major}.{minor}.{patch + 1}"


_CALVER = re.compile(r"^(\d{4})\.(\d{2})\.(\d{2})(?:\.([1-9]\d*))?$")


class CalendarScheme(Scheme):
    """``YYYY.MM.DD``, then ``YYYY.MM.DD.1``, ``.2``... for more versions the same day.

    ``today`` must be given by the caller (no clock here, so results are
    reproducible in tests and the caller decides UTC vs local time). The bare
    date sorts before its ``.1`` suffix. If the history already holds a later
    date than ``today`` (clock skew, time zones), the next version continues
    that date's suffixes so that versions never go backwards.
    """

    name = "calendar"

    def validate(self, v: str) -> str:
        s = str(v).strip()
        m = _CALVER.match(s)
        if m:
            try:
                date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                m = None
        if not m:
            raise InvalidVersionError(
                f"invalid calendar version {v!r}: expected YYYY.MM.DD or YYYY.MM.DD.N, "
                "e.g. 2024.05.31 or 2024.05.31.2"
            )
        return s

    def sort_key(self, v: str) -> tuple[int, int, int, int]:
        m = _CALVER.match(self.validate(v))
        assert m is not None
        return (int(m[1]), int(m[2]), int(m[3]), int(m[4] or 0))

    def next_version(
        self,
        history: list[str],
        *,
        bump: str | None = None,
        explicit: str | None = None,
        today: date | None = None,
        commit: str | None = None,
    ) -> str:
        self._no("a bump", bump)
        self._no("a commit", commit)
        if explicit is not None:
            return self._check_explicit(explicit, history)
        if today is None:
            raise InvalidVersionError("the calendar scheme needs today's date")
        # Versions must only grow. If a teammate in a later time zone already
        # recorded "tomorrow", continue that day's suffixes instead of going back.
        day = (today.year, today.month, today.day)
        keys = [self.sort_key(v) for v in self._valid(history)]
        day = max([day] + [k[:3] for k in keys])
        base = "{:04d}.{:02d}.{:02d}".format(*day)
        same_day = [k[3] for k in keys if k[:3] == day]
        if not same_day:
            return base
        return f"{base}.{max(same_day) + 1}"


class SequentialScheme(Scheme):
    """``1``, ``2``, ``3``...: one more than the highest version in the history."""

    name = "sequential"

    def validate(self, v: str) -> str:
        s = str(v).strip()
        if not re.fullmatch(r"[1-9]\d*", s):
            raise InvalidVersionError(
                f"invalid sequential version {v!r}: expected a positive whole number, e.g. 3"
            )
        return s

    def sort_key(self, v: str) -> int:
        return int(self.validate(v))

    def next_version(
        self,
        history: list[str],
        *,
        bump: str | None = None,
        explicit: str | None = None,
        today: date | None = None,
        commit: str | None = None,
    ) -> str:
        self._no("a bump", bump)
        self._no("a date", today)
        self._no("a commit", commit)
        if explicit is not None:
            return self._check_explicit(explicit, history)
        latest = self.latest(history)
        return "1" if latest is None else str(int(latest) + 1)


class GitHashScheme(Scheme):
    """The short hash (7 to 40 lower-case hex digits) of the commit that introduced the content.

    Hashes have no intrinsic order: ``sort_key`` is the hash itself, so callers
    that need chronological order (``cas log``) must order by Git history, not
    by this key. ``next_version`` needs the commit; it is shortened to
    :attr:`SHORT` digits.
    """

    name = "githash"
    SHORT = 7

    def validate(self, v: str) -> str:
        s = str(v).strip().lower()
        if not re.fullmatch(r"[0-9a-f]{7,40}", s):
            raise InvalidVersionError(
                f"invalid Git hash version {v!r}: expected 7 to 40 hex digits, e.g. 3f9c2ab"
            )
        return s

    def sort_key(self, v: str) -> str:
        return self.validate(v)

    def next_version(
        self,
        history: list[str],
        *,
        bump: str | None = None,
        explicit: str | None = None,
        today: date | None = None,
        commit: str | None = None,
    ) -> str:
        self._no("a bump", bump)
        self._no("a date", today)
        if explicit is not None:
            commit = explicit
        if commit is None:
            raise InvalidVersionError(
                "the githash scheme needs the commit that introduced the content"
            )
        v = self.validate(commit)[: self.SHORT]
        if any(h.startswith(v) or v.startswith(h) for h in self._valid(history)):
            raise InvalidVersionError(f"version {v} already exists in the history")
        return v


SCHEMES: dict[str, type[Scheme]] = {
    s.name: s for s in (SemanticScheme, CalendarScheme, SequentialScheme, GitHashScheme)
}


def get_scheme(name: str) -> Scheme:
    """Return the scheme called ``name`` (semantic, calendar, sequential, githash).

    Raises :class:`InvalidVersionError` (a ValueError) for an unknown name.
    """
    try:
        return SCHEMES[name.strip().lower()]()
    except KeyError:
        raise InvalidVersionError(
            f"unknown version scheme {name!r}: expected one of {', '.join(SCHEMES)}"
        ) from None
