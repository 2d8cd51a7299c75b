"""What ``cas compare`` and ``cas diff`` return: the two sides, lineage changes and every
changed artifact, with what changed in their content and which review rules broke.

The operations (``casstore.ops.compare``, ``casstore.ops.diff``) fill them in;
``casstore.review.render`` turns them into text and Markdown.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..pointer import SUFFIX
from . import tables, tensors
from .compare import MetaComparison
from .compare import to_dict as meta_to_dict
from .content import ChunkSharing, FileChanges
from .history import PointerState
from .rules import Regression


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


@dataclass
class DiffEntry:
    """One artifact that was added, removed, modified or renamed."""

    path: str  # the data, repo-relative (the new name for renames)
    pointer: str
    status: str  # added, removed, modified, renamed
    kind: str
    old_path: str | None = None
    old_size: int | None = None
    new_size: int | None = None
    old_digest: str | None = None
    new_digest: str | None = None
    new_bytes: int | None = None  # bytes of chunks the old version lacked (cache permitting)
    files: FileChanges | None = None
    old_version: str | None = None
    new_version: str | None = None
    meta: MetaComparison | None = None
    tensors: Any = None
    table: Any = None
    tables: dict[str, Any] = field(default_factory=dict)
    tensor_files: dict[str, Any] = field(default_factory=dict)  # per model in a folder
    regressions: list[Regression] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items()
             if k not in ("files", "meta", "tensors", "table", "tables", "tensor_files",
                          "regressions")}
        d["files"] = self.files.to_dict() if self.files else None
        d["meta"] = meta_to_dict(self.meta) if self.meta else None
        d["tensors"] = tensors.to_dict(self.tensors) if self.tensors else None
        d["table"] = tables.to_dict(self.table) if self.table else None
        d["tables"] = {k: tables.to_dict(v) for k, v in self.tables.items()}
        d["tensor_files"] = {k: tensors.to_dict(v)
                             for k, v in self.tensor_files.items()}
        d["regressions"] = [r.to_dict() for r in self.regressions]
        return d


@dataclass
class DiffResult:
    old: str  # revision names as given (or "workspace")
    new: str
    old_commit: str | None
    new_commit: str | None
    entries: list[DiffEntry] = field(default_factory=list)
    unchanged: int = 0
    notes: list[str] = field(default_factory=list)
    rules: bool = False  # whether review rules are configured at all

    @property
    def regressions(self) -> list[Regression]:
        """Every review rule broken, artifact by artifact."""
        return [r for e in self.entries for r in e.regressions]

    def to_dict(self) -> dict[str, Any]:
        return {"old": self.old, "new": self.new, "old_commit": self.old_commit,
                "new_commit": self.new_commit, "entries": [e.to_dict() for e in self.entries],
                "unchanged": self.unchanged, "notes": list(self.notes),
                "regressions": [r.to_dict() for r in self.regressions]}
