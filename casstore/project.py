"""The working tree casstore manages: its root and ``.cas`` folder (config, cache, stat
cache, temp space), its paths and pointer files, and the ``.gitignore`` lines for tracked
data.

``Project`` is what the operations (``casstore.ops``) and the layers below them work on;
``casstore.Repo``, the facade, is a ``Project`` with one method per command. Nothing here
runs a command.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from .atomic import WorkTmp, atomic_write_bytes
from .config import Config
from .errors import ConfigError, NotARepoError, PathError
from .pointer import SUFFIX, NotAPointerError, Pointer, pointer_path_for, read_pointer
from .reporting import SILENT, Reporter
from .statcache import StatCache
from .workspace import find_pointers

if TYPE_CHECKING:
    from typing import Self

    from .chunker import Chunker
    from .store.local import LocalStore

CAS_DIR = ".cas"
CAS_GITIGNORE = "/cache/\n/tmp/\n/state/\n/config.local.yaml\n"


def find_root(start: Path) -> Path:
    cur = start.resolve()
    for d in (cur, *cur.parents):
        if (d / CAS_DIR / "config.yaml").is_file():
            return d
    raise NotARepoError(f"no casstore repository at or above {start}; run 'cas init' in "
                        "your project's top folder first")


_GLOB_SPECIAL = frozenset("\\[]*?")


def _glob_escape(name: str) -> str:
    return "".join("\\" + c if c in _GLOB_SPECIAL else c for c in name)


def gitignore_line(name: str) -> str:
    """The .gitignore line that matches exactly the entry ``name`` of that folder.

    Git reads ``\\``, ``[``, ``*`` and ``?`` as pattern syntax and drops trailing spaces, so
    each is escaped with a backslash (``data[1].bin`` would otherwise match ``data1.bin``
    only, and ``star*.bin`` every ``star...bin``). The leading '/' anchors the line to this
    folder and keeps a leading '#' or '!' from reading as a comment or a negation; they are
    escaped as well, so the line means the same wherever it is read. A newline cannot be
    written in a .gitignore line at all: such names are refused (a line break would turn
    the rest of the name into a pattern of its own, e.g. one hiding '*.py').
    """
    if "\n" in name or "\r" in name:
        raise PathError(f"{name!r} has a newline in its name, which a .gitignore line "
                        "cannot hold; rename it")
    body = _glob_escape(name)
    if body[:1] in ("#", "!"):
        body = "\\" + body
    stripped = body.rstrip(" ")
    return "/" + stripped + "\\ " * (len(body) - len(stripped))


class Project:
    """A casstore working tree. ``Project(path)`` finds the root at or above ``path``; the
    cache, stat cache and temp space open on first use and close with ``close()``."""

    def __init__(self, path: str | os.PathLike[str] = ".", *,
                 reporter: Reporter = SILENT) -> None:
        self.root = find_root(Path(path))
        self.cas_dir = self.root / CAS_DIR
        self.reporter = reporter
        self.config = Config(self.cas_dir)

    # parts --------------------------------------------------------------------------
    @cached_property
    def cache_root(self) -> Path:
        d = self.config.get("cache.dir")
        return (self.root / d) if d else (self.cas_dir / "cache")

    @cached_property
    def cache(self) -> LocalStore:
        # Imported on first use (start-up time): numpy and pyarrow come with the store, and
        # commands that never touch it (status of an unchanged tree) should not pay for them.
        from . import clones
        from .store.local import LocalStore

        shared = self.config.get("cache.shared")
        if shared not in (None, False, "group"):
            raise ConfigError(f"cache.shared is {shared!r}; the only value is 'group' "
                              "('cas config cache.shared group')")
        if shared == "group":
            # Like git's core.sharedRepository=group: what this process creates is
            # group-writable, so a teammate's umask 077 cannot lock the others out.
            os.umask(os.umask(0) & ~0o070)
        store = LocalStore(self.cache_root, fsync=bool(self.config.get("core.fsync", True)),
                           notify=self.reporter.note, group_shared=shared == "group")
        clones.register(self.cache_root, self.root)
        return store

    def in_cache(self, oid: bytes) -> bool:
        """Whether a pointer's top object is cached: a marker stat, else the index."""
        # Imported on first use, like the store itself (start-up time).
        from .store import roots

        if roots.known(self.cache_root, oid):
            return True
        if self.cache.has(oid):
            roots.remember(self.cache_root, [oid])
            return True
        return False

    @cached_property
    def stat_cache(self) -> StatCache:
        return StatCache(self.cas_dir / "state" / "stat.db")

    @cached_property
    def work_tmp(self) -> WorkTmp:
        """Where this process's writes into the working tree are prepared."""
        return WorkTmp(self.cas_dir)

    def chunker(self) -> Chunker:
        """A chunker with this repository's chunking parameters."""
        # Imported on first use: the chunker loads pyfastcdc, which only add needs
        # (start-up time).
        from .chunker import Chunker, ChunkParams

        return Chunker(ChunkParams.from_dict(self.config.get("chunking") or {}))

    def close(self) -> None:
        if "work_tmp" in self.__dict__:
            self.work_tmp.close()
        if "stat_cache" in self.__dict__:
            self.stat_cache.close()
        if "cache" in self.__dict__:
            self.cache.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # paths --------------------------------------------------------------------------
    def rel(self, p: str | Path) -> str:
        """``p`` relative to the root, '/'-separated; PathError if it lies outside."""
        ap = Path(os.path.abspath(p))
        try:
            r = ap.relative_to(self.root)
        except ValueError:
            raise PathError(f"{p} is outside the repository at {self.root}") from None
        return r.as_posix() if r.parts else "."

    def user_path(self, s: str | os.PathLike[str]) -> Path:
        """Resolve a path typed by the user (relative to the current folder)."""
        p = Path(os.path.abspath(s))
        rel = self.rel(p)
        parts = Path(rel).parts
        if rel == "." or (parts and parts[0] in (".git", CAS_DIR)):
            raise PathError(f"{s} cannot be tracked (it is the repository itself or its "
                            "metadata)")
        self.check_real_folder(p.parent, str(s))
        return p

    def check_real_folder(self, folder: Path, display: str) -> None:
        """Refuse a folder whose real location (every symbolic link on the way resolved)
        is outside the working tree or inside Git's or casstore's metadata.

        Checked on the resolved target, not on the spelling: with ``lnk -> .git``, the
        pointer ``lnk/hooks.cas`` would otherwise make checkout write into .git/hooks,
        whose files Git runs.
        """
        real = Path(os.path.realpath(folder))
        root = self.root.resolve()
        if real != root and root not in real.parents:
            raise PathError(f"{display} lies in a folder that links outside the repository "
                            f"({real}); casstore reads and writes only inside the working "
                            "tree")
        parts = real.relative_to(root).parts
        if any(part.lower() == ".git" for part in parts) or parts[:1] == (CAS_DIR,):
            how = "" if Path(os.path.abspath(folder)) == real else " through a symbolic link"
            raise PathError(f"{display} lies inside Git's or casstore's metadata folder"
                            f"{how} ({real.relative_to(root).as_posix()}); tracked data "
                            "may not go there")

    def pointer_files(self, targets: Sequence[str | os.PathLike[str]] | None = None
                      ) -> list[Path]:
        """Pointers named by ``targets`` (data paths, pointer paths or folders), or all."""
        if not targets:
            return find_pointers(self.root)
        out: list[Path] = []
        for t in targets:
            p = Path(os.path.abspath(t))
            self.rel(p)
            if p.name.endswith(SUFFIX) and p.is_file():
                out.append(p)
            elif pointer_path_for(p).is_file():
                out.append(pointer_path_for(p))
            elif p.is_dir():
                inside = [q for q in find_pointers(self.root) if p in q.parents]
                if not inside:
                    raise PathError(f"{t} holds no tracked data")
                out.extend(inside)
            else:
                raise PathError(f"{t} is not tracked (no {p.name}{SUFFIX} beside it); "
                                "use 'cas add' to track it")
        return sorted(set(out))

    def load_pointer(self, ptr_path: Path) -> Pointer:
        display = self.rel(ptr_path)
        self.check_real_folder(ptr_path.parent, display)
        try:
            return read_pointer(ptr_path, display)
        except NotAPointerError as exc:
            # Any file may end in '.cas' (docs/algebra.cas); say how to leave it alone.
            raise NotAPointerError(f"{exc}; if it is not a casstore pointer, add it to "
                                   f".casignore (e.g. a line '/{_glob_escape(display)}')") \
                from None

    def tracked_ancestor(self, p: Path) -> Path | None:
        """The tracked folder containing ``p``, if any."""
        for a in p.parents:
            if a == self.root or self.root not in a.parents:
                break
            if pointer_path_for(a).is_file():
                return a
        return None

    def add_gitignore(self, data: Path) -> None:
        """Git-ignore ``data`` in its folder's .gitignore, once."""
        gi = data.parent / ".gitignore"
        line = gitignore_line(data.name)
        # A user's .gitignore need not be UTF-8: keep its bytes as they are.
        text = gi.read_bytes().decode("utf-8", "surrogateescape") if gi.exists() else ""
        if line in text.splitlines():
            return
        if text and not text.endswith("\n"):
            text += "\n"
        atomic_write_bytes(gi, (text + line + "\n").encode("utf-8", "surrogateescape"),
                           work=self.work_tmp)

    def remove_gitignore(self, data: Path) -> bool:
        """Drop the line ``add_gitignore`` wrote for ``data``; other lines stay byte for byte.

        Returns whether a line was removed. A .gitignore left empty is deleted, since
        casstore created it (a user's own rules would still be in it).
        """
        gi = data.parent / ".gitignore"
        if not gi.is_file():
            return False
        line = gitignore_line(data.name)
        text = gi.read_bytes().decode("utf-8", "surrogateescape")
        lines = text.splitlines(keepends=True)
        kept = [ln for ln in lines if ln.rstrip("\r\n") != line]
        if len(kept) == len(lines):
            return False
        if not "".join(kept).strip():
            gi.unlink()
        else:
            atomic_write_bytes(gi, "".join(kept).encode("utf-8", "surrogateescape"),
                               work=self.work_tmp)
        return True
