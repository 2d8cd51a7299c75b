"""Ceilings: what the machine does with the same bytes and no version control at all.

`cat` is the read speed, `cp` read+write, `xxh128sum` read+hash with the digest casstore uses.
A data tool cannot beat these; the ratio to them says how much room is left.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

from benchmarks.peers.system import apt_install
from benchmarks.runner import Cmd


def xxh_available(env: dict[str, str], allow_install: bool) -> bool:
    if not shutil.which("xxh128sum") and allow_install:
        apt_install(["xxhash"], env)
    return shutil.which("xxh128sum") is not None


def file_ceilings(src: Path, scratch: Path, with_xxh: bool) -> dict[str, list[Cmd]]:
    """Commands per ceiling for one big file; cp writes into `scratch` (removed afterwards)."""
    s = shlex.quote(str(src))
    out = {
        "cat": [Cmd(f"cat {s} > /dev/null", scratch)],
        "cp": [Cmd(["cp", str(src), str(scratch / src.name)], scratch)],
    }
    if with_xxh:
        out["xxh128sum"] = [Cmd(["xxh128sum", str(src)], scratch)]
    return out


def tree_ceilings(src: Path, scratch: Path, with_xxh: bool) -> dict[str, list[Cmd]]:
    """The same for a directory of many files."""
    s = shlex.quote(str(src))
    out = {
        "cat": [Cmd(f"find {s} -type f -print0 | xargs -0 cat > /dev/null", scratch)],
        "cp": [Cmd(["cp", "-r", str(src), str(scratch / src.name)], scratch)],
    }
    if with_xxh:
        out["xxh128sum"] = [Cmd(f"find {s} -type f -print0 | xargs -0 xxh128sum > /dev/null",
                                scratch)]
    return out


S3_SCRIPT = """
import sys, s3fs
endpoint, op, local, remote = sys.argv[1:5]
fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint})
if op == "put":
    fs.put(local, remote, recursive=True)
else:
    fs.get(remote, local, recursive=True)
"""


def s3_copy(endpoint: str, op: str, local: Path, remote: str, cwd: Path) -> list[Cmd]:
    """Raw s3fs put/get of the same bytes: the S3 ceiling (same library casstore uses)."""
    return [Cmd([sys.executable, "-c", S3_SCRIPT, endpoint, op, str(local), remote], cwd)]
