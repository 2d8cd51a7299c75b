"""What changed in the content between two versions, read from the cache without a checkout.

Each function answers one question (shared chunks, files in a tree, tensors, table schema)
and returns None when the cache cannot answer it (content not fetched, or not that format),
so a report degrades to what the pointers alone say, as in CI without a remote.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import CasError
from ..pointer import Pointer
from ..reader import ContentReader, same_chunks
from ..recipe import decode_recipe
from ..reporting import SILENT, Reporter
from ..store.local import LocalStore
from ..store.objects import ObjectType
from ..store.trees import tree_loader
from ..tree import (
    EMPTY_TREE,
    HEADER,
    TreeEntry,
    decode_nodes,
    decode_tree,
    diff_trees,
    summarise,
    tree_version,
    walk,
)
from .settings import TableKeys
from .tables import TableError, detect_format, diff_tables, table_info
from .tensors import (
    SafetensorsError,
    TensorRef,
    diff_tensor_sets,
    diff_tensors,
    parse_header,
)

MAX_DETAILED_FILES = 10  # table diffs inside one folder, to bound the work per report


@dataclass
class ChunkSharing:
    """How much of the new version's content the old version already had."""

    old_chunks: int
    new_chunks: int
    shared_chunks: int  # distinct chunks of the new version also in the old one
    new_bytes: int  # bytes of chunks of the new version absent from the old one
    total_bytes: int  # bytes of the new version's distinct chunks

    @property
    def shared_share(self) -> float:
        """Share of the new version's (distinct) bytes that were already stored."""
        return 1.0 if not self.total_bytes else 1 - self.new_bytes / self.total_bytes

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shared_share"] = round(self.shared_share, 6)
        return d


@dataclass
class FileChanges:
    """Files added, removed and modified inside a tracked folder (names relative to it)."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    added_bytes: int = 0
    removed_bytes: int = 0
    modified_bytes: int = 0  # size in the new version of the modified files
    source: str = "tree"  # "tree" (from the cache) or "entries" (from the pointers)

    @property
    def count(self) -> int:
        return len(self.added) + len(self.removed) + len(self.modified)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def object_chunks(store: LocalStore, digest: bytes) -> list[tuple[bytes, int]] | None:
    """(chunk id, length) of one file's content, or None if the cache lacks it."""
    loc = store.locate(digest)
    if loc is None:
        return None
    if loc.type == ObjectType.CHUNK:
        return [(digest, loc.raw_length)]
    if loc.type != ObjectType.RECIPE:
        return None
    try:
        _, raw = store.read(digest, verify=False)
        rows = decode_recipe(raw)
    except CasError:
        return None
    return [(r["id"].tobytes(), int(r["length"])) for r in rows]


def tree_entries(store: LocalStore, digest: bytes) -> list[TreeEntry] | None:
    loc = store.locate(digest)
    if loc is None or loc.type != ObjectType.TREE:
        return None
    try:
        return list(walk(tree_loader(store), digest))
    except CasError:
        return None


def _tree_size(store: LocalStore, digest: bytes) -> int | None:
    """A folder's total bytes from its top tree alone (None: not a tree in the cache)."""
    loc = store.locate(digest)
    if loc is None or loc.type != ObjectType.TREE:
        return None
    try:
        raw = bytes(store.read(digest)[1])
        if tree_version(raw) == 2:
            return summarise(decode_nodes(raw))[0]
        return sum(e.size for e in decode_tree(raw))
    except CasError:
        return None


def content_chunks(store: LocalStore, kind: str, digest: bytes
                   ) -> dict[bytes, int] | None:
    """Distinct chunks (id -> length) of a file or of every file of a tree; None if any
    part is missing from the cache."""
    if kind == "file":
        chunks = object_chunks(store, digest)
        return None if chunks is None else dict(chunks)
    entries = tree_entries(store, digest)
    if entries is None:
        return None
    out: dict[bytes, int] = {}
    for e in entries:
        if e.digest is None:
            continue
        chunks = object_chunks(store, e.digest)
        if chunks is None:
            return None
        out.update(chunks)
    return out


def chunk_sharing(store: LocalStore, old: Pointer, new: Pointer) -> ChunkSharing | None:
    """Chunks the new version shares with the old one (None if either is not in the cache)."""
    a = content_chunks(store, old.kind, old.digest)
    b = content_chunks(store, new.kind, new.digest) if a is not None else None
    if a is None or b is None:
        return None
    fresh = [n for cid, n in b.items() if cid not in a]
    return ChunkSharing(old_chunks=len(a), new_chunks=len(b), shared_chunks=len(b) - len(fresh),
                        new_bytes=sum(fresh), total_bytes=sum(b.values()))


def _inline(ptr: Pointer) -> dict[str, tuple[str, int]] | None:
    if ptr.entries is None:
        return None
    out = {}
    for e in ptr.entries:
        path = e.get("path")
        if isinstance(path, str) and path and not path.endswith("/"):
            size = e.get("size")
            out[path] = (str(e.get("xxh128")), size if isinstance(size, int) else 0)
    return out


def _side(p: Pointer | None) -> dict[str, tuple[str, int]] | None:
    if p is None or p.kind != "dir":
        return {}
    return _inline(p)


def _tree_diff(store: LocalStore, old: bytes | None, new: bytes | None
               ) -> list[tuple[str, TreeEntry | None, TreeEntry | None]] | None:
    """The files that differ between two folder trees in the cache (None for a side that
    is not a folder: all of the other side's files), or None if a tree is missing. Equal
    subfolders are not opened (``tree.diff_trees``)."""
    cached = tree_loader(store)

    def load(tid: bytes) -> bytes:
        return HEADER if tid == EMPTY_TREE else cached(tid)

    try:
        for top in (old, new):
            if top is not None:
                load(top)  # both must be in the cache, even when they are the same
        # Files only: an empty folder that appears or goes is no file change.
        return [(p, x, y) for p, x, y in diff_trees(load, old or EMPTY_TREE, new or EMPTY_TREE)
                if (x is not None and x.digest is not None)
                or (y is not None and y.digest is not None)]
    except CasError:
        return None


def file_changes(store: LocalStore, old: Pointer | None, new: Pointer | None
                 ) -> FileChanges | None:
    """Files added/removed/modified between two folder versions: from the trees in the cache,
    else from the pointers' inline ``entries``; None when neither side can tell. A folder
    that appears or disappears counts all its files as added or removed."""
    diff = _tree_diff(store, old.digest if old is not None and old.kind == "dir" else None,
                      new.digest if new is not None and new.kind == "dir" else None)
    if diff is not None:
        fc = FileChanges(source="tree")
        for path, x, y in diff:
            if x is None or x.digest is None:
                fc.added.append(path)
                fc.added_bytes += y.size if y is not None else 0
            elif y is None or y.digest is None:
                fc.removed.append(path)
                fc.removed_bytes += x.size
            else:
                fc.modified.append(path)
                fc.modified_bytes += y.size
        fc.added.sort()
        fc.removed.sort()
        fc.modified.sort()
        return fc
    # Small folders list their files in the pointer itself.
    a, b = _side(old), _side(new)
    if a is None or b is None:
        return None
    fc = FileChanges(source="entries")
    fc.added = sorted(set(b) - set(a))
    fc.removed = sorted(set(a) - set(b))
    fc.modified = sorted(p for p in set(a) & set(b) if a[p][0] != b[p][0])
    fc.added_bytes = sum(b[p][1] for p in fc.added)
    fc.removed_bytes = sum(a[p][1] for p in fc.removed)
    fc.modified_bytes = sum(b[p][1] for p in fc.modified)
    return fc


def digest_changes(store: LocalStore, old: bytes, new: bytes) -> dict[str, Any]:
    """What the cache can say about two digests known only by value (data lineage):
    files changed when both are folders, bytes new when both are files."""
    sizes = _tree_size(store, old), _tree_size(store, new)
    if sizes[0] is not None and sizes[1] is not None:
        diff = _tree_diff(store, old, new)
        if diff is not None:
            added = [y for _, x, y in diff if x is None or x.digest is None]
            removed = [x for _, x, y in diff if y is None or y.digest is None]
            modified = [y for _, x, y in diff if x is not None and y is not None
                        and x.digest is not None and y.digest is not None]
            return {"kind": "dir", "files_added": len(added), "files_removed": len(removed),
                    "files_modified": len(modified),
                    "bytes_changed": sum(e.size for e in added + modified if e is not None)
                    + sum(e.size for e in removed if e is not None),
                    "old_size": sizes[0], "new_size": sizes[1]}
    ca, cb = object_chunks(store, old), object_chunks(store, new)
    if ca is not None and cb is not None:
        have = {cid for cid, _ in ca}
        return {"kind": "file", "old_size": sum(n for _, n in ca),
                "new_size": sum(n for _, n in cb),
                "new_bytes": sum(n for cid, n in dict(cb).items() if cid not in have)}
    return {}


# -- formats --------------------------------------------------------------------------

def is_safetensors(name: str) -> bool:
    return name.lower().endswith(".safetensors")


def tensor_diff(store: LocalStore, old: Pointer, new: Pointer,
                reporter: Reporter = SILENT) -> Any:
    """safetensors TensorDiff of two file versions, or None (not safetensors / not cached).

    Headers are read through the content reader, and tensors whose bytes map to the same
    chunks on both sides are known equal without reading them.
    """
    if old.kind != "file" or new.kind != "file" or not (is_safetensors(old.path)
                                                        and is_safetensors(new.path)):
        return None
    if store.locate(old.digest) is None or store.locate(new.digest) is None:
        return None
    ra = ContentReader(store, old.digest, old.size)
    rb = ContentReader(store, new.digest, new.size)
    ha, hb = parse_header(ra.read_at, old.size), parse_header(rb.read_at, new.size)
    total = sum(t.nbytes for name, t in hb.tensors.items() if name in ha.tensors)
    with reporter.progress(f"comparing tensors of {new.path}", total) as bar:

        def read_b(offset: int, length: int) -> bytes:
            data = rb.read_at(offset, length)
            bar.advance(len(data))
            return data

        return diff_tensors(ha, hb, ra.read_at, read_b,
                            ranges_equal=lambda x, y, n: same_chunks(ra, rb, x, y, n))


def table_diff(store: LocalStore, old_name: str, old_digest: bytes, old_size: int,
               new_name: str, new_digest: bytes, new_size: int, *,
               rows: RowOptions | None = None, display: str = "") -> Any:
    """TableDiff (schema and row counts, and with ``rows`` the row-level difference) of two
    Parquet/CSV versions, or None when the cache lacks one or the files are no tables."""
    # start-up: rowdiff costs ~17 ms (7 modules); only table diffs load it
    from .rowdiff import row_diff

    if store.locate(old_digest) is None or store.locate(new_digest) is None:
        return None
    infos = []
    readers = []
    for name, digest, size in ((old_name, old_digest, old_size), (new_name, new_digest,
                                                                 new_size)):
        reader = ContentReader(store, digest, size)
        fmt = detect_format(name, reader.read_at(0, 4))
        if fmt is None:
            return None
        with reader.open() as f:
            infos.append(table_info(f, fmt, delimiter=_delimiter(name)))
        readers.append(reader)
    row = None
    if rows is not None:
        key = rows.keys.for_path(display) if rows.keys is not None else None
        ra, rb = readers
        try:
            row = row_diff(ra.open, infos[0].format, rb.open, infos[1].format, key=key,
                           delimiter_old=_delimiter(old_name) or ",",
                           delimiter_new=_delimiter(new_name) or ",", tmpdir=rows.tmpdir,
                           size_hint=max(old_size, new_size))
        except TableError as exc:
            if key is None:
                raise
            # A key that does not fit this table must not hide its rows: compare by content.
            rows.notes.append(f"{display}: {exc}; rows compared by content instead")
            row = row_diff(ra.open, infos[0].format, rb.open, infos[1].format, key=None,
                           delimiter_old=_delimiter(old_name) or ",",
                           delimiter_new=_delimiter(new_name) or ",", tmpdir=rows.tmpdir,
                           size_hint=max(old_size, new_size))
    return diff_tables(infos[0], infos[1], row)


def _delimiter(name: str) -> str | None:
    return "\t" if name.lower().endswith(".tsv") else None


def is_table(name: str) -> bool:
    return detect_format(name) is not None


@dataclass
class RowOptions:
    """How tables are compared row by row: key columns per table, where partition files go
    (large tables), and where problems are noted."""

    keys: TableKeys | None = None
    tmpdir: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Details:
    """What the cache tells about the formats inside two versions."""

    tensors: Any = None  # TensorDiff of a safetensors file
    table: Any = None  # TableDiff of a Parquet/CSV file
    tables: dict[str, Any] = field(default_factory=dict)  # per table file in a folder
    tensor_files: dict[str, Any] = field(default_factory=dict)  # per model in a folder


INDEX_SUFFIX = ".safetensors.index.json"
MAX_INDEX_BYTES = 64 << 20  # a weight map of a million tensors; anything larger is hostile


def _models(store: LocalStore, entries: list[TreeEntry], notes: list[str], display: str
            ) -> dict[str, dict[str, TreeEntry]]:
    """The models of a folder: {model name: {file: entry}}. A sharded model is named after
    its index (``model.safetensors`` for ``model.safetensors.index.json``) and holds the
    shards its weight map names; every other safetensors file is a model of its own."""
    files = {e.path: e for e in entries if e.digest is not None}
    out: dict[str, dict[str, TreeEntry]] = {}
    claimed: set[str] = set()
    for path, e in sorted(files.items()):
        if not path.endswith(INDEX_SUFFIX) or e.size > MAX_INDEX_BYTES:
            continue
        assert e.digest is not None
        if store.locate(e.digest) is None:
            continue
        try:
            raw = ContentReader(store, e.digest, e.size).read_at(0, e.size)
            weight_map = json.loads(raw.decode("utf-8")).get("weight_map")
            shards = sorted(set(weight_map.values()))
        except (ValueError, AttributeError, TypeError, CasError):
            notes.append(f"{display}/{path}: not a readable weight map; its shards are "
                         "compared one by one")
            continue
        folder = posixpath.dirname(path)
        members = {}
        for shard in shards:
            full = posixpath.normpath(posixpath.join(folder, str(shard)))
            if full in files and is_safetensors(full):
                members[full] = files[full]
        if members:
            out[path[:-len(".index.json")]] = members
            claimed |= set(members)
    for path, e in files.items():
        if is_safetensors(path) and path not in claimed:
            out[path] = {path: e}
    return out


def _tensor_refs(store: LocalStore, members: dict[str, TreeEntry],
                 readers: dict[str, ContentReader]) -> dict[str, Any] | None:
    """{tensor name: TensorRef} over all files of one model; None if the cache lacks one."""
    refs: dict[str, Any] = {}
    for path, e in sorted(members.items()):
        assert e.digest is not None
        if store.locate(e.digest) is None:
            return None
        reader = ContentReader(store, e.digest, e.size)
        readers[path] = reader
        header = parse_header(reader.read_at, e.size)
        for name, info in header.tensors.items():
            if name in refs:
                raise SafetensorsError(f"tensor {name!r} is in both {refs[name].file} and "
                                       f"{path}")
            refs[name] = TensorRef(info, reader.read_at, path)
    return refs


def folder_tensor_diffs(store: LocalStore, old: Pointer, new: Pointer, notes: list[str],
                        display: str, reporter: Reporter = SILENT) -> dict[str, Any]:
    """{model name: TensorDiff} for the safetensors models of two folder versions that
    changed, tensors matched by name across shards; models the cache cannot read are
    left out with a note."""
    ta, tb = tree_entries(store, old.digest), tree_entries(store, new.digest)
    if ta is None or tb is None:
        return {}
    ma, mb = _models(store, ta, notes, display), _models(store, tb, notes, display)
    index_a = {e.path: e.digest for e in ta}
    index_b = {e.path: e.digest for e in tb}
    out: dict[str, Any] = {}
    for model in sorted(ma.keys() | mb.keys()):
        fa, fb = ma.get(model, {}), mb.get(model, {})
        same = ({p: e.digest for p, e in fa.items()} == {p: e.digest for p, e in fb.items()}
                and index_a.get(model + ".index.json") == index_b.get(model + ".index.json"))
        if same:
            continue
        readers_a: dict[str, ContentReader] = {}
        readers_b: dict[str, ContentReader] = {}
        try:
            refs_a = _tensor_refs(store, fa, readers_a)
            refs_b = _tensor_refs(store, fb, readers_b)
            if refs_a is None or refs_b is None:
                notes.append(f"{display}/{model}: the cache lacks a shard; tensors not "
                             "compared")
                continue
            total = sum(r.info.nbytes for n, r in refs_b.items() if n in refs_a)

            def equal(x: Any, y: Any, ra: dict[str, ContentReader] = readers_a,
                      rb: dict[str, ContentReader] = readers_b) -> bool | None:
                return same_chunks(ra[x.file], rb[y.file], x.info.offset, y.info.offset,
                                   x.info.nbytes)

            with reporter.progress(f"comparing tensors of {display}/{model}", total):
                out[model] = diff_tensor_sets(refs_a, refs_b, same=equal)
        except (SafetensorsError, CasError) as exc:
            notes.append(f"{display}/{model}: cannot compare tensors ({exc})")
    return out


def format_details(store: LocalStore, old: Pointer, new: Pointer, files: FileChanges | None,
                   notes: list[str], display: str, reporter: Reporter = SILENT,
                   rows: RowOptions | None = None) -> Details:
    """Tensors, tables and the models and tables inside folders of two versions; problems
    reading a format become notes, never failures of the whole report. With ``rows``,
    tables are compared row by row (which reads them whole, streaming)."""
    out = Details()
    if rows is not None:
        rows.notes = notes
    try:
        out.tensors = tensor_diff(store, old, new, reporter)
    except (SafetensorsError, CasError) as exc:
        notes.append(f"{display}: cannot compare tensors ({exc})")
    if old.kind == "file" and new.kind == "file" and is_table(new.path):
        try:
            out.table = table_diff(store, old.path, old.digest, old.size, new.path,
                                   new.digest, new.size, rows=rows, display=display)
        except (TableError, CasError) as exc:
            notes.append(f"{display}: cannot compare tables ({exc})")
    if old.kind == "dir" and new.kind == "dir":
        out.tensor_files = folder_tensor_diffs(store, old, new, notes, display, reporter)
    if old.kind == "dir" and new.kind == "dir" and files is not None and files.modified:
        ta, tb = tree_entries(store, old.digest), tree_entries(store, new.digest)
        if ta is not None and tb is not None:
            ea, eb = {e.path: e for e in ta}, {e.path: e for e in tb}
            for name in [n for n in files.modified if is_table(n)][:MAX_DETAILED_FILES]:
                a, b = ea[name], eb[name]
                assert a.digest is not None and b.digest is not None
                try:
                    d = table_diff(store, name, a.digest, a.size, name, b.digest, b.size,
                                   rows=rows, display=f"{display}/{name}")
                except (TableError, CasError) as exc:
                    notes.append(f"{display}/{name}: cannot compare tables ({exc})")
                    continue
                if d is not None:
                    out.tables[name] = d
    return out
