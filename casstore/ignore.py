"""``.casignore``: paths casstore leaves alone, in gitignore syntax.

One matcher for every use: pointer discovery skips ignored ``*.cas`` files (a file named
``docs/algebra.cas`` that is not a pointer must not break every command), and scans of
tracked folders can skip ignored files. Patterns are read from ``.casignore`` at the
repository's top, relative to it, with Git's rules (``pathspec``'s GitIgnoreSpec implements
Git's own edge cases: negation, ``**``, directory-only patterns, escapes), so users need
not learn a second syntax.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from .atomic import atomic_write_text
from .errors import ConfigError

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec

FILE_NAME = ".casignore"
# What 'cas init' starts with: files that editors, notebooks and Python drop into data
# folders and that nobody means to version (a stray .DS_Store used to change a folder's
# digest and make 'cas status' report it modified).
TEMPLATE = """\
# Files casstore leaves out of tracked folders (gitignore syntax, relative to this folder).
.DS_Store
.ipynb_checkpoints/
__pycache__/
"""
MAX_BYTES = 1 << 20  # a rules file, not data: refuse to read megabytes of it


class IgnoreRules:
    """The ``.casignore`` rules of one repository; ``matches`` takes root-relative paths."""

    def __init__(self, spec: GitIgnoreSpec | None,
                 names: tuple[frozenset[str], frozenset[str]] | None = None) -> None:
        self._spec = spec
        self._names = names

    @classmethod
    def load(cls, root: Path) -> IgnoreRules:
        path = root / FILE_NAME
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return cls(None)  # the common case costs one stat and no pathspec import
        return cls(_parse(str(path), st.st_mtime_ns, st.st_size),
                   _literal_names(str(path), st.st_mtime_ns, st.st_size))

    def __bool__(self) -> bool:
        return self._spec is not None

    def matches(self, rel: str, *, is_dir: bool = False) -> bool:
        """Whether the '/'-separated, root-relative ``rel`` is ignored (or lies in an
        ignored folder)."""
        if self._spec is None:
            return False
        return bool(self._spec.match_file(rel + "/" if is_dir else rel))


    def name_sets(self) -> tuple[frozenset[str], frozenset[str]] | None:
        """When every pattern is a plain name (like the template's), the names ignored
        anywhere and the names ignored as folders: a folder read by name lookups matches
        exactly as ``matches`` would, at a set lookup per entry instead of a pattern match
        (which was half of a no-op 'cas status' on 100,000 files). None otherwise."""
        return self._names


def write_template(root: Path) -> bool:
    """Write the default ``.casignore`` unless the project already has one (its rules are
    the user's); returns whether it was written."""
    path = root / FILE_NAME
    if path.exists():
        return False
    atomic_write_text(path, TEMPLATE)
    return True


@lru_cache(maxsize=4)
def _parse(path: str, mtime_ns: int, size: int) -> GitIgnoreSpec:
    # Keyed on the stat so a long-lived library process sees edits.
    # start-up: pathspec costs ~35 ms (46 modules); only a .casignore needs it
    from pathspec import GitIgnoreSpec

    if size > MAX_BYTES:
        raise ConfigError(f"{path} is larger than 1 MiB; it should hold a few patterns")
    with open(path, "rb") as f:
        raw = f.read(MAX_BYTES)
    text = raw.decode("utf-8", "surrogateescape")
    try:
        return GitIgnoreSpec.from_lines(text.splitlines())
    except Exception as exc:  # pathspec raises its own types for bad patterns
        raise ConfigError(f"{path}: cannot parse a pattern ({exc}); fix or remove that "
                          "line") from None


_SPECIAL = set("*?[]!\\/ ")


@lru_cache(maxsize=4)
def _literal_names(path: str, mtime_ns: int, size: int
                   ) -> tuple[frozenset[str], frozenset[str]] | None:
    """See ``IgnoreRules.name_sets``. A pattern without '/' (but for a trailing one) and
    without wildcards, negation, escapes or spaces matches exactly the entries of that
    name at any depth (the trailing '/': folders only); any other pattern gives None."""
    if size > MAX_BYTES:
        return None
    with open(path, "rb") as f:
        text = f.read(MAX_BYTES).decode("utf-8", "surrogateescape")
    anywhere: set[str] = set()
    folders: set[str] = set()
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, slash = (line[:-1], True) if line.endswith("/") else (line, False)
        if not name or any(c in _SPECIAL for c in name):
            return None
        (folders if slash else anywhere).add(name)
    return frozenset(anywhere), frozenset(folders)
