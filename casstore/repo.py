"""``casstore.Repo``: the library's facade, one method per ``cas`` command.

A ``Repo`` is a ``Project`` (``casstore.project``: the root, ``.cas`` folder, config,
cache, paths and pointers) with the commands on top; each method hands the project to the
one function that does the work (an operation of ``casstore.ops`` or ``casstore.importing``;
``casstore.githooks``, ``casstore.remote.config``, ``casstore.review.textconv`` or
``casstore.api.open`` for installing hooks, remotes, the diff driver and reading content)
and returns its result. The CLI only parses arguments, opens a ``Repo``, calls a method
and prints the result (the import-linter contract forbids it the operations), so
everything it does the library does too.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .atomic import atomic_write_text
from .errors import PathError
from .gitutil import NO_REVISIONS, RevSelection
from .ignore import write_template
from .project import CAS_DIR, CAS_GITIGNORE, Project
from .reporting import SILENT, Reporter

if TYPE_CHECKING:
    from collections.abc import Callable

    from .api import CasFile
    from .githooks import InstallResult
    from .importing import Artifact
    from .ops.compare import CompareResult
    from .ops.diff import DiffResult
    from .ops.merge import MergeResult
    from .ops.remove import RemoveResult
    from .ops.version import LogEntry, VersionResult
    from .remote.config import RemoteSpec
    from .remote.results import FetchResult, PullResult, PushResult
    from .results import AddResult, CheckoutResult, FsckResult, GcResult, LsEntry, StatusEntry

__all__ = ["CAS_DIR", "Repo"]


class Repo(Project):
    """A casstore repository. ``Repo(path)`` finds the root at or above ``path``."""

    @classmethod
    def init(cls, path: str | os.PathLike[str] = ".", *, reporter: Reporter = SILENT,
             force: bool = False) -> Repo:
        """Create ``.cas/`` (config, git-ignore rules) in ``path``."""
        root = Path(path).resolve()
        if not root.is_dir():
            raise PathError(f"{path} is not a folder")
        cas = root / CAS_DIR
        if (cas / "config.yaml").exists() and not force:
            raise PathError(f"{root} is already a casstore repository (use --force to reset "
                            "its config)")
        cas.mkdir(exist_ok=True)
        # start-up: the chunker loads pyfastcdc, which only init and add need
        from .chunker import ChunkParams

        cfg = {"core": {"compression": "auto"},
               "chunking": ChunkParams().as_dict(),
               "versioning": {"scheme": "semantic"}}
        atomic_write_text(cas / "config.yaml", yaml.safe_dump(cfg, sort_keys=True))
        atomic_write_text(cas / ".gitignore", CAS_GITIGNORE)
        write_template(root)
        return cls(root, reporter=reporter)

    # operations ---------------------------------------------------------------------
    # Each method imports its operation when called: the operations bring numpy, pyarrow
    # and fsspec, and importing them all up front cost 0.6 s on every command (measured
    # with python -X importtime), where 'cas status' should answer in 0.1 s. Start-up time
    # is the only reason: no operation imports this module. The light ones (ls, remotes,
    # hooks, textconv: 3-7 ms together) too, as 'cas status' needs none of them.
    def add(self, paths: Sequence[str | os.PathLike[str]], *, sha256: bool | None = None,
            follow_symlinks: bool = False) -> AddResult:
        """Track files and folders: store their chunks and write their pointers (links
        inside folders are skipped unless ``follow_symlinks``)."""
        # start-up: imported on call, see the note above add()
        from .ops.add import add

        return add(self, paths, sha256=sha256, follow_symlinks=follow_symlinks)

    def remove(self, paths: Sequence[str | os.PathLike[str]], *, purge: bool = False,
               force: bool = False) -> RemoveResult:
        """Stop tracking: delete pointers and their .gitignore lines (and, with ``purge``,
        the data)."""
        # start-up: imported on call, see the note above add()
        from .ops.remove import remove

        return remove(self, paths, purge=purge, force=force)

    def status(self, targets: Sequence[str | os.PathLike[str]] | None = None
               ) -> list[StatusEntry]:
        """Per pointer: modified, missing, not in cache (empty list of states = clean)."""
        # start-up: imported on call, see the note above add()
        from .ops.status import status

        return status(self, targets)

    def mark_remote_states(self, entries: list[StatusEntry], remote: str | None = None, *,
                           jobs: int | None = None) -> str:
        """Add to ``status()`` entries what ``remote`` (default remote) lacks: 'not
        pushed', 'not on remote', 'on remote only in condemned packs'; returns the
        remote's name."""
        # start-up: imported on call, see the note above add()
        from .ops.sync import mark_remote_states

        return mark_remote_states(self, entries, remote, jobs=jobs)

    def checkout(self, targets: Sequence[str | os.PathLike[str]] | None = None, *,
                 force: bool = False) -> CheckoutResult:
        """Restore tracked data from the cache to match the pointers."""
        # start-up: imported on call, see the note above add()
        from .ops.checkout import checkout

        return checkout(self, targets, force=force)

    def ls(self, rev: str | None = None, *, remote: str | None = None) -> list[LsEntry]:
        """Tracked artifacts with their size, chunk count and digest (at Git revision
        ``rev``); with ``remote`` ('' = default) also complete/partial/absent there."""
        # start-up: imported on call, see the note above add()
        from .ops.listing import ls

        return ls(self, rev, remote)

    def gc(self, *, dry_run: bool = False, select: RevSelection = NO_REVISIONS,
           remote: str | None = None, grace_hours: float | None = None,
           keep_pushed_days: float | None = None, jobs: int | None = None) -> GcResult:
        """Delete data nothing references: in the cache (workspace pointers of every clone
        sharing it, plus the Git revisions ``select`` names), or with ``remote`` ('' for the
        default) on a remote, in two phases the grace period apart (see ``casstore.ops.gc``)."""
        # start-up: imported on call, see the note above add()
        from .ops.gc import gc

        return gc(self, dry_run=dry_run, select=select, remote=remote,
                  grace_hours=grace_hours, keep_pushed_days=keep_pushed_days, jobs=jobs)

    def fsck(self, *, repair: bool = False, remote: str | None = None,
             jobs: int | None = None) -> FsckResult:
        """Re-hash every object in the cache (or, with ``remote``, a remote) and report
        damage."""
        # start-up: imported on call, see the note above add()
        from .ops.fsck import fsck

        return fsck(self, remote=remote, repair=repair, jobs=jobs)

    def version(self, path: str, **options: Any) -> VersionResult:
        """Record the next version of ``path`` in its pointer (options as ``cas version``:
        bump, set_version, params_files, params, metrics_files, metrics, data, env, message,
        scheme, tag)."""
        # start-up: imported on call, see the note above add()
        from .ops.version import version

        return version(self, path, **options)

    def log(self, path: str, *, rev: str = "HEAD") -> list[LogEntry]:
        """Versions of ``path`` from Git history, newest first (renames followed)."""
        # start-up: imported on call, see the note above add()
        from .ops.version import log

        return log(self, path, rev=rev)

    def alias(self, path: str, name: str, *, to: str | None = None,
              remove: bool = False) -> VersionResult:
        """Point alias ``name`` (the Git tag ``PATH@NAME``) at a version of ``path``: ``to``
        (a version, alias or Git revision), else the committed version in the working
        tree; or, with ``remove``, delete it."""
        # start-up: imported on call, see the note above add()
        from .ops.version import alias

        return alias(self, path, name, to=to, remove=remove)

    def compare(self, a: str, b: str, *, key: str | None = None) -> CompareResult:
        """Compare two versions of an artifact (PATH, PATH@VERSION or PATH@GITREV each);
        ``key`` names the key column for table rows."""
        # start-up: imported on call, see the note above add()
        from .ops.compare import compare

        return compare(self, a, b, key=key)

    def diff(self, rev_a: str | None = None, rev_b: str | None = None, *,
             key: str | None = None) -> DiffResult:
        """Artifacts changed from ``rev_a`` (default HEAD) to ``rev_b`` (default working
        tree); ``key`` as for ``compare``."""
        # start-up: imported on call, see the note above add()
        from .ops.diff import diff

        return diff(self, rev_a, rev_b, key=key)

    def merge(self, pointers: Sequence[str] | None = None) -> list[MergeResult]:
        """Resolve the pointer files a Git merge left conflicted (all, or ``pointers``):
        merged pointers are written and their data checked out; real conflicts are
        listed."""
        # start-up: imported on call, see the note above add()
        from .ops.merge import merge_conflicted

        return merge_conflicted(self, list(pointers) if pointers else None)

    def merge_pointers(self, base_text: str | None, ours_text: str, theirs_text: str,
                       name: str) -> MergeResult:
        """Merge three versions of the pointer ``name`` (Git's merge driver); ``base_text``
        is None when both sides added it."""
        # start-up: imported on call, see the note above add()
        from .ops.merge import merge_pointers

        return merge_pointers(self, base_text, ours_text, theirs_text, name)

    def push(self, targets: Sequence[str] | None = None, *, remote: str | None = None,
             jobs: int | None = None, select: RevSelection = NO_REVISIONS) -> PushResult:
        """Upload the data the pointers need (those of ``targets``, or all, and those of the
        Git revisions ``select`` names) that ``remote`` (default remote) lacks."""
        # start-up: imported on call, see the note above add()
        from .ops.sync import push

        return push(self, remote, targets, jobs=jobs, select=select)

    def fetch(self, targets: Sequence[str] | None = None, *, remote: str | None = None,
              jobs: int | None = None, select: RevSelection = NO_REVISIONS) -> FetchResult:
        """Download into the cache the data the pointers need (as for ``push``) that it
        lacks."""
        # start-up: imported on call, see the note above add()
        from .ops.sync import fetch

        return fetch(self, remote, targets, jobs=jobs, select=select)

    def pull(self, targets: Sequence[str] | None = None, *, remote: str | None = None,
             jobs: int | None = None, force: bool = False) -> PullResult:
        """Fetch, then check out the pointers."""
        # start-up: imported on call, see the note above add()
        from .ops.sync import pull

        return pull(self, remote, targets, jobs=jobs, force=force)

    def open(self, path: str | os.PathLike[str], rev: str | None = None, *,
             remote: str | None = None) -> CasFile:
        """A seekable binary file over tracked content (see ``casstore.open``)."""
        # start-up: imported on call, see the note above add()
        from .api import open as open_

        return open_(path, rev, repo=self, remote=remote)

    # other repositories ---------------------------------------------------------------
    def import_artifact(self, url: str, path: str, *, rev: str | None = None,
                        out: str | os.PathLike[str] | None = None, force: bool = False,
                        remote_config: dict[str, Any] | None = None) -> Artifact:
        """Track artifact ``path`` of the repository at ``url`` here (``cas import``),
        recording where it came from; ``remote_config`` overrides storage options of that
        repository's remote."""
        # start-up: imported on call, see the note above add()
        from .importing import import_artifact

        return import_artifact(self, url, path, rev=rev, out=out, force=force,
                               remote_config=remote_config)

    def update(self, targets: Sequence[str | os.PathLike[str]] | None = None, *,
               rev: str | None = None,
               remote_config: dict[str, Any] | None = None) -> list[Artifact]:
        """Refresh imported artifacts (all, or ``targets``) to the newest commit of their
        recorded revision (or of ``rev``)."""
        # start-up: imported on call, see the note above add()
        from .importing import update

        return update(self, targets, rev=rev, remote_config=remote_config)

    @staticmethod
    def get(url: str, path: str, *, rev: str | None = None, out: str | None = None,
            force: bool = False, here: Repo | None = None,
            remote_config: dict[str, Any] | None = None) -> Artifact:
        """Download artifact ``path`` of the repository at ``url`` as a plain, untracked
        copy (``cas get``; no repository needed here). With ``here``, its cache keeps the
        data for next time."""
        # start-up: imported on call, see the note above add()
        from .importing import get

        return get(url, path, rev=rev, out=out, force=force, repo=here,
                   remote_config=remote_config)

    # remotes --------------------------------------------------------------------------
    def remotes(self) -> dict[str, RemoteSpec]:
        """Every configured remote, by name."""
        # start-up: imported on call, see the note above add()
        from .remote import config as rc

        return rc.remotes(self.config)

    def default_remote(self) -> str | None:
        """The default remote's name (``core.remote``), if one is set."""
        # start-up: imported on call, see the note above add()
        from .remote import config as rc

        return rc.default_name(self.config)

    def add_remote(self, name: str, url: str, *, default: bool = False, local: bool = False,
                   force: bool = False) -> RemoteSpec:
        """Configure remote ``name`` at ``url`` (in config.local.yaml with ``local``)."""
        # start-up: imported on call, see the note above add()
        from .remote import config as rc

        return rc.add_remote(self.config, name, url, default=default, local=local,
                             force=force)

    def modify_remote(self, name: str, option: str, value: str | None, *,
                      local: bool = False) -> RemoteSpec:
        """Set (``value`` None: unset) one storage option of remote ``name``."""
        # start-up: imported on call, see the note above add()
        from .remote import config as rc

        return rc.modify_remote(self.config, name, option, value, local=local)

    def remove_remote(self, name: str) -> None:
        """Forget remote ``name`` (and clear it as the default)."""
        # start-up: imported on call, see the note above add()
        from .remote import config as rc

        rc.remove_remote(self.config, name)

    def set_default_remote(self, name: str | None, *, local: bool = False) -> None:
        """Make ``name`` the default remote (None clears it)."""
        # start-up: imported on call, see the note above add()
        from .remote import config as rc

        rc.set_default(self.config, name, local=local)

    # Git integration ------------------------------------------------------------------
    def install(self) -> InstallResult:
        """Git hooks, the ``*.cas`` diff driver and the pointer merge driver (``cas
        install``)."""
        # start-up: imported on call, see the note above add()
        from .githooks import install

        return install(self)

    def uninstall(self) -> InstallResult:
        """Remove what ``install`` added (the user's own hooks stay)."""
        # start-up: imported on call, see the note above add()
        from .githooks import uninstall

        return uninstall(self)

    def run_hook(self, name: str, args: list[str], warn: Callable[[str], None],
                 say: Callable[[str], None] | None = None,
                 tell: Callable[[str], None] | None = None) -> int:
        """Do what Git hook ``name`` is for (see ``casstore.ops.hooks``); returns the exit
        code."""
        # start-up: imported on call, see the note above add()
        from .ops.hooks import run_hook

        return run_hook(self, name, args, warn, say, tell)

    @staticmethod
    def textconv(text: str, name: str = "pointer", here: Repo | None = None) -> str:
        """The readable form of pointer ``text`` that ``git diff`` shows (Git's diff
        driver); with ``here``, folder listings come from its cache."""
        # start-up: imported on call, see the note above add()
        from .review.textconv import summarize

        return summarize(text, name, here)
