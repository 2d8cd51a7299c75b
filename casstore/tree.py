"""Trees: the canonical manifest of a tracked directory.

Canonical bytes (UTF-8), whose XXH3-128 is the directory's digest:
    cas-tree 1\n
    <kind> <size> <digest> <path>\n     one line per entry, sorted by path bytes
kind is 'f' (file), 'x' (executable file) or 'd' (empty directory, size 0, digest '-').
Paths are relative, '/'-separated, never absolute, never containing '..', '.', empty parts,
newlines or NUL. Anyone can recompute a directory digest from this text.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import CorruptObjectError
from .hashing import digest_bytes

HEADER = b"cas-tree 1\n"
KINDS = ("f", "x", "d")


@dataclass(frozen=True, order=True, slots=True)  # slots: a large tree is many entries
class TreeEntry:
    path: str
    kind: str  # f, x or d
    size: int
    digest: bytes | None  # None for empty directories

    @property
    def executable(self) -> bool:
        return self.kind == "x"


def check_rel_path(path: str) -> str:
    """Refuse paths that could escape the directory they are restored into."""
    if not path or path.startswith("/") or "\\" in path or "\x00" in path \
            or "\n" in path or "\r" in path:
        raise ValueError(f"unsafe path {path!r:.80}")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise ValueError(f"unsafe path {path!r:.80}")
        if part.lower() == ".git":
            # A restored .git folder is a repository whose config and hooks Git (and any
            # shell prompt calling it) would run: Git itself refuses such tree entries.
            raise ValueError(f"path {path!r:.80} has a '.git' component")
    return path


def encode_tree(entries: list[TreeEntry]) -> bytes:
    lines = [HEADER]
    for e in sorted(entries, key=lambda e: e.path.encode()):
        digest = e.digest.hex() if e.digest is not None else "-"
        lines.append(f"{e.kind} {e.size} {digest} {e.path}\n".encode())
    return b"".join(lines)


def tree_digest(entries: list[TreeEntry]) -> tuple[bytes, bytes]:
    data = encode_tree(entries)
    return digest_bytes(data), data


def decode_tree(data: bytes) -> list[TreeEntry]:
    """Parse canonical tree bytes, rejecting anything unsafe or out of order."""
    if not data.startswith(HEADER):
        raise CorruptObjectError("tree has no 'cas-tree 1' header")
    out: list[TreeEntry] = []
    prev = b""
    try:
        text = data[len(HEADER):].decode("utf-8")
    except UnicodeDecodeError:
        raise CorruptObjectError("tree is not UTF-8") from None
    if text and not text.endswith("\n"):
        raise CorruptObjectError("tree is truncated")
    seen_dirs: set[str] = set()
    for line in text.splitlines():
        parts = line.split(" ", 3)
        if len(parts) != 4 or parts[0] not in KINDS:
            raise CorruptObjectError(f"tree line is malformed: {line!r:.80}")
        kind, size_s, digest_s, path = parts
        try:
            check_rel_path(path)
            size = int(size_s)
            if size < 0 or size_s != str(size):
                raise ValueError("bad size")
            digest = None if kind == "d" else bytes.fromhex(digest_s)
            if digest is not None and len(digest) != 16:
                raise ValueError("bad digest")
            if kind == "d" and (digest_s != "-" or size != 0):
                raise ValueError("bad directory entry")
        except ValueError as exc:
            raise CorruptObjectError(f"tree line is invalid ({exc}): {line!r:.80}") from None
        key = path.encode()
        if key <= prev:
            raise CorruptObjectError("tree entries are duplicated or out of order")
        prev = key
        # A file may not also be a directory prefix of another entry.
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        while parent:
            seen_dirs.add(parent)
            parent = parent.rsplit("/", 1)[0] if "/" in parent else ""
        out.append(TreeEntry(path, kind, size, digest))
    for e in out:
        if e.path in seen_dirs and e.kind != "d":
            raise CorruptObjectError(f"tree uses {e.path!r} as both file and folder")
        if e.kind == "d" and e.path in seen_dirs:
            raise CorruptObjectError(f"tree lists non-empty folder {e.path!r} as empty")
    return out
