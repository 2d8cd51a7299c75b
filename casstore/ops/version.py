"""cas version and cas log: record a model version in its pointer; list versions from Git.

A version lives in the pointer's ``meta`` block, so a model's history is the Git history of
its pointer. The next version is derived from every version in that history (plus the working
pointer), never from a counter, so two branches that bump the same model produce the same
version string and the merge shows a conflict a person resolves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..atomic import atomic_write_text
from ..conflicts import conflict_message, find_conflict_markers, split_conflict
from ..errors import CasError, ConfigError, PathError, PointerError, UsageError
from ..gitutil import git, git_ok
from ..pointer import MAX_POINTER_BYTES, SUFFIX, Pointer, data_path_for, parse_pointer_text
from ..review.history import (
    PointerState,
    cat_files,
    has_commits,
    parse_blob,
    pointer_history,
)
from ..review.metadata import (
    DEFAULT_ENV_PACKAGES,
    MetadataError,
    capture_env,
    load_mapping_file,
    merge,
    parse_kv_flags,
    sort_nested,
)
from ..review.refs import alias_commit, alias_tag, aliases_of, pointer_rel_for, resolve
from ..review.schemes import InvalidVersionError, Scheme, get_scheme

if TYPE_CHECKING:
    from ..project import Project

DEFAULT_SCHEME = "semantic"


@dataclass
class VersionResult:
    """What ``cas version`` recorded (or tagged)."""

    path: str  # the data, repo-relative
    pointer: str
    version: str
    previous: str | None  # the latest version before this one, if any
    scheme: str
    changed: bool  # whether the pointer file was rewritten
    meta: dict[str, Any] = field(default_factory=dict)
    tag: str | None = None
    resolved_conflict: bool = False
    alias: str | None = None  # the alias set or removed
    removed: bool = False  # --unalias
    commit: str | None = None  # where the tag or alias points

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LogEntry:
    """One version (or unversioned content) of a pointer in Git history."""

    version: str | None
    commit: str | None  # None: recorded in the working tree, not committed yet
    date: str | None
    digest: str
    size: int
    pointer: str  # the pointer's path at that commit (renames are followed)
    metrics: dict[str, Any] = field(default_factory=dict)
    message: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # lineage: data pointer -> digest
    aliases: list[str] = field(default_factory=list)  # e.g. production, pointing here

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- scheme ---------------------------------------------------------------------------

def scheme_for(repo: Project, data_rel: str, working: Pointer | None,
               history: Sequence[PointerState], override: str | None) -> Scheme:
    """The scheme of one artifact: ``--scheme``, else the one recorded in its meta, else
    ``versioning.artifacts.<path>.scheme``, else ``versioning.scheme``, else semantic."""
    name = override
    if name is None and working is not None:
        name = (working.meta or {}).get("scheme")
    if name is None:
        name = next((s.meta["scheme"] for s in history if s.meta.get("scheme")), None)
    if name is None:
        artifacts = repo.config.get("versioning.artifacts") or {}
        if not isinstance(artifacts, dict):
            raise ConfigError("versioning.artifacts in .cas/config.yaml must map paths to "
                              "settings")
        per = artifacts.get(data_rel) or artifacts.get(data_rel + SUFFIX) or {}
        name = per.get("scheme") if isinstance(per, dict) else None
    if name is None:
        name = repo.config.get("versioning.scheme") or DEFAULT_SCHEME
    try:
        return get_scheme(str(name))
    except InvalidVersionError as exc:
        raise ConfigError(str(exc)) from None


# -- working pointer ------------------------------------------------------------------

def _data_digest(repo: Project, ptr_path: Path, ptr: Pointer) -> bytes | None:
    """Digest of the data in the working tree now (None when it is absent)."""
    # start-up: digests brings the store's index and numpy (~100 modules), which 'cas log'
    # and 'cas version' on a pointer alone do not need
    from ..digests import DirNow, current_file_digest

    data = data_path_for(ptr_path, ptr)
    try:
        if ptr.kind == "file" and data.is_file() and not data.is_symlink():
            return current_file_digest(repo, data)
        if ptr.kind == "dir" and data.is_dir() and not data.is_symlink():
            return DirNow(repo, data, follow_symlinks=ptr.follow_symlinks,
                          recorded=ptr.digest).digest
        return None
    finally:
        repo.stat_cache.flush()


def _resolve_conflict(repo: Project, rel: str, text: str) -> tuple[Pointer, list[Pointer]]:
    """The side of a conflicted pointer that matches the data in the working tree."""
    sides = []
    for label, side in zip(("ours", "theirs"), split_conflict(text), strict=True):
        try:
            sides.append(parse_pointer_text(side, f"{rel} ({label})"))
        except PointerError as exc:
            raise PointerError(f"cannot resolve {rel} automatically ({exc}); "
                               f"{conflict_message(rel)}") from None
    ptr_path = repo.root / rel
    now = _data_digest(repo, ptr_path, sides[0])
    for side in sides:
        if side.digest == now:
            return side, sides
    raise PointerError(f"neither side of the conflict in {rel} matches {rel[:-len(SUFFIX)]} "
                       "in the working tree; check out the data you want (cas checkout after "
                       f"git checkout --ours/--theirs {rel}), then run cas version again")


def _load_working(repo: Project, rel: str, explicit_new: bool
                  ) -> tuple[Pointer, list[Pointer], bool]:
    """(working pointer, pointers whose versions count as taken, resolved a conflict)."""
    ptr_path = repo.root / rel
    if not ptr_path.is_file():
        raise PathError(f"{rel[:-len(SUFFIX)]} is not tracked (no {rel}); run "
                        f"'cas add {rel[:-len(SUFFIX)]}' first")
    try:
        ptr = repo.load_pointer(ptr_path)
        return ptr, [ptr], False
    except PointerError:
        with open(ptr_path, "rb") as f:
            text = f.read(MAX_POINTER_BYTES + 1).decode("utf-8", "replace")
        if len(text) > MAX_POINTER_BYTES or not find_conflict_markers(text):
            raise
    if not explicit_new:
        raise PointerError(conflict_message(rel))
    chosen, sides = _resolve_conflict(repo, rel, text)
    return chosen, sides, True


# -- cas version ----------------------------------------------------------------------

def _intro_commit(history: Sequence[PointerState], digest: bytes) -> str | None:
    """The newest commit that changed the pointer's content to ``digest``."""
    intro = None
    prev: bytes | None = None
    for st in reversed([s for s in history if s.commit]):
        if st.pointer.digest == digest and prev != digest:
            intro = st.commit
        prev = st.pointer.digest
    return intro


def _env(repo: Project, env: str) -> dict[str, str]:
    packages = repo.config.get("versioning.env_packages")
    if packages is not None and not (isinstance(packages, list)
                                     and all(isinstance(p, str) for p in packages)):
        raise ConfigError("versioning.env_packages must be a list of package names")
    wanted = list(packages) if packages else list(DEFAULT_ENV_PACKAGES)
    if env == "auto":
        return capture_env(wanted)
    return capture_env(wanted, requirements=env)


def _lineage(repo: Project, data: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for d in data:
        rel = pointer_rel_for(repo, d)
        p = repo.root / rel
        if not p.is_file():
            raise PathError(f"{d} is not tracked (no {rel}); --data names the pointers of the "
                            "data the model was trained on")
        out[rel] = repo.load_pointer(p).digest.hex()
    return out


def _uncommitted(root: Path, rel: str) -> bool:
    if not has_commits(root):
        return True
    tracked = git_ok(root, "ls-files", "--error-unmatch", "--", rel)
    return not tracked or bool(git(root, "status", "--porcelain", "--", rel).strip())


def tag_version(repo: Project, rel: str, ptr: Pointer, scheme: Scheme) -> VersionResult:
    """Tag the commit that last changed the (committed, unmodified) pointer as PATH@VERSION."""
    data_rel = rel[:-len(SUFFIX)]
    version = (ptr.meta or {}).get("version")
    if version is None:
        raise CasError(f"{rel} records no version; run 'cas version {data_rel}' first")
    if _uncommitted(repo.root, rel):
        raise CasError(f"{rel} has uncommitted changes; commit it first (git add {rel} && "
                       f"git commit), then run 'cas version {data_rel} --tag'")
    commit = git(repo.root, "log", "-1", "--format=%H", "--", rel).decode().strip()
    name = f"{data_rel}@{version}"
    if not git_ok(repo.root, "check-ref-format", f"refs/tags/{name}"):
        raise CasError(f"{name!r} is not a valid Git tag name; rename the file or tag it by hand")
    existing = git(repo.root, "rev-parse", "--verify", "--quiet", f"refs/tags/{name}^{{commit}}",
                   check=False).decode().strip()
    if existing and existing != commit:
        raise CasError(f"tag {name} already exists on commit {existing[:10]}; versions must be "
                       f"unique: record a new one with 'cas version {data_rel}'")
    if not existing:
        git(repo.root, "tag", name, commit)
    return VersionResult(path=data_rel, pointer=rel, version=str(version), previous=None,
                         scheme=scheme.name, changed=not existing, meta=dict(ptr.meta or {}),
                         tag=name)


def version(repo: Project, path: str, *, bump: str | None = None, set_version: str | None = None,
            params_files: Sequence[str] = (), params: Sequence[str] = (),
            metrics_files: Sequence[str] = (), metrics: Sequence[str] = (),
            data: Sequence[str] = (), env: str | None = None, message: str | None = None,
            scheme: str | None = None, tag: bool = False) -> VersionResult:
    """Record the next version of ``path`` (with run metadata) in its pointer, or ``tag``."""
    if bump is not None and set_version is not None:
        raise UsageError("give either --bump or --set, not both")
    recording = any([bump, set_version, params_files, params, metrics_files, metrics, data,
                     env, message, scheme])
    if tag and recording:
        raise UsageError("--tag tags the committed version: commit the new version first, "
                         "then run 'cas version PATH --tag' on its own")
    rel = pointer_rel_for(repo, path)
    data_rel = rel[:-len(SUFFIX)]
    explicit_new = bump is not None or set_version is not None
    working, taken, resolved = _load_working(repo, rel, explicit_new)
    history = pointer_history(repo.root, rel, workspace=False)
    sch = scheme_for(repo, data_rel, working, history, scheme)
    if tag:
        return tag_version(repo, rel, working, sch)

    ptr_path = repo.root / rel
    now = _data_digest(repo, ptr_path, working)
    if now is not None and now != working.digest:
        raise CasError(f"{data_rel} changed since it was added; run 'cas add {data_rel}' "
                       "first, then version it")

    committed = [s.version for s in history if s.version is not None]
    taken_versions = committed + [str(p.meta["version"]) for p in taken
                                  if p.meta and p.meta.get("version") is not None]
    current = (working.meta or {}).get("version")
    current = None if current is None or resolved else str(current)
    # Git hashes have no order of their own: the previous one is the newest in history.
    previous = (next(iter(committed), None) if sch.name == "githash"
                else sch.latest(taken_versions))
    try:
        if sch.name == "githash":
            new = _githash_version(sch, history, working, taken_versions, current, bump,
                                   set_version, data_rel)
        elif not explicit_new and current is not None and current not in committed:
            new = current  # recorded but not committed yet: amend its metadata
        else:
            today = datetime.now(timezone.utc).date() if sch.name == "calendar" else None
            new = sch.next_version(taken_versions, bump=bump, explicit=set_version, today=today)
    except InvalidVersionError as exc:
        raise UsageError(f"{data_rel}: {exc}") from None

    try:
        meta = _build_meta(repo, working.meta or {}, params_files, params, metrics_files,
                           metrics, data, env, message)
    except MetadataError as exc:
        raise UsageError(str(exc)) from None
    meta["version"] = new
    if scheme is not None:
        meta["scheme"] = sch.name
    working.meta = sort_nested(meta)
    text = working.dumps()
    parse_pointer_text(text, rel)  # what we write must be what every reader accepts
    old = ptr_path.read_text(encoding="utf-8", errors="replace")
    changed = old != text
    if changed:
        atomic_write_text(ptr_path, text)
    return VersionResult(path=data_rel, pointer=rel, version=new,
                         previous=previous if previous != new else None, scheme=sch.name,
                         changed=changed, meta=working.meta, resolved_conflict=resolved)


def _githash_version(sch: Scheme, history: Sequence[PointerState], working: Pointer,
                     taken: list[str], current: str | None, bump: str | None,
                     set_version: str | None, data_rel: str) -> str:
    if bump is not None:
        raise InvalidVersionError("the githash scheme does not take a bump: its versions are "
                                  "the commits that introduced the content")
    if set_version is not None:
        return sch.next_version(taken, explicit=set_version)
    intro = _intro_commit(history, working.digest)
    if intro is None:
        raise InvalidVersionError(
            "githash versions name the commit that introduced the content: commit "
            f"{data_rel}{SUFFIX} first, then run 'cas version {data_rel}'")
    short = intro[:sch.SHORT]  # type: ignore[attr-defined]
    if current is not None and intro.startswith(current):
        return current
    # The same content seen again keeps the name it already has.
    for s in history:
        if s.pointer.digest == working.digest and s.version and intro.startswith(s.version):
            return s.version
    return sch.next_version([v for v in taken if v != short], commit=intro)


def _build_meta(repo: Project, base: dict[str, Any], params_files: Sequence[str],
                params: Sequence[str], metrics_files: Sequence[str], metrics: Sequence[str],
                data: Sequence[str], env: str | None, message: str | None) -> dict[str, Any]:
    meta = dict(base)
    if params_files or params:
        meta["params"] = merge(meta.get("params") if isinstance(meta.get("params"), dict)
                               else None, *[load_mapping_file(f) for f in params_files],
                               parse_kv_flags(params))
    if metrics_files or metrics:
        meta["metrics"] = merge(meta.get("metrics") if isinstance(meta.get("metrics"), dict)
                                else None, *[load_mapping_file(f) for f in metrics_files],
                                parse_kv_flags(metrics))
    if data:
        meta["data"] = _lineage(repo, data)
    if env is not None:
        meta["env"] = _env(repo, env)
    if message is not None:
        meta["message"] = message
    return meta


# -- cas log --------------------------------------------------------------------------

def log(repo: Project, path: str, *, rev: str = "HEAD") -> list[LogEntry]:
    """Versions of ``path``, newest first: one row per distinct (version, content), dated by
    the commit that first recorded it; content that never got a version is listed with
    version None; a version recorded but not committed yet comes first with commit None."""
    rel = pointer_rel_for(repo, path)
    skipped: list[str] = []
    # The working pointer belongs to HEAD's history, not to another branch's.
    states = pointer_history(repo.root, rel, rev=rev, skipped=skipped, workspace=rev == "HEAD")
    for s in skipped:
        repo.reporter.note(f"skipping unreadable pointer in history: {s}")
    if not states:
        raise PathError(f"{rel[:-len(SUFFIX)]} has no history (no {rel} in the working tree "
                        f"or in {rev}); run 'cas add' and commit the pointer")
    first: dict[tuple[str | None, bytes], PointerState] = {}
    last: dict[tuple[str | None, bytes], PointerState] = {}
    for st in reversed(states):  # oldest first
        key = (st.version, st.pointer.digest)
        if st.commit is None and key in first:
            continue  # the working tree matches a committed state
        first.setdefault(key, st)
        last[key] = st
    versioned = {d for (v, d) in first if v is not None}
    out = []
    for key, st in reversed(list(first.items())):
        if key[0] is None and key[1] in versioned:
            continue
        newest = last[key]
        metrics = newest.meta.get("metrics")
        msg = newest.meta.get("message")
        params, data = newest.meta.get("params"), newest.meta.get("data")
        out.append(LogEntry(version=st.version, commit=st.commit, date=st.date,
                            digest=st.pointer.digest.hex(), size=st.pointer.size,
                            pointer=st.path, metrics=metrics if isinstance(metrics, dict)
                            else {}, message=None if msg is None else str(msg),
                            params=params if isinstance(params, dict) else {},
                            data=data if isinstance(data, dict) else {}))
    _attach_aliases(repo, rel, out)
    return out


def _attach_aliases(repo: Project, rel: str, entries: list[LogEntry]) -> None:
    """Name each alias (``PATH@production``) on the entry whose content and version its
    commit recorded; version tags (``PATH@1.2.0``) are not aliases and are left out."""
    tags = aliases_of(repo.root, rel[:-len(SUFFIX)])
    versions = {e.version for e in entries if e.version}
    names = {n: c for n, c in tags.items() if n not in versions}
    if not names:
        return
    blobs = cat_files(repo.root, [f"{c}:{rel}" for c in names.values()])
    for name, commit in sorted(names.items()):
        data = blobs.get(f"{commit}:{rel}")
        if data is None:
            continue
        try:
            ptr = parse_blob(data, f"{rel} at {name}")
        except PointerError:
            continue
        v = (ptr.meta or {}).get("version")
        for e in entries:
            if e.digest == ptr.digest.hex() and e.version == (None if v is None else str(v)):
                e.aliases.append(name)
                break


# -- aliases --------------------------------------------------------------------------

def alias(repo: Project, path: str, name: str, *, to: str | None = None,
          remove: bool = False) -> VersionResult:
    """Point the alias ``name`` (a Git tag ``PATH@NAME``, moved with force) at a version:
    ``to`` (a version, alias or Git revision of the artifact), else the committed version
    in the working tree; or, with ``remove``, delete it."""
    rel = pointer_rel_for(repo, path)
    data_rel = rel[:-len(SUFFIX)]
    tag = alias_tag(data_rel, name)
    if not name or name.strip() != name or "@" in name or \
            not git_ok(repo.root, "check-ref-format", f"refs/tags/{tag}"):
        raise UsageError(f"{name!r} is not a usable alias name (letters, digits, '-', '_' "
                         "and '.' work best)")
    history = pointer_history(repo.root, rel, workspace=False)
    if any(s.version is not None and s.version == name for s in history):
        raise UsageError(f"{name} is a version of {data_rel}; an alias needs a name of its "
                         "own, like production or staging")
    current = alias_commit(repo.root, data_rel, name)
    if remove:
        if current is None:
            raise CasError(f"{data_rel} has no alias {name}; see 'cas log {data_rel}'")
        git(repo.root, "tag", "-d", tag)
        return VersionResult(path=data_rel, pointer=rel, version="", previous=None,
                             scheme="", changed=True, alias=name, removed=True,
                             commit=current, tag=tag)
    if to is not None:
        st = resolve(repo, f"{data_rel}@{to}")
        if st.commit is None:
            raise CasError(f"{data_rel}@{to} is not committed; commit it, then set the alias")
        commit = st.commit
        ptr = st.pointer
    else:
        ptr = repo.load_pointer(repo.root / rel) if (repo.root / rel).is_file() else None
        if ptr is None:
            raise PathError(f"{data_rel} is not tracked (no {rel})")
        if _uncommitted(repo.root, rel):
            raise CasError(f"{rel} has uncommitted changes; commit it first, or name the "
                           f"version: cas version {data_rel} --alias {name} --to VERSION")
        commit = git(repo.root, "log", "-1", "--format=%H", "--", rel).decode().strip()
    version_ = (ptr.meta or {}).get("version")
    if version_ is None:
        raise CasError(f"{data_rel} at {commit[:10]} records no version; run "
                       f"'cas version {data_rel}' and commit it first")
    git(repo.root, "tag", "-f", tag, commit)  # -f: an alias moves, unlike a version tag
    return VersionResult(path=data_rel, pointer=rel, version=str(version_), previous=None,
                         scheme="", changed=current != commit, alias=name, commit=commit,
                         tag=tag, meta=dict(ptr.meta or {}))

