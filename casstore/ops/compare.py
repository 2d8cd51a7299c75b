"""cas compare: two versions of one artifact, side by side.

Metrics, params, data lineage and environment come from the pointers' ``meta`` blocks;
how much of the content changed (shared chunks, files, tensors, table schema) comes from
the cache when it holds both versions, read through recipes without a checkout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..hashing import parse_hex_id
from ..pointer import SUFFIX
from ..review.compare import MetaComparison, compare_meta
from ..review.compare import to_dict as meta_to_dict
from ..review.content import (
    ChunkSharing,
    FileChanges,
    RowOptions,
    chunk_sharing,
    digest_changes,
    file_changes,
    format_details,
)
from ..review.history import PointerState
from ..review.refs import resolve
from ..review.rules import Regression, check
from ..review.settings import TableKeys, higher_is_better_hints, review_rules

if TYPE_CHECKING:
    from ..repo import Repo


@dataclass
class Side:
    """One of the two compared states."""

    spec: str  # as the user wrote it
    path: str  # the data, repo-relative
    pointer: str
    commit: str | None  # None: the working tree
    version: str | None
    kind: str
    size: int
    digest: str

    @classmethod
    def of(cls, spec: str, st: PointerState) -> Side:
        return cls(spec=spec, path=st.path[:-len(SUFFIX)], pointer=st.path, commit=st.commit,
                   version=st.version, kind=st.pointer.kind, size=st.pointer.size,
                   digest=st.pointer.digest.hex())

    @property
    def label(self) -> str:
        where = self.version or (self.commit[:10] if self.commit else "working tree")
        return f"{self.path}@{where}"


@dataclass
class LineageChange:
    """One data pointer the two versions were trained on that differs."""

    pointer: str
    status: str  # added, removed, changed
    old: str | None  # digests
    new: str | None
    detail: dict[str, Any] = field(default_factory=dict)  # from the cache, when it knows


@dataclass
class CompareResult:
    old: Side
    new: Side
    meta: MetaComparison
    same_content: bool
    chunks: ChunkSharing | None = None
    files: FileChanges | None = None
    tensors: Any = None  # review.tensors.TensorDiff
    table: Any = None  # review.tables.TableDiff
    tables: dict[str, Any] = field(default_factory=dict)  # per modified file in a folder
    tensor_files: dict[str, Any] = field(default_factory=dict)  # per model in a folder
    lineage: list[LineageChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    regressions: list[Regression] = field(default_factory=list)  # review rules broken
    rules: bool = False  # whether review rules are configured at all

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        from ..review import tables, tensors

        return {
            "old": asdict(self.old), "new": asdict(self.new),
            "meta": meta_to_dict(self.meta), "same_content": self.same_content,
            "chunks": self.chunks.to_dict() if self.chunks else None,
            "files": self.files.to_dict() if self.files else None,
            "tensors": tensors.to_dict(self.tensors) if self.tensors else None,
            "table": tables.to_dict(self.table) if self.table else None,
            "tables": {k: tables.to_dict(v) for k, v in self.tables.items()},
            "tensor_files": {k: tensors.to_dict(v)
                             for k, v in self.tensor_files.items()},
            "lineage": [asdict(c) for c in self.lineage],
            "notes": list(self.notes),
            "regressions": [r.to_dict() for r in self.regressions],
        }


def _digest(v: object) -> bytes | None:
    # meta is free-form input: only a well-formed digest is looked up in the cache.
    try:
        return parse_hex_id(v) if isinstance(v, str) else None
    except ValueError:
        return None


def compare(repo: Repo, a: str, b: str, *, key: str | None = None) -> CompareResult:
    """Compare ``a`` (old) with ``b`` (new); each is PATH, PATH@VERSION, PATH@ALIAS or
    PATH@GITREV. ``key`` ("id" or "a,b") matches table rows (else ``review.tables``)."""
    rules = review_rules(repo)  # first: a malformed rule fails before any work
    keys = TableKeys(repo, key)
    sa, sb = resolve(repo, a), resolve(repo, b)
    pa, pb = sa.pointer, sb.pointer
    res = CompareResult(old=Side.of(a, sa), new=Side.of(b, sb),
                        meta=compare_meta(sa.meta, sb.meta,
                                          higher_is_better_hints=higher_is_better_hints(repo)),
                        same_content=pa.digest == pb.digest and pa.kind == pb.kind,
                        rules=bool(rules))
    res.regressions = check(res.new.path, res.meta, rules)
    store = repo.cache
    if not res.same_content:
        res.chunks = chunk_sharing(store, pa, pb)
        if res.chunks is None:
            res.notes.append("the cache lacks one of the versions' content, so shared chunks, "
                             "tensors and tables are not compared; 'cas fetch --rev REV' "
                             "brings a past version's data from the remote")
        if pa.kind == "dir" or pb.kind == "dir":
            res.files = file_changes(store, pa, pb)
        details = format_details(store, pa, pb, res.files, res.notes, res.new.path,
                                 repo.reporter, RowOptions(keys=keys))
        res.tensors, res.table, res.tables = details.tensors, details.table, details.tables
        res.tensor_files = details.tensor_files
    for change in res.meta.data:
        detail = {}
        old_id, new_id = _digest(change.old), _digest(change.new)
        if old_id is not None and new_id is not None:
            detail = digest_changes(store, old_id, new_id)
        res.lineage.append(LineageChange(change.name, change.status, change.old, change.new,
                                         detail))
    return res
