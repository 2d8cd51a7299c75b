"""Artifacts tracked in another Git repository: ``cas get``, ``cas import`` and ``cas update``.

The other repository is a local folder (used in place: its cache serves the data) or a Git
URL (cloned shallow into a temporary folder). The pointer is read at the requested
revision; the data comes from that repository's cache and then its configured remote.
``get`` writes a plain copy. ``import`` tracks the artifact here: the data enters this
repository's cache, the pointer records ``source: {repo, rev, path, commit}``, and
``update`` re-reads the recorded revision (a branch or tag moves) to refresh it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .atomic import atomic_open, atomic_write_text
from .errors import CasError, PathError, PointerError, RemoteError
from .files import chunk_list, restore_file
from .gitutil import git, resolve_rev
from .ops.add import INLINE_ENTRIES
from .ops.checkout import checkout
from .pointer import SUFFIX, Pointer, pointer_path_for
from .project import Project
from .reachability import Root
from .remote.config import apply_overrides
from .sources import ChainBackend, ObjectSource, StoreBackend, remote_backend
from .store.objects import ObjectType
from .tree import TreeEntry, build_tree
from .view import Entry, TrackedView, normalize


@dataclass
class Artifact:
    """One artifact read from another repository: what ``get``/``import`` produced."""

    path: str  # where it was written (relative to the current folder, or the repository)
    kind: str  # "file" or "dir"
    size: int
    digest: str
    files: int
    source: dict[str, str] = field(default_factory=dict)
    objects_fetched: int = 0
    changed: bool = True  # import/update: whether the pointer changed

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class Source:
    """An open source repository at one commit."""

    repo: Project
    url: str
    commit: str
    rev: str  # the revision name to record: what was asked for, or the default branch
    local: Path | None = None  # the folder, for a repository used in place


def _is_local(url: str) -> bool:
    return "://" not in url and not _scp_like(url) and Path(url).expanduser().is_dir()


def _scp_like(url: str) -> bool:
    head = url.split("/", 1)[0]
    return ":" in head and not os.path.isabs(url)


def _run_git(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=1800)
    except FileNotFoundError:
        raise CasError("git is not installed; install it to read other repositories") \
            from None


def _clone(url: str, rev: str | None, dest: Path) -> None:
    base = ["clone", "-q", "--depth", "1", "--no-tags"]
    if rev is not None:
        if _run_git([*base, "--branch", rev, url, str(dest)]).returncode == 0:
            return
        shutil.rmtree(dest, ignore_errors=True)
        # Not a branch or tag (a commit id, say): clone the history and check it out.
        proc = _run_git(["clone", "-q", "--no-checkout", url, str(dest)])
        if proc.returncode == 0:
            if _run_git(["checkout", "-q", rev], cwd=dest).returncode == 0:
                return
            raise CasError(f"{url} has no revision {rev!r}; check its branches and tags")
    else:
        proc = _run_git([*base, url, str(dest)])
        if proc.returncode == 0:
            return
    msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
    raise CasError(f"cannot clone {url}: {msg[-1] if msg else 'git clone failed'}")


def _rev_name(root: Path, rev: str | None, commit: str) -> str:
    if rev is not None:
        return rev
    name = git(root, "rev-parse", "--abbrev-ref", "HEAD", check=False).decode().strip()
    return name if name and name != "HEAD" else commit


ENDPOINT_HINT = "; no endpoint_url is set for"  # see casstore.remote.fs.Remote.endpoint_hint


@contextlib.contextmanager
def _endpoint_hint_for_import() -> Iterator[None]:
    """A remote error of the *other* repository names the flag that reaches it: 'cas
    remote modify' would change this repository's remotes, not that one's."""
    try:
        yield
    except RemoteError as exc:
        msg = str(exc)
        at = msg.find(ENDPOINT_HINT)
        if at < 0:
            raise
        raise RemoteError(msg[:at] + "; the source repository sets its endpoint_url per "
                          "machine: pass --remote-config endpoint_url=URL (or set "
                          "AWS_ENDPOINT_URL)") from None


@contextlib.contextmanager
def open_source(url: str, rev: str | None = None, *, base: Path | None = None,
                remote_config: dict[str, Any] | None = None) -> Iterator[Source]:
    """The repository at ``url`` (a local folder, relative to ``base``, or a Git URL),
    at ``rev`` (default: its current branch). ``remote_config`` sets storage options of
    its default remote for this process (an endpoint_url its committed config cannot
    hold, since each machine sets it locally)."""
    with _endpoint_hint_for_import():
        with _open_source(url, rev, base=base, remote_config=remote_config) as src:
            yield src


@contextlib.contextmanager
def _open_source(url: str, rev: str | None, *, base: Path | None,
                 remote_config: dict[str, Any] | None) -> Iterator[Source]:
    local = Path(base or ".", url).expanduser() if not os.path.isabs(url) else Path(url)
    if _is_local(str(local)):
        repo = Project(local)
        try:
            apply_overrides(repo.config, remote_config or {})
            commit = resolve_rev(repo.root, rev or "HEAD")
            yield Source(repo, url, commit, _rev_name(repo.root, rev, commit),
                         local.resolve())
        finally:
            repo.close()
        return
    tmp = Path(tempfile.mkdtemp(prefix="cas-get-"))
    try:
        _clone(url, rev, tmp / "src")
        try:
            repo = Project(tmp / "src")
        except CasError:
            raise CasError(f"{url} is not a casstore repository (no .cas/config.yaml at "
                           f"{rev or 'its default branch'})") from None
        try:
            apply_overrides(repo.config, remote_config or {})
            commit = resolve_rev(repo.root, "HEAD")
            yield Source(repo, url, commit, _rev_name(repo.root, rev, commit))
        finally:
            repo.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class _Found:
    entry: Entry
    pointer: Pointer | None  # the source pointer, when the path is a whole tracked artifact
    tree: list[TreeEntry] | None  # folder entries relative to the folder, for folders


def _find(src: Source, path: str, source: ObjectSource) -> _Found:
    view = TrackedView(src.repo, src.commit, source=source)
    rel = normalize(path)
    entry = view.find(rel)
    hit = view.pointers().get(rel)
    ptr = hit[1] if hit is not None else None
    if entry.kind == "file":
        return _Found(entry, ptr, None)
    if ptr is not None:
        return _Found(entry, ptr, view.tree(ptr.digest, rel))
    if entry.pointer is None:
        raise PathError(f"{rel} in {src.url} is a folder holding several tracked artifacts; "
                        "name one of them")
    top = entry.pointer[:-len(SUFFIX)]
    top_ptr = view.pointers()[top][1]
    prefix = rel[len(top) + 1:] + "/"
    sub = [TreeEntry(e.path[len(prefix):], e.kind, e.size, e.digest)
           for e in view.tree(top_ptr.digest, top) if e.path.startswith(prefix)]
    return _Found(entry, None, sub)


def _roots(found: _Found, name: str) -> list[Root]:
    if found.tree is None:
        assert found.entry.digest is not None
        return [Root(found.entry.digest, "file", found.entry.size, name)]
    return [Root(e.digest, "file", e.size, f"{name}/{e.path}") for e in found.tree
            if e.digest is not None]


def _backends(src: Source) -> list[Any]:
    return [StoreBackend(src.repo.cache), remote_backend(src.repo)]


def _source_record(src: Source, path: str, root: Path) -> dict[str, str]:
    url = src.url
    if src.local is not None and not os.path.isabs(url):
        # A relative folder is kept relative to this repository, so clones can share it.
        url = os.path.relpath(src.local, root)
    return {"repo": url, "rev": src.rev, "path": normalize(path), "commit": src.commit}


# get ----------------------------------------------------------------------------------
def get(url: str, path: str, *, rev: str | None = None, out: str | None = None,
        force: bool = False, repo: Project | None = None,
        remote_config: dict[str, Any] | None = None) -> Artifact:
    """Download artifact ``path`` of the repository at ``url`` to ``out`` (default: its
    name in the current folder). With ``repo``, that repository's cache keeps the data
    for next time; otherwise the source repository's cache does."""
    dest = Path(out if out is not None else Path(normalize(path)).name)
    if dest.exists() or dest.is_symlink():
        if not force:
            raise PathError(f"{dest} already exists; remove it, choose another name with -o, "
                            "or use --force")
    with open_source(url, rev, remote_config=remote_config) as src:
        cache = repo.cache if repo is not None else src.repo.cache
        extra = _backends(src) if repo is not None else [remote_backend(src.repo)]
        source = ObjectSource(cache, _chain(extra))
        found = _find(src, path, source)
        roots = _roots(found, normalize(path))
        fetched = source.ensure(roots) if roots else 0
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        _write(cache, found, dest)
        e = found.entry
        files = len([t for t in found.tree or [] if t.kind != "d"]) if found.tree is not None \
            else 1
        return Artifact(path=str(dest), kind="dir" if found.tree is not None else "file",
                        size=sum(r.size for r in roots), digest=e.digest.hex() if e.digest
                        else "", files=files, source={"repo": src.url, "rev": src.rev,
                                                      "path": normalize(path),
                                                      "commit": src.commit},
                        objects_fetched=fetched)


def _chain(backends: Sequence[Any]) -> Any:
    live = [b for b in backends if b is not None]
    return ChainBackend(live) if live else None


def _write(cache: Any, found: _Found, dest: Path) -> None:
    if found.tree is None:
        e = found.entry
        assert e.digest is not None
        _write_file(cache, e.digest, e.size, dest, e.executable)
        return
    dest.mkdir(parents=True, exist_ok=True)
    for t in found.tree:
        target = dest / t.path
        if t.kind == "d":
            target.mkdir(parents=True, exist_ok=True)
            continue
        assert t.digest is not None
        _write_file(cache, t.digest, t.size, target, t.executable)


def _write_file(cache: Any, digest: bytes, size: int, dest: Path, executable: bool) -> None:
    mode = None
    if executable:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o777 & ~umask
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(dest, mode=mode) as f:
        restore_file(cache, digest, size, f)  # verified chunk by chunk and as a whole


# import / update ----------------------------------------------------------------------
def import_artifact(repo: Project, url: str, path: str, *, rev: str | None = None,
                    out: str | os.PathLike[str] | None = None, force: bool = False,
                    base: Path | None = None,
                    remote_config: dict[str, Any] | None = None) -> Artifact:
    """Track artifact ``path`` of the repository at ``url`` (a relative folder is taken
    from ``base``, default the current folder) here, at ``out`` (default: its name in the
    current folder), recording where it came from in the pointer. ``force`` replaces data
    tracked here by 'cas add'. Workspace changes that are not in the cache are never
    overwritten (checkout refuses, as 'cas checkout' does)."""
    data = repo.user_path(out if out is not None else Path(normalize(path)).name)
    ptr_path = pointer_path_for(data)
    anc = repo.tracked_ancestor(data)
    if anc is not None:
        raise PathError(f"{repo.rel(data)} is inside tracked folder {repo.rel(anc)}; import "
                        "it somewhere else with -o")
    old = _old_pointer(repo, ptr_path)
    if old is not None and old.source is None and not force:
        raise PathError(f"{repo.rel(data)} is already tracked (not imported); use --force to "
                        "replace it with the imported artifact")
    with open_source(url, rev, base=base, remote_config=remote_config) as src:
        source = ObjectSource(repo.cache, _chain(_backends(src)))
        found = _find(src, path, source)
        roots = _roots(found, normalize(path))
        fetched = source.ensure(roots) if roots else 0
        ptr = _pointer_for(repo, source, found, data.name)
        ptr.source = _source_record(src, path, repo.root)
    changed = old is None or old.dumps() != ptr.dumps()
    if changed:
        atomic_write_text(ptr_path, ptr.dumps())
    repo.add_gitignore(data)
    res = checkout(repo, [str(data)])
    if res.failed:
        raise CasError(res.failed[0])
    return Artifact(path=repo.rel(data), kind=ptr.kind, size=ptr.size,
                    digest=ptr.digest.hex(), files=ptr.files or 1, source=ptr.source,
                    objects_fetched=fetched, changed=changed)


def _old_pointer(repo: Project, ptr_path: Path) -> Pointer | None:
    if not ptr_path.exists():
        return None
    try:
        return repo.load_pointer(ptr_path)
    except PointerError:
        return None


def _pointer_for(repo: Project, source: ObjectSource, found: _Found, name: str) -> Pointer:
    e = found.entry
    if found.pointer is not None:
        # The whole artifact: keep its metadata (version, metrics) and inline listing.
        p = found.pointer
        return Pointer(path=name, kind=p.kind, size=p.size, digest=p.digest, chunks=p.chunks,
                       files=p.files, sha256=p.sha256, executable=p.executable,
                       entries=p.entries, meta=p.meta)
    if found.tree is None:
        assert e.digest is not None
        chunks = len(chunk_list(repo.cache, e.digest, e.size))
        return Pointer(path=name, kind="file", size=e.size, digest=e.digest, chunks=chunks,
                       executable=e.executable)
    # A folder inside a tracked folder: its own tree, stored once its files are in the cache.
    def put(digest: bytes, raw: bytes) -> None:
        source.memory[digest] = (ObjectType.TREE, raw)

    top = build_tree(found.tree, put)
    source.ensure([Root(top.digest, "dir", top.size, name)])
    ptr = Pointer(path=name, kind="dir", size=top.size, digest=top.digest, files=top.files)
    if len(found.tree) <= INLINE_ENTRIES:
        ptr.entries = [{"path": t.path, "size": t.size, "xxh128": t.digest.hex()}
                       if t.digest else {"path": t.path + "/"}
                       for t in sorted(found.tree, key=lambda t: t.path.encode())]
    return ptr


def update(repo: Project, targets: Sequence[str | os.PathLike[str]] | None = None, *,
           rev: str | None = None, remote_config: dict[str, Any] | None = None
           ) -> list[Artifact]:
    """Refresh imported artifacts (all, or ``targets``) from their recorded source, at the
    recorded revision's newest commit (or at ``rev``)."""
    out = []
    pointers = [p for p in repo.pointer_files(targets)
                if repo.load_pointer(p).source is not None]
    if not pointers:
        raise PathError("nothing to update: no imported artifacts here (see 'cas import')")
    for ptr_path in pointers:
        ptr = repo.load_pointer(ptr_path)
        src = ptr.source or {}
        url, path, recorded = src.get("repo"), src.get("path"), src.get("rev")
        if not isinstance(url, str) or not isinstance(path, str):
            raise PointerError(f"{repo.rel(ptr_path)}: source needs 'repo' and 'path'")
        data = ptr_path.with_name(ptr.path)
        out.append(import_artifact(
            repo, url, path, rev=rev or (recorded if isinstance(recorded, str) else None),
            out=data, base=repo.root, remote_config=remote_config))
    return out
