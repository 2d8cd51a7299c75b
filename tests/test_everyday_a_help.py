"""`cas --help` lists each command with one complete sentence, and usage lines show real
argument names (issue 14, part A)."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import git_env, run_cas


def _help(*args: str) -> str:
    env = {**git_env(), "COLUMNS": "400", "TERM": "dumb"}
    return run_cas(Path.cwd(), *args, "--help", env=env, timeout=60).stdout


def test_every_command_is_listed_with_one_complete_sentence() -> None:
    text = _help()
    block = text[text.index("Commands"):]
    rows = [ln.strip("│ ").rstrip() for ln in block.splitlines()[1:] if ln.startswith("│")]
    assert len(rows) >= 20
    for row in rows:
        name, _, desc = row.partition(" ")
        assert name, row  # no continuation lines: each command fits on its own row
        assert desc.strip().endswith("."), row


def test_usage_lines_name_the_arguments(tmp_path: Path) -> None:
    expected = {
        ("add",): "PATH", ("checkout",): "[PATH]...", ("push",): "[PATH]...",
        ("fetch",): "[PATH]...", ("pull",): "[PATH]...", ("get",): "URL",
        ("version",): "PATH", ("log",): "PATH", ("compare",): "OLD", ("config",): "[KEY]",
        ("remote", "add"): "NAME", ("remote", "modify"): "OPTION", ("merge",): "[POINTER]...",
    }
    for cmd, name in expected.items():
        usage = next(ln for ln in _help(*cmd).splitlines() if "Usage:" in ln)
        assert name in usage, usage
        assert not re.search(r"\b(paths|targets|url|path|pointers)\b", usage), usage
