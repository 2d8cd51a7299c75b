"""Run modes: how big the data is and how often each step repeats.

Quick shrinks the issue's sizes so that a developer gets an answer in under five minutes; full
uses the issue's sizes; smoke only proves the harness still works (CI) and never judges speed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks.datagen import GiB, MiB


@dataclass(frozen=True)
class Mode:
    name: str
    reps: int
    big: int  # scenario 1/3/4 file size
    small_count: int  # scenario 2/4 file count
    small_folders: int
    small_size: int
    model_bytes: int  # one checkpoint of scenario 5
    model_steps: int
    model_layers: int
    model_trainable: int
    scaling: list[int] = field(default_factory=list)
    remote_small_count: int = 0  # scenario 4's small files; 0 = same as small_count
    remote_big: int = 0  # scenario 4's big file; 0 = same as big
    peers: bool = True
    ceilings: bool = True
    edit: int = 1 * MiB
    insert: int = 100
    # Scenario 7 (many files of 1 KiB): casstore at each count, DVC and Git LFS at the peer
    # counts (each of their commands stopped after 30 minutes).
    many_counts: list[int] = field(default_factory=list)
    many_peer_counts: list[int] = field(default_factory=list)
    many_folders: int = 1000
    # The issue's sizes, to say in the report where a mode deviates from them.
    issue_big: int = 1 * GiB
    issue_small_count: int = 20_000


MODES = {
    "smoke": Mode("smoke", reps=1, big=4 * MiB, small_count=200, small_folders=4,
                  small_size=4096, model_bytes=4 * MiB, model_steps=5, model_layers=8,
                  model_trainable=2, scaling=[8 * MiB], peers=False, ceilings=False,
                  many_counts=[1_000], many_folders=10),
    # Quick aims at well under five minutes on this 2-core machine: scenario 1 already measures
    # the 256 MiB add, so scaling adds only 1 GiB; scenario 2 uses 2,000 files; scenario 4
    # moves a 32 MiB file and 200 small files (DVC needs ~5 ms per file to the moto server,
    # and moto itself is the slowest part of every S3 step).
    "quick": Mode("quick", reps=3, big=256 * MiB, small_count=2_000, small_folders=20,
                  small_size=4096, model_bytes=64 * MiB, model_steps=5, model_layers=8,
                  model_trainable=2, scaling=[1 * GiB], remote_small_count=200,
                  remote_big=32 * MiB, many_counts=[200_000]),
    # Full uses the issue's sizes except in scenario 4: DVC and raw s3fs need ~110 s per push
    # or pull of 20,000 files to the moto server, so three repetitions at that size would
    # take the whole budget. It moves the 1 GiB file and 2,000 small files instead
    # (docs/performance.md keeps a one-repetition run at 20,000 files).
    "full": Mode("full", reps=3, big=1 * GiB, small_count=20_000, small_folders=20,
                 small_size=4096, model_bytes=200 * MiB, model_steps=5, model_layers=8,
                 model_trainable=2, scaling=[256 * MiB, 1 * GiB, 4 * GiB],
                 remote_small_count=2_000, many_counts=[100_000, 1_000_000],
                 many_peer_counts=[100_000, 1_000_000]),
}


def human(n: float) -> str:
    """Sizes as people say them: 256 MiB, 1 GiB, 4 KiB, 1.4 MiB."""
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if abs(n) >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n:.0f} B"
