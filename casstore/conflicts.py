"""Git conflict markers in a pointer file: the one rule that finds them, both sides of a
conflicted file, the text ``cas merge`` writes when a person must decide, and the advice.

When two branches bump the same model, Git merges the pointer into a file with
``<<<<<<<``/``=======``/``>>>>>>>`` lines. Parsing that as YAML gives a confusing
traceback; every command should instead print one line saying which file it is and how to
fix it. Every reader of a pointer (parsing, ``cas add``, ``cas version``, splitting the two
sides) asks :func:`marker_kind`, so a line is a marker under one rule everywhere: a whole
line as Git writes it, so a value that merely contains ``=======`` is not mistaken for a
conflict. This sits beside ``pointer.py`` (below the review package) because parsing a
pointer is where a conflict is first met.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "ConflictMarkers",
    "conflict_message",
    "conflict_text",
    "find_conflict_markers",
    "marker_kind",
    "split_conflict",
]

# Git writes 7 marker characters (conflict-marker-size can raise that, so accept 7 or
# more), then the end of the line or a space and a label. diff3 style adds a "|||||||"
# base section.
_MARKER = re.compile(r"(<{7,}|={7,}|>{7,}|\|{7,})(?:[ \t].*)?", re.S)


def marker_kind(line: str) -> str | None:
    """``"<"`` (ours begins), ``"="`` (theirs begins), ``">"`` (the block ends) or ``"|"``
    (a diff3 base begins) if ``line`` (with or without its line ending) is a conflict
    marker line, else None."""
    m = _MARKER.fullmatch(line.rstrip("\r\n"))
    return m.group(1)[0] if m else None


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


def find_conflict_markers(text: str) -> ConflictMarkers:
    """Find conflict-marker lines in ``text`` (empty lists if there are none)."""
    found: dict[str, list[int]] = {"<": [], "=": [], ">": [], "|": []}
    if not any(c * 7 in text for c in "<=>|"):
        # Every pointer is parsed through here: a marker line holds seven of its character,
        # so a clean file is told apart without looking at each line.
        return ConflictMarkers([], [], [], [])
    for number, line in enumerate(text.splitlines(), 1):
        kind = marker_kind(line)
        if kind:
            found[kind].append(number)
    return ConflictMarkers(found["<"], found["="], found[">"], found["|"])


def split_conflict(text: str) -> tuple[str, str]:
    """(ours, theirs): the file as each side of the merge wrote it.

    Lines outside conflict blocks belong to both; a diff3 base section (``|||||||``) to
    neither.
    """
    ours: list[str] = []
    theirs: list[str] = []
    state = ""
    for line in text.splitlines(keepends=True):
        kind = marker_kind(line)
        if kind == "<":
            state = "ours"
        elif kind == "|" and state == "ours":
            state = "base"
        elif kind == "=" and state in ("ours", "base"):
            state = "theirs"
        elif kind == ">" and state == "theirs":
            state = ""
        elif state == "ours":
            ours.append(line)
        elif state == "theirs":
            theirs.append(line)
        elif not state:
            ours.append(line)
            theirs.append(line)
    return "".join(ours), "".join(theirs)


def conflict_text(ours_text: str, theirs_text: str) -> str:
    """The pointer with Git-style conflict markers, for a merge that needs a person."""
    def nl(s: str) -> str:
        return s if s.endswith("\n") else s + "\n"

    return f"<<<<<<< ours\n{nl(ours_text)}=======\n{nl(theirs_text)}>>>>>>> theirs\n"


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
