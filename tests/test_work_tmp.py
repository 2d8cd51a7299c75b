"""Temp folders for writes into the working tree (casstore.atomic.WorkTmp): what a killed
command leaves behind is removed by the next one, what a live one holds is not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from casstore.atomic import WorkTmp


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid  # reaped: no process has it (until the kernel hands it out again)


def test_a_new_folder_of_a_killed_process_goes_at_once(tmp_path: Path) -> None:
    base = tmp_path / "tmp" / "work"
    base.mkdir(parents=True)
    # Killed between creating its folder and locking it: no lock to test, only its pid.
    left = base / f".new-{dead_pid()}-0123456789ab"
    left.mkdir()
    (left / "lock").touch()
    live = base / f".new-{os.getppid()}-0123456789ab"  # a live process mid-creation
    live.mkdir()
    tmp = WorkTmp(tmp_path)
    dest = tmp_path / "file.bin"
    path = tmp.path_for(dest)
    assert not left.exists()
    assert live.exists()
    assert path.parent.parent == base and not path.parent.name.startswith(".new-")


def test_a_locked_folder_is_kept_and_an_unlocked_one_removed(tmp_path: Path) -> None:
    first = WorkTmp(tmp_path)
    held = first.path_for(tmp_path / "a").parent
    (tmp_path / "tmp" / "work" / "123-abandoned").mkdir()
    (tmp_path / "tmp" / "work" / "123-abandoned" / "lock").touch()
    second = WorkTmp(tmp_path)
    second.path_for(tmp_path / "b")
    assert held.exists()
    assert not (tmp_path / "tmp" / "work" / "123-abandoned").exists()
