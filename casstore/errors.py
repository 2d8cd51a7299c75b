"""The exception hierarchy: every error a user can cause or meet through the CLI, ``Repo``
or ``casstore.open`` is a CasError.

The pure building blocks in ``casstore.review`` raise ValueError subclasses of their
own (``MetadataError``, ``InvalidVersionError``, ``RuleError``, ``TableError``,
``SafetensorsError``); ``ops/`` and the review modules over Git and the store catch the ones
they meet and raise a CasError or report a note instead. ``casstore.remote.fs`` signals a
short read (``ShortRead``, retried) and a server that ignores Range requests
(``ServerIgnoredRange``) with exceptions of its own, which its ``Remote.call`` turns into a
``RemoteError``; a remote's storage library raises its own types, classified there the same
way.

The CLI prints ``str(error)`` as one line and exits with ``error.exit_code``; nothing
below the CLI prints or exits, so the library stays usable on its own.
"""

from __future__ import annotations


class CasError(Exception):
    """Base of every casstore error; the message is one line saying what to do."""

    exit_code = 1


class UsageError(CasError):
    """The command was called wrongly (bad option values, conflicting flags)."""

    exit_code = 2


class NotARepoError(CasError):
    """No casstore repository was found where one was needed."""


class PointerError(CasError):
    """A pointer file is malformed, hostile or unreadable."""


class PathError(CasError):
    """A path is outside the repository, or clashes with a tracked path."""


class ObjectMissingError(CasError):
    """An object a pointer needs is not in the cache (or the remote)."""


class CorruptObjectError(CasError):
    """Stored bytes do not match their id, or a store file is malformed."""


class WorkspaceConflictError(CasError):
    """A workspace file holds changes that an operation would overwrite."""


class LockTimeoutError(CasError):
    """Another cas process held the store lock for too long."""


class RemoteError(CasError):
    """A remote could not be reached, read or written."""


class PackGoneError(RemoteError):
    """A pack an index named was not there when read (damage, or a collector deleted it
    after the index was read: reading the index again tells which)."""


class ConfigError(CasError):
    """The configuration is malformed or names something unknown."""
