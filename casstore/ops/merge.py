"""Three-way merge of pointer files: the Git merge driver and ``cas merge``.

When two branches change the same pointer, Git cannot merge two digests. For folders the
trees can be merged: a file changed (added, removed, modified) on one side only takes that
side's version, and the merged tree is stored in the cache and written to the pointer, so
the merged workspace follows on ``cas checkout``. A file changed differently on both sides
is a real conflict and is reported by path. Single files merge only when one side left the
content alone. ``meta`` (version, metrics...) merges key by key the same way.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..atomic import atomic_write_text
from ..errors import CasError, CorruptObjectError, PointerError
from ..gitutil import git
from ..pointer import Pointer, parse_pointer_text
from ..reachability import Root
from ..sources import source_for
from ..store.objects import ObjectType
from ..tree import TreeEntry, build_tree, decode_tree, encode_tree, walk
from .add import INLINE_ENTRIES
from .checkout import checkout

if TYPE_CHECKING:
    from ..project import Project
    from ..sources import ObjectSource

_MISSING = object()


@dataclass
class MergeResult:
    """Outcome of merging one pointer: ``text`` is the merged pointer when ``ok``."""

    pointer: str
    ok: bool
    text: str | None = None
    conflicts: list[str] = field(default_factory=list)  # one line per conflicting path/key
    how: str = ""  # "identical", "ours", "theirs", "tree merge", "conflict"
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _three_way(base: Any, ours: Any, theirs: Any) -> tuple[Any, bool]:
    """(merged value, conflict?) of one value changed on zero, one or two sides."""
    if ours == theirs:
        return ours, False
    if ours == base:
        return theirs, False
    if theirs == base:
        return ours, False
    return ours, True


def merge_meta(base: dict[str, Any] | None, ours: dict[str, Any] | None,
               theirs: dict[str, Any] | None, shown: str) -> tuple[dict[str, Any], list[str]]:
    """Key-by-key three-way merge of pointer ``meta``; conflicts name the key."""
    b, o, t = base or {}, ours or {}, theirs or {}
    out: dict[str, Any] = {}
    conflicts = []
    for k in sorted(set(o) | set(t) | set(b), key=str):
        v, bad = _three_way(b.get(k, _MISSING), o.get(k, _MISSING), t.get(k, _MISSING))
        if bad:
            conflicts.append(f"{shown}: meta.{k} changed differently on both sides "
                             f"(ours {o.get(k)!r:.40}, theirs {t.get(k)!r:.40})")
        if v is not _MISSING:
            out[k] = v
    return out, conflicts


def _load_tree(source: ObjectSource, digest: bytes, shown: str, side: str
               ) -> list[TreeEntry]:
    def load(tid: bytes) -> bytes:
        # A folder is one tree per subfolder: each is fetched when the walk reaches it.
        if not source.has(tid):
            source.fetch([tid])
        loc = source.locate(tid)
        if loc is None:
            raise CasError(f"{shown}: the {side} folder listing is not in the cache; run 'cas "
                           f"pull' on that branch (or 'cas fetch'), then 'cas merge {shown}'")
        if loc.type != ObjectType.TREE:
            raise CorruptObjectError(f"{shown}: the {side} pointer names a file, not a folder")
        return bytes(source.read(tid)[1])

    return list(walk(load, digest))


def merge_trees(base: list[TreeEntry], ours: list[TreeEntry], theirs: list[TreeEntry],
                shown: str) -> tuple[list[TreeEntry], list[str]]:
    """Path-by-path three-way merge of folder trees; conflicts name the path."""
    b = {e.path: e for e in base}
    o = {e.path: e for e in ours}
    t = {e.path: e for e in theirs}
    merged: dict[str, TreeEntry] = {}
    conflicts = []
    for p in sorted(set(b) | set(o) | set(t)):
        v, bad = _three_way(b.get(p), o.get(p), t.get(p))
        if bad:
            conflicts.append(f"{shown}/{p}: {_why(b.get(p), o.get(p), t.get(p))}")
            continue
        if v is not None:
            merged[p] = v
    # An empty folder that gained files on the other side is no longer empty.
    parents = {p.rsplit("/", 1)[0] for p in merged if "/" in p}
    full = set()
    for d in parents:
        while d:
            full.add(d)
            d = d.rsplit("/", 1)[0] if "/" in d else ""
    entries = [e for p, e in merged.items() if not (e.kind == "d" and p in full)]
    if not conflicts:
        try:
            decode_tree(encode_tree(entries))
        except CorruptObjectError as exc:
            conflicts.append(f"{shown}: the two sides' files clash ({exc})")
    return entries, conflicts


def _why(b: TreeEntry | None, o: TreeEntry | None, t: TreeEntry | None) -> str:
    if b is None:
        return "added on both sides with different content"
    if o is None or t is None:
        return f"deleted on {'our' if o is None else 'their'} side and changed on the other"
    return "changed differently on both sides"


def _parse(text: str | None, name: str) -> Pointer | None:
    if text is None or not text.strip():
        return None
    return parse_pointer_text(text, name)


def merge_pointers(repo: Project, base_text: str | None, ours_text: str, theirs_text: str,
                   shown: str) -> MergeResult:
    """Merge three versions of pointer ``shown`` (base may be None: added on both sides)."""
    res = MergeResult(pointer=shown, ok=False)
    try:
        base = _parse(base_text, f"{shown} (base)")
        ours = _parse(ours_text, f"{shown} (ours)")
        theirs = _parse(theirs_text, f"{shown} (theirs)")
    except PointerError as exc:
        res.conflicts.append(str(exc))
        res.how = "conflict"
        return res
    if ours is None or theirs is None:
        res.conflicts.append(f"{shown}: deleted on one side and changed on the other")
        res.how = "conflict"
        return res
    if ours_text == theirs_text:
        res.ok, res.text, res.how = True, ours_text, "identical"
        return res

    def key(p: Pointer | None) -> tuple[Any, ...] | None:
        return None if p is None else (p.kind, p.digest, p.path, p.executable)

    meta, meta_conflicts = merge_meta(base.meta if base else None, ours.meta, theirs.meta,
                                      shown)
    merged: Pointer
    if key(ours) == key(theirs) or key(theirs) == key(base):
        merged, res.how = ours, "ours"
    elif key(ours) == key(base):
        merged, res.how = theirs, "theirs"
    elif ours.kind == theirs.kind == "dir" and ours.path == theirs.path:
        merged_tree = _merge_dirs(repo, base, ours, theirs, shown, res)
        if merged_tree is None:
            res.how = "conflict"
            res.conflicts.extend(meta_conflicts)
            return res
        merged, res.how = merged_tree, "tree merge"
    else:
        res.conflicts.append(f"{shown}: the {ours.kind} changed on both sides (ours "
                             f"{ours.digest.hex()[:12]}, theirs {theirs.digest.hex()[:12]})")
        res.conflicts.extend(meta_conflicts)
        res.how = "conflict"
        return res
    if meta_conflicts:
        res.conflicts.extend(meta_conflicts)
        res.how = "conflict"
        return res
    merged.meta = meta or None
    _, extra_conflicts = merge_meta(base.extra if base else None, ours.extra, theirs.extra,
                                    shown)
    src, src_bad = _three_way(base.source if base else None, ours.source, theirs.source)
    if src_bad:
        extra_conflicts.append(f"{shown}: source changed differently on both sides")
    if extra_conflicts:
        res.conflicts.extend(extra_conflicts)
        res.how = "conflict"
        return res
    merged.source = src
    res.ok, res.text = True, merged.dumps()
    return res


def _merge_dirs(repo: Project, base: Pointer | None, ours: Pointer, theirs: Pointer, shown: str,
                res: MergeResult) -> Pointer | None:
    source = source_for(repo)
    try:
        b = _load_tree(source, base.digest, shown, "base") \
            if base is not None and base.kind == "dir" else []
        o = _load_tree(source, ours.digest, shown, "our")
        t = _load_tree(source, theirs.digest, shown, "their")
    except CasError as exc:
        res.conflicts.append(str(exc))
        return None
    folder = posixpath.join(posixpath.dirname(shown), ours.path)
    entries, conflicts = merge_trees(b, o, t, folder)
    if conflicts:
        res.conflicts.extend(conflicts)
        return None
    # The merged trees enter the cache only with their files' data (fetched if need be), so
    # the cache keeps its promise that a tree it holds can be checked out.
    def put(digest: bytes, data: bytes) -> None:
        source.memory[digest] = (ObjectType.TREE, data)

    top = build_tree(entries, put)
    tid = top.digest
    try:
        source.ensure([Root(tid, "dir", top.size, shown)])
    except CasError as exc:
        res.conflicts.append(f"{shown}: the two sides merge cleanly, but {exc}; run 'cas pull' "
                             f"on both branches, then 'cas merge {shown}'")
        return None
    merged = Pointer(path=ours.path, kind="dir", size=top.size, digest=tid, files=top.files,
                     extra=dict(ours.extra))
    if len(entries) <= INLINE_ENTRIES:
        merged.entries = [{"path": e.path, "size": e.size, "xxh128": e.digest.hex()}
                          if e.digest else {"path": e.path + "/"}
                          for e in sorted(entries, key=lambda e: e.path.encode())]
    if ours.sha256 or theirs.sha256:
        res.notes.append(f"{shown}: the folder's sha256 cannot be merged without the data; "
                         f"run 'cas add --sha256 {shown[:-4]}' after checkout to record it")
    return merged


def conflicted_pointers(repo: Project) -> list[str]:
    """Root-relative pointer files Git lists as unmerged."""
    out = git(repo.root, "diff", "--name-only", "--diff-filter=U", "-z", "--relative")
    return sorted(p for p in out.decode("utf-8", "surrogateescape").split("\0")
                  if p.endswith(".cas"))


def merge_conflicted(repo: Project, pointers: list[str] | None = None) -> list[MergeResult]:
    """Resolve pointer files left conflicted by a Git merge, from Git's three index stages;
    merged pointers are written (and their data checked out)."""
    # Names typed by the user are relative to the current folder; Git's are to the root.
    names = [repo.rel(Path(os.path.abspath(p))) for p in pointers] if pointers \
        else conflicted_pointers(repo)
    if not names:
        raise CasError("no conflicted pointer files; 'git status' lists unmerged paths")
    results = []
    for rel in names:
        if not rel.endswith(".cas"):
            rel += ".cas"

        def stage(n: int, rel: str = rel) -> str | None:
            out = git(repo.root, "show", f":{n}:{rel}", check=False)
            return out.decode("utf-8", "replace") if out else None

        ours, theirs = stage(2), stage(3)
        if ours is None or theirs is None:
            raise CasError(f"{rel} is not in a conflicted state (no ours/theirs versions in "
                           "the Git index); run this during a merge")
        res = merge_pointers(repo, stage(1), ours, theirs, rel)
        if res.ok and res.text is not None:
            atomic_write_text(repo.root / rel, res.text)
            res.notes.extend(checkout(repo, [str(repo.root / rel)]).failed)
        results.append(res)
    return results
