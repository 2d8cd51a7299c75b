"""Git conflict markers left in a pointer file: finding them, and both sides of the file.

When two branches bump the same model, Git merges the pointer into a file
with ``<<<<<<<``/``=======``/``>>>>>>>`` lines. Parsing that as YAML gives a
confusing traceback; every command should instead print one line saying which
file it is and how to fix it. Only whole-line markers count (at the start of a
line, as Git writes them), so a value that merely contains ``=======`` is not
mistaken for a conflict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "ConflictMarkers",
    "PointerConflictError",
    "check_conflict",
    "conflict_message",
    "find_conflict_markers",
    "split_conflict",
]

# Git writes exactly 7 marker characters (configurable via conflict-marker-size,
# so accept 7 or more), followed by end of line or a space and a label.
# diff3 style adds a "|||||||" base section.
_MARKER = re.compile(r"^(<{7,}|={7,}|>{7,}|\|{7,})(?:[ \t].*)?\r?$", re.M)


@dataclass(frozen=True)
class ConflictMarkers:
    """Line numbers (1-based) of each kind of conflict marker found."""

    ours: list[int]
    separators: list[int]
    theirs: list[int]
    base: list[int]

    def __bool__(self) -> bool:
        # A lone "=======" line can be legitimate text (e.g. a Markdown heading
        # underline); a conflict needs an opening or closing marker.
        return bool(self.ours or self.theirs)


class PointerConflictError(ValueError):
    """A pointer file holds unresolved Git conflict markers; ``str()`` is the one-line advice."""

    def __init__(self, path: str, markers: ConflictMarkers) -> None:
        super().__init__(conflict_message(path))
        self.path = path
        self.markers = markers


def find_conflict_markers(text: str) -> ConflictMarkers:
    """Find conflict-marker lines in ``text`` (empty lists if there are none)."""
    found: dict[str, list[int]] = {"<": [], "=": [], ">": [], "|": []}
    for m in _MARKER.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        found[m.group(1)[0]].append(line)
    return ConflictMarkers(found["<"], found["="], found[">"], found["|"])


def conflict_message(path: str, *, data_path: str | None = None) -> str:
    """One line naming the pointer file and how to resolve the conflict.

    ``path`` is the pointer file as the user should type it (e.g.
    ``model.safetensors.cas``). ``data_path`` is the tracked file to name in the
    ``cas version`` suggestion; by default the pointer path without ``.cas``.
    """
    target = data_path or (path[: -len(".cas")] if path.endswith(".cas") else path)
    return (
        f"{path} has unresolved Git conflict markers; pick one side "
        f"(git checkout --ours {path} or git checkout --theirs {path}) "
        f"or run `cas version {target} --set VERSION`, then `git add {path}`"
    )


def check_conflict(text: str, path: str) -> None:
    """Raise :class:`PointerConflictError` if ``text`` (a pointer file's content) has markers.

    Call this before parsing a pointer as YAML.
    """
    markers = find_conflict_markers(text)
    if markers:
        raise PointerConflictError(path, markers)


def split_conflict(text: str) -> tuple[str, str]:
    """(ours, theirs): the file as each side of the merge wrote it.

    Lines outside conflict blocks belong to both; a diff3 base section (``|||||||``) to
    neither. Marker lines are matched the way Git writes them: at the start of a line.
    """
    ours: list[str] = []
    theirs: list[str] = []
    state = ""
    for line in text.splitlines(keepends=True):
        if line.startswith("<<<<<<<"):
            state = "ours"
        elif line.startswith("|||||||") and state == "ours":
            state = "base"
        elif line.startswith("=======") and state in ("ours", "base"):
            state = "theirs"
        elif line.startswith(">>>>>>>") and state == "theirs":
            state = ""
        elif state == "ours":
            ours.append(line)
        elif state == "theirs":
            theirs.append(line)
        elif not state:
            ours.append(line)
            theirs.append(line)
    return "".join(ours), "".join(theirs)
