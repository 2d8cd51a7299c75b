"""Both sides of a pointer that Git left with conflict markers."""

from __future__ import annotations


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
