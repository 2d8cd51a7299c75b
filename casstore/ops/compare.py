"""cas compare: two versions of one artifact, side by side.

Metrics, params, data lineage and environment come from the pointers' ``meta`` blocks;
how much of the content changed (shared chunks, files, tensors, table schema) comes from
the cache when it holds both versions, read through recipes without a checkout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..hashing import parse_hex_id
from ..review.compare import compare_meta
from ..review.content import (
    RowOptions,
    chunk_sharing,
    digest_changes,
    file_changes,
    format_details,
)
from ..review.refs import resolve
from ..review.results import CompareResult, LineageChange, Side
from ..review.rules import check
from ..review.settings import TableKeys, higher_is_better_hints, review_rules

if TYPE_CHECKING:
    from ..project import Project


def _digest(v: object) -> bytes | None:
    # meta is free-form input: only a well-formed digest is looked up in the cache.
    try:
        return parse_hex_id(v) if isinstance(v, str) else None
    except ValueError:
        return None


def compare(repo: Project, a: str, b: str, *, key: str | None = None) -> CompareResult:
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
