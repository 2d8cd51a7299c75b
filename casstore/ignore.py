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

from .errors import ConfigError

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec

FILE_NAME = ".casignore"
MAX_BYTES = 1 << 20  # a rules file, not data: refuse to read megabytes of it


class IgnoreRules:
    """The ``.casignore`` rules of one repository; ``matches`` takes root-relative paths."""

    def __init__(self, spec: GitIgnoreSpec | None) -> None:
        self._spec = spec

    @classmethod
    def load(cls, root: Path) -> IgnoreRules:
        path = root / FILE_NAME
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return cls(None)  # the common case costs one stat and no pathspec import
        return cls(_parse(str(path), st.st_mtime_ns, st.st_size))

    def __bool__(self) -> bool:
        return self._spec is not None

    def matches(self, rel: str, *, is_dir: bool = False) -> bool:
        """Whether the '/'-separated, root-relative ``rel`` is ignored (or lies in an
        ignored folder)."""
        if self._spec is None:
            return False
        return bool(self._spec.match_file(rel + "/" if is_dir else rel))


@lru_cache(maxsize=4)
def _parse(path: str, mtime_ns: int, size: int) -> GitIgnoreSpec:
    # Keyed on the stat so a long-lived library process sees edits.
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
