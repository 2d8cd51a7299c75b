"""System packages for peers and ceilings (git-lfs, xxhash): installed with apt only when we are
root, so a developer's unprivileged run reports them as unavailable instead of failing."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping

_updated = False


def apt_install(packages: list[str], env: Mapping[str, str]) -> bool:
    global _updated
    if os.geteuid() != 0:
        return False
    print(f"  installing {' '.join(packages)} with apt-get ...", flush=True)
    apt_env = dict(env, DEBIAN_FRONTEND="noninteractive")
    try:
        if not _updated:
            subprocess.run(["apt-get", "update", "-qq"], env=apt_env, capture_output=True,
                           timeout=600, check=False)
            _updated = True
        proc = subprocess.run(["apt-get", "install", "-y", "-qq", *packages], env=apt_env,
                              capture_output=True, timeout=900, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0
