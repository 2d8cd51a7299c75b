"""The import rule of docs/architecture.md ("Imports inside functions"): an import inside a
function is there for start-up time and says so in a comment containing the marker
``start-up``, on its own line or in the lines just above it within the function (one comment
may cover a block of imports). Anything else belongs at the top of its module."""

from __future__ import annotations

import ast
from pathlib import Path

import casstore

MARKER = "start-up"
PACKAGE = Path(casstore.__file__).parent


def _comment(line: str) -> str:
    """The comment part of one source line ('' if none); good enough for import lines and
    comment lines, which are all this looks at (no '#' inside their strings)."""
    return line[line.index("#") :] if "#" in line else ""


def unexplained_imports(source: str) -> list[int]:
    """Line numbers of function-level imports without a start-up comment."""
    tree = ast.parse(source)
    lines = source.splitlines()
    found: list[int] = []

    def visit(node: ast.AST, func: ast.FunctionDef | ast.AsyncFunctionDef | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, child)
                continue
            if func is not None and isinstance(child, (ast.Import, ast.ImportFrom)):
                if not _explained(child, func, lines):
                    found.append(child.lineno)
            visit(child, func)

    def _explained(
        imp: ast.Import | ast.ImportFrom,
        func: ast.FunctionDef | ast.AsyncFunctionDef,
        lines: list[str],
    ) -> bool:
        end = imp.end_lineno or imp.lineno
        comments = [_comment(lines[i - 1]) for i in range(imp.lineno, end + 1)]
        # Walk up through comments, blank lines and the imports just before this one.
        import_lines = {
            i
            for n in ast.walk(func)
            if isinstance(n, (ast.Import, ast.ImportFrom))
            for i in range(n.lineno, (n.end_lineno or n.lineno) + 1)
        }
        i = imp.lineno - 1
        while i > func.lineno:
            text = lines[i - 1].strip()
            if text and not text.startswith("#") and i not in import_lines:
                break
            comments.append(_comment(lines[i - 1]))
            i -= 1
        return any(MARKER in c.lower() for c in comments)

    visit(tree, None)
    return found


def test_function_level_imports_say_they_are_for_start_up() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line in unexplained_imports(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, (
        "imports inside functions without a '# ... start-up ...' comment (move them to the"
        " top of the module, or say what they save at start-up): " + ", ".join(offenders)
    )


def test_the_check_tells_explained_from_unexplained_imports() -> None:
    source = '''
import os


def covered():
    # imported here: start-up, pyarrow is heavy
    import json
    import csv

    return json, csv


def trailing():
    import json  # start-up: only this rare path needs it

    return json


def bare():
    x = 1
    import json

    return json, x


def comment_above_other_code():
    # start-up: this comment belongs to the statement below, not the import
    x = 1
    import json

    return json, x


def nested():
    def inner():
        import json

        return json

    return inner
'''
    lines = source.splitlines()
    json_imports = [i + 1 for i, text in enumerate(lines) if text.strip().startswith("import json")]
    # covered and trailing pass; bare, comment_above_other_code and nested do not.
    assert unexplained_imports(source) == json_imports[2:]
