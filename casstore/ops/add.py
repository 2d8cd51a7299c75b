"""cas add: store files and folders, write pointers, git-ignore the data."""

from __future__ import annotations

import hashlib
import os
import stat as statmod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..atomic import atomic_write_text
from ..conflicts import conflict_message, find_conflict_markers
from ..digests import StatRow, WorkTree
from ..errors import CasError, PathError, PointerError
from ..files import CodecChooser, StoredFile, chunk_list, hash_file, store_file
from ..lock import store_lock
from ..pointer import SUFFIX, Pointer, pointer_path_for
from ..results import AddedItem, AddResult
from ..statcache import StatCache
from ..store import roots
from ..store.local import PackWriter
from ..store.objects import Codec, ObjectType
from ..store.trees import tree_loader
from ..tree import TreeEntry, walk
from ..workspace import check_name

if TYPE_CHECKING:
    from ..chunker import Chunker
    from ..project import Project

KnownStats = dict[str, tuple[tuple[int, int, int, int], bytes, int]]
INLINE_ENTRIES = 32  # small folders list their files in the pointer so PR diffs show them


def _check_target(repo: Project, raw: str | os.PathLike[str]) -> Path:
    p = repo.user_path(raw)
    shown = repo.rel(p)
    if p.name.endswith(SUFFIX):
        raise PathError(f"{shown} is a pointer file; add the data it points to instead")
    if os.path.islink(p):
        raise PathError(f"{shown} is a symbolic link; add the file or folder it points to")
    if not p.exists():
        raise PathError(f"{shown} does not exist")
    if not (p.is_file() or p.is_dir()):
        raise PathError(f"{shown} is not a regular file or folder")
    anc = repo.tracked_ancestor(p)
    if anc is not None:
        a = repo.rel(anc)
        raise PathError(f"{shown} is inside tracked folder {a}; run 'cas add {a}' to "
                        "record changes to it")
    check_name(p.name, shown)
    name_max = _name_max(p.parent)
    if len(os.fsencode(p.name + SUFFIX)) > name_max:
        raise PathError(f"{shown}: the name is too long for its pointer file (NAME{SUFFIX} "
                        f"would exceed the file system's {name_max} bytes); rename it")
    # A folder holding pointers (tracked data) is refused while it is read (WorkTree).
    return p


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _ingest(repo: Project, path: str | Path, st: os.stat_result, writer: PackWriter,
            chunker: Chunker,
            compression: CodecChooser, advance: object, known: KnownStats | None = None,
            key: str | None = None, want_sha: bool = False) -> tuple[StoredFile, str | None]:
    """Store one file unless the stat cache proves the cache already holds it; returns it
    with its SHA-256 when ``want_sha``.

    ``known`` is a folder's stat-cache rows fetched in one query, which saves a query per
    file when adding big folders. The SHA-256 is computed from the same read as the XXH3
    digest: hashing a second read let an append in between record two digests of two
    different contents (checkout then blamed tampering).
    """
    key = key or repo.rel(path)
    if known is not None:
        row = known.get(key)
        hit = (row[1], row[2]) if row is not None and row[0] == StatCache._key(st) else None
    else:
        hit = repo.stat_cache.lookup(key, st)
    if hit is not None and hit[1] == 0 and repo.cache.has(hit[0]):
        # Hashed by 'status' (which does not chunk): count chunks from the stored recipe.
        hit = (hit[0], len(chunk_list(repo.cache, hit[0], st.st_size)))
        repo.stat_cache.record(key, st, hit[0], hit[1])
    sha = hashlib.sha256() if want_sha else None
    if hit is not None and hit[1] > 0 and writer.has(hit[0]):
        if sha is not None:
            # The SHA-256 needs the bytes anyway: read once for both digests, and rely on
            # the stat cache only if those bytes are the content it recorded.
            digest, size = hash_file(path, sha)
            if digest != hit[0] or size != st.st_size:
                raise CasError(f"{os.fspath(path)} changed while it was being added; "
                               "wait for the writer to finish, then add it again")
        if callable(advance):
            advance(st.st_size)
        return StoredFile(hit[0], st.st_size, hit[1], 0), sha.hexdigest() if sha else None
    res = store_file(path, writer, chunker, compression=compression,
                     advance=advance if callable(advance) else None, also=sha)
    repo.stat_cache.record(key, res.stat or os.stat(path), res.digest, res.chunks)
    return res, sha.hexdigest() if sha else None


def _previous(ptr_path: Path, repo: Project) -> Pointer | None:
    if not ptr_path.exists():
        return None
    if find_conflict_markers(ptr_path.read_text(encoding="utf-8", errors="replace")):
        # Overwriting would silently drop one side's version and metrics: a person decides.
        raise PointerError(conflict_message(repo.rel(ptr_path)))
    try:
        return repo.load_pointer(ptr_path)
    except PointerError:
        return None  # replaced below; the old content stays in Git history


def _write_pointer(repo: Project, ptr_path: Path, new: Pointer, old: Pointer | None) -> bool:
    if old is not None:
        new.extra = old.extra
        new.source = old.source
        if old.digest == new.digest:
            new.meta = old.meta  # version and metrics describe this exact content
    text = new.dumps()
    if ptr_path.exists() and ptr_path.read_text(encoding="utf-8", errors="replace") == text:
        return False
    atomic_write_text(ptr_path, text, work=repo.work_tmp)
    return True


def add(repo: Project, paths: Sequence[str | os.PathLike[str]], *, sha256: bool | None = None,
        follow_symlinks: bool = False) -> AddResult:
    if not paths:
        raise PathError("nothing to add; name files or folders, e.g. 'cas add data/'")
    targets = [_check_target(repo, p) for p in paths]
    repo.work_tmp.remove_stale()  # what a killed add or checkout left in .cas/tmp/work
    want_sha = bool(repo.config.get("core.sha256")) if sha256 is None else sha256
    compression = CodecChooser(str(repo.config.get("core.compression", "auto")))
    chunker = repo.chunker()
    result = AddResult()
    cache = repo.cache
    with cache.lock(shared=True):
        stored: list[tuple[Path, Pointer, int]] = []
        with cache.writer() as writer:
            for p in targets:
                before = writer.bytes_written
                if p.is_dir():
                    # A folder once added with --follow-symlinks keeps being read that way,
                    # so a plain re-add does not silently drop the linked content.
                    follow = follow_symlinks or _followed_before(repo, pointer_path_for(p))
                    ptr = _add_dir(repo, p, writer, chunker, compression, want_sha, follow)
                else:
                    ptr = _add_file(repo, p, writer, chunker, compression, want_sha)
                stored.append((p, ptr, writer.bytes_written - before))
            writer.flush()
        roots.remember(repo.cache_root, [ptr.digest for _, ptr, _ in stored])
        # Pointers are written only once the data they name is committed (packs renamed,
        # indexes written): a kill before this point leaves the previous pointers. The
        # workspace lock serialises the read-modify-write of .gitignore files between
        # concurrent adds, which would otherwise lose each other's lines.
        with store_lock(repo.cas_dir / "state" / "workspace.lock", shared=False,
                        notify=repo.reporter.note):
            for p, ptr, new_bytes in stored:
                ptr_path = pointer_path_for(p)
                changed = _write_pointer(repo, ptr_path, ptr, _previous(ptr_path, repo))
                repo.add_gitignore(p)
                result.items.append(AddedItem(
                    path=repo.rel(p), pointer=repo.rel(ptr_path), kind=ptr.kind,
                    size=ptr.size, digest=ptr.digest.hex(), chunks=ptr.chunks,
                    files=ptr.files, new_bytes=new_bytes, changed=changed))
        repo.stat_cache.flush()
        # Inside the lock: compaction deletes index files, which must not interleave with
        # a gc rewriting the index.
        cache.compact_index()
    return result


def _add_file(repo: Project, p: Path, writer: PackWriter, chunker: Chunker,
              compression: CodecChooser,
              want_sha: bool) -> Pointer:
    st = p.stat()
    with repo.reporter.progress(f"adding {repo.rel(p)}", st.st_size) as bar:
        res, sha = _ingest(repo, p, st, writer, chunker, compression, bar.advance,
                           want_sha=want_sha)
    ptr = Pointer(path=p.name, kind="file", size=res.size, digest=res.digest, chunks=res.chunks,
                  sha256=sha)
    if st.st_mode & statmod.S_IXUSR:
        ptr.executable = True
    if not st.st_mode & 0o077:
        # Nobody but the owner may read it (a key, a private dataset): checkout restores
        # it so on every clone instead of widening it to the umask's default.
        ptr.mode = "0700" if ptr.executable else "0600"
    return ptr


def _followed_before(repo: Project, ptr_path: Path) -> bool:
    try:
        return ptr_path.is_file() and repo.load_pointer(ptr_path).follow_symlinks
    except CasError:
        return False  # a broken pointer is replaced; _previous reports conflicts


def _add_dir(repo: Project, p: Path, writer: PackWriter, chunker: Chunker,
             compression: CodecChooser,
             want_sha: bool, follow_symlinks: bool = False) -> Pointer:
    """Store a folder as one tree per subfolder, depth-first (``digests.WorkTree``): only
    what changed is read, and only the trees on a changed file's path are new."""
    shown = repo.rel(p)
    small: dict[bytes, bytes] = {}  # the first trees, for the pointer's inline listing
    sha = hashlib.sha256() if want_sha else None
    last_sha: list[str] = []

    def put(digest: bytes, data: bytes) -> None:
        writer.put(digest, ObjectType.TREE, data, Codec.ZSTD)
        if len(small) < 2 * INLINE_ENTRIES:
            small[digest] = data

    with repo.reporter.progress(f"adding {shown}/", None) as bar:

        def ingest(key: str, path: str, st: os.stat_result, row: StatRow | None) -> bytes:
            res, file_sha = _ingest(repo, path, st, writer, chunker, compression, bar.advance,
                                    {key: row} if row is not None else {}, key, want_sha)
            if file_sha is not None:
                last_sha[:] = [file_sha]
            return res.digest

        def on_file(e: TreeEntry) -> None:
            # One SHA-256 over the SHA-256 of every file, in path order, so a crafted XXH3
            # collision in any file changes the folder's recorded value.
            assert sha is not None
            sha.update(f"{e.path}\0{last_sha[0]}\n".encode())

        top = WorkTree(repo, p, follow_symlinks=follow_symlinks,
                       warn=lambda m: repo.reporter.note(f"warning: {m}"), file_digest=ingest,
                       put=put, trust=writer.has, ordered=want_sha,
                       on_file=on_file if want_sha else None, adding=True).build()
    ptr = Pointer(path=p.name, kind="dir", size=top.size, digest=top.digest, files=top.files,
                  follow_symlinks=follow_symlinks)
    if top.files <= INLINE_ENTRIES:
        entries = _small_listing(repo, small, top.digest)
        if entries is not None and len(entries) <= INLINE_ENTRIES:
            ptr.entries = [{"path": e.path, "size": e.size, "xxh128": e.digest.hex()}
                           if e.digest else {"path": e.path + "/"} for e in entries]
    if sha is not None:
        ptr.sha256 = sha.hexdigest()
    return ptr


def _small_listing(repo: Project, small: dict[bytes, bytes], digest: bytes
                   ) -> list[TreeEntry] | None:
    """A small folder's entries, from the trees just written or the cache."""
    cached = tree_loader(repo.cache)

    def load(tid: bytes) -> bytes:
        held = small.get(tid)
        return held if held is not None else cached(tid)

    out: list[TreeEntry] = []
    try:
        for e in walk(load, digest):
            out.append(e)
            if len(out) > INLINE_ENTRIES:
                return None
    except CasError:
        return None  # a tree written in this run but not kept: listed next time
    return out
