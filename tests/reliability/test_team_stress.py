"""A team sharing one remote while a collector runs on it: three writers and a remote gc at once.

Clones A, B and C of one bare Git repository push to the same default remote (a local folder,
or the S3 test server), each in its own thread: write a few files (tens to hundreds of KiB)
whose bytes overlap across clones -- whole files and parts of files are drawn from a common
pool, so pushes dedup against each other's packs -- then ``cas add``, ``git commit``,
``cas push``, ``git push``. They also amend and force-push, create and delete branches
(``git push origin --delete``), and write again bytes that were on a deleted branch or in an
amended-away commit, which races a push that dedups against a pack the collector has condemned
or is deleting (``cas status --remote`` tells, just before the push, where those bytes are).
A fourth clone D loops ``git fetch --prune origin`` and
``cas gc --remote origin --grace <2 s> --keep-pushed 0 --all-branches --json``.

What is guaranteed, and checked afterwards from a fresh clone:

- Retention is zero (``--keep-pushed 0``): root records keep nothing live by age, so pushes
  within retention protect nothing here and only what a branch of the shared Git repository
  points to is guaranteed. Data pushed for a commit that was later amended away, or whose
  branch was deleted, may be collected.
- ``--all-branches`` keeps the data of branch heads (local and remote-tracking), not of their
  ancestors. Every branch head of the bare repository must pull byte-identical to what its
  writer committed. Every other commit on a branch (``git rev-list --all``) is checked out
  and pulled too: it may lack data gc collected, but whatever it restores must be
  byte-identical.
- This relies on each writer's ``git push`` landing well within the grace period after its
  ``cas push`` (until the branch moves, only the grace period protects a pack the push reused).
  The test records that gap for every commit and prints the largest.

Then ``cas fsck --remote`` must be clean. A quiet end deletes every branch but main, runs gc
twice with the grace period elapsed before each, and checks that the bytes of packs on the
remote went down and that main still pulls byte-identical into a new clone.

The default variants run the team until every kind of event above has happened (pushes,
amends, branches created and deleted, re-adds of deleted bytes, gc runs that condemned and
deleted packs: ``EVENTS``), at least 10 s and at most 40 s; ``--long`` runs it for 10 minutes.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import random
import re
import subprocess
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import Result, git_env, run_cas
from support.s3 import fresh_bucket, s3_endpoint, s3_filesystem, storage_options

KiB = 1024
GRACE_SECONDS = 2.0
GRACE_HOURS = f"{GRACE_SECONDS / 3600:.6f}"  # 0.000556 h
CMD_TIMEOUT = 90.0  # seconds any one cas or git command may take
SHORT_SECONDS = 40.0  # the default variants' longest team phase ...
SHORT_MIN_SECONDS = 10.0  # ... and shortest: it ends once EVENTS all happened
LONG_SECONDS = 600.0
# Each kind of event the team phase exists for, and how many of it end a default run early
# (the checks after the team phase ask for these counts or fewer).
EVENTS = {"pushes": 6, "amends": 1, "branches_created": 1, "branches_deleted": 1,
          "readds_of_deleted_bytes": 1, "gc_runs": 3, "packs_condemned": 1, "packs_deleted": 1}
SHARED_PARTS = tuple(range(1, 13))  # seeds of parts every writer draws from
FILES = ("f0.bin", "f1.bin", "f2.bin", "f3.bin")  # each writer's files, under data/<writer>/
GC_BUSY = "another gc is running on"
CONDEMNED = "on remote only in condemned packs"  # a state of 'cas status --remote'

Content = tuple[int, ...]  # a file's bytes: the concatenation of these parts


# data --------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=512)
def part(seed: int) -> bytes:
    """8-128 KiB of pseudo-random bytes, the same for the same seed."""
    return random.Random(seed).randbytes(8 * KiB + (seed * 7919) % (120 * KiB))


def content(parts: Content) -> bytes:
    return b"".join(part(s) for s in parts)


def describe(data: bytes) -> str:
    return f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}"


def data_paths(root: Path) -> list[Path]:
    """Workspace data files under data/ (not the pointers, not the .gitignore files)."""
    base = root / "data"
    if not base.exists():
        return []
    return sorted(p for p in base.rglob("*") if p.is_file() and not p.name.endswith(".cas")
                  and p.name != ".gitignore")


def clear_data(root: Path) -> None:
    for p in data_paths(root):
        p.unlink()


# commands ----------------------------------------------------------------------------------
@functools.cache
def env() -> dict[str, str]:
    e = git_env()
    e.setdefault("AWS_ACCESS_KEY_ID", "testing")
    e.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    e.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return e


def git(cwd: Path, *args: str, retries: int = 2) -> str:
    """``git args`` with a timeout; retried a little when a ref lock was busy."""
    for attempt in range(retries + 1):
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              env=env(), timeout=CMD_TIMEOUT)
        if proc.returncode == 0:
            return proc.stdout
        if attempt == retries or "lock" not in proc.stderr:
            raise AssertionError(f"git {' '.join(args)} in {cwd.name} failed "
                                 f"({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def cas(cwd: Path, *args: str, check: bool = True) -> Result:
    res = run_cas(cwd, *args, check=False, env=env(), timeout=CMD_TIMEOUT)
    assert "Traceback" not in res.stderr, f"cas {' '.join(args)} in {cwd.name}:\n{res.stderr}"
    if check and res.returncode != 0:
        raise AssertionError(f"cas {' '.join(args)} in {cwd.name} failed ({res.returncode}):"
                             f"\n{res.stdout}\n{res.stderr}")
    return res


def gc_remote(d: Path) -> Result:
    return cas(d, "gc", "--remote", "origin", "--grace", GRACE_HOURS, "--keep-pushed", "0",
               "--all-branches", "--json", check=False)


def fsck_remote(repo: Path, server: Path) -> dict:
    """``cas fsck --remote --json``: must report no damage; returns the report. A damaged
    object is looked up in the pointers of the shared Git repository, to tell live data from
    garbage in the message."""
    res = cas(repo, "fsck", "--remote", "--json", check=False)
    report = json.loads(res.stdout)
    if res.returncode != 0 or not report["ok"] or report["damaged"]:
        lines = [f"  {d}\n    {who_names(server, d)}" for d in report["damaged"]]
        raise AssertionError(f"cas fsck --remote exited {res.returncode}, damage:\n"
                             + "\n".join(lines) + f"\n{json.dumps(report, indent=1)}\n"
                             f"{res.stderr}")
    for w in report["warnings"]:
        # Condemned packs wait for the next gc; an unused recipe whose chunks gc deleted sits
        # in a pack gc kept for its live objects (garbage by fsck's own reading of every
        # root: a live one missing chunks is damage, above).
        assert "condemned" in w or "unused recipe" in w, f"unexpected fsck warning: {w}"
    return report


def who_names(server: Path, damage: str) -> str:
    """Which commits of ``server`` have a pointer naming the first object id in ``damage``."""
    ids = re.findall(r"\b[0-9a-f]{32}\b", damage)
    if not ids:
        return "(no object id in the message)"
    heads = git(server, "for-each-ref", "--format=%(objectname)", "refs/heads").split()
    commits = git(server, "rev-list", "--all").split()

    def grep(revs: list[str]) -> list[str]:
        proc = subprocess.run(["git", "grep", "-l", "-F", ids[0], *revs], cwd=server,
                              capture_output=True, text=True, env=env(), timeout=CMD_TIMEOUT)
        return proc.stdout.split()

    if named := grep(heads):
        return f"{ids[0]} is named by branch heads: {named}"
    if named := grep(commits):
        return f"{ids[0]} is named by no branch head, only by older commits: {named}"
    return f"{ids[0]} is named by no commit on any branch (garbage)"


# the shared remote -------------------------------------------------------------------------
@dataclass
class SharedRemote:
    url: str
    endpoint: str | None = None  # S3 only

    def pack_bytes(self) -> int:
        """Bytes of the pack files on the remote."""
        if self.endpoint is None:
            packs = Path(self.url) / "packs"
            return sum(p.stat().st_size for p in packs.rglob("*.pack")) if packs.exists() else 0
        fs = s3_filesystem(storage_options(self.endpoint))
        base = self.url.removeprefix("s3://") + "/packs"
        found = fs.find(base, detail=True) if fs.exists(base) else {}
        return sum(int(v["size"]) for k, v in found.items() if k.endswith(".pack"))


def shared_remote(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> SharedRemote:
    if backend == "local":
        return SharedRemote(str(tmp_path / "remote"))
    endpoint = s3_endpoint()
    url, opts = fresh_bucket(endpoint, "team")
    bucket = url.removeprefix("s3://").split("/")[0]

    def drop_bucket() -> None:  # the server keeps everything in memory
        with contextlib.suppress(Exception):
            s3_filesystem(opts).rm(bucket, recursive=True)

    request.addfinalizer(drop_bucket)
    return SharedRemote(url, endpoint)


# the team ----------------------------------------------------------------------------------
@dataclass
class Team:
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    expected: dict[str, dict[str, Content]] = field(default_factory=dict)  # commit -> files
    origin: dict[str, str] = field(default_factory=dict)  # commit -> who made it, on which branch
    gaps: dict[str, float] = field(default_factory=dict)  # commit -> s from cas push to git push
    graveyard: list[Content] = field(default_factory=list)  # contents no branch head holds
    counts: Counter = field(default_factory=Counter)
    push_warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, **counts: int) -> None:
        with self.lock:
            for k, v in counts.items():
                self.counts[k] += v


class Writer:
    """One teammate's clone: commits, amends, branches, deletions and re-adds, each pushed."""

    def __init__(self, name: str, root: Path, team: Team, seed: int) -> None:
        self.name, self.root, self.team = name, root, team
        self.rng = random.Random(seed)
        self.home = "main" if name == "a" else f"{name}/home"
        self.branch = "main"
        self.models: dict[str, dict[str, Content]] = {"main": {}}  # branch -> files at its head
        self.own: dict[str, int] = {"main": 0}  # commits made on the branch
        self.fresh_seed = seed * 1_000_000  # parts only this writer makes
        self.temps = 0

    # content
    def fresh(self) -> int:
        self.fresh_seed += 1
        return self.fresh_seed

    def new_content(self, unique_share: float) -> Content:
        return tuple(self.fresh() if self.rng.random() < unique_share
                     else self.rng.choice(SHARED_PARTS) for _ in range(self.rng.randint(1, 3)))

    def change(self, n: int, unique_share: float = 0.5, contents: list[Content] | None = None,
               *, amend: bool = False) -> list[str]:
        """Write ``n`` of this writer's files; with ``amend``, what they held before goes to
        the graveyard (the amended commit leaves every branch)."""
        rels = []
        model = self.models[self.branch]
        for f in self.rng.sample(FILES, n):
            rel = f"data/{self.name}/{f}"
            old = model.get(rel)
            parts = contents.pop() if contents else self.new_content(unique_share)
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content(parts))
            model[rel] = parts
            rels.append(rel)
            if amend and old is not None and old not in model.values():
                with self.team.lock:
                    self.team.graveyard.append(old)
        return rels

    def commit_and_push(self, rels: list[str], *, amend: bool = False,
                        probe: bool = False) -> None:
        cas(self.root, "add", *rels)
        if probe:  # where the remote has the re-added bytes, as the push is about to see it
            out = json.loads(cas(self.root, "status", "--remote", "--json", *rels).stdout)
            states = {s for e in out["entries"] for s in e["states"]}
            self.team.add(**{"readd_found_condemned" if CONDEMNED in states else
                             "readd_found_gone" if "not pushed" in states else
                             "readd_found_live": 1})
        git(self.root, "add", "-A", "data")
        git(self.root, "commit", "-q", "--allow-empty", "-m", f"{self.name}: {rels}",
            *(["--amend"] if amend else []))
        sha = git(self.root, "rev-parse", "HEAD").strip()
        with self.team.lock:
            self.team.expected[sha] = dict(self.models[self.branch])
            self.team.origin[sha] = f"writer {self.name} on {self.branch}"
        out = json.loads(cas(self.root, "push", "--json").stdout)
        assert out["missing"] == [], f"writer {self.name}: push of {sha} misses {out['missing']}"
        pushed = time.monotonic()
        git(self.root, "push", "-q", *(["--force"] if amend else []), "origin",
            f"HEAD:refs/heads/{self.branch}")
        gap = time.monotonic() - pushed
        with self.team.lock:
            self.team.gaps[sha] = gap
            self.team.push_warnings += out["warnings"]
        self.team.add(pushes=1, resent_after_gc=out["resent_after_gc"],
                      bytes_uploaded=out["bytes_uploaded"], amends=int(amend),
                      commits=int(not amend))
        if not amend:
            self.own[self.branch] += 1

    # operations
    def first(self) -> None:
        if self.home != "main":
            git(self.root, "checkout", "-q", "-b", self.home)
            self.models[self.home], self.own[self.home] = {}, 0
            self.branch = self.home
        self.commit_and_push(self.change(2))

    def step(self) -> None:
        on_temp = self.branch != self.home
        ops = {"commit": 3, "amend": 2 if self.own[self.branch] else 0,
               "reuse": 3 if self.team.graveyard else 0}
        if on_temp:
            ops["delete"] = 3
        else:
            ops["branch"] = 2
        op = self.rng.choices(list(ops), weights=list(ops.values()))[0]
        getattr(self, f"op_{op}")()

    def op_commit(self) -> None:
        self.commit_and_push(self.change(self.rng.randint(1, 2)))

    def op_amend(self) -> None:
        self.commit_and_push(self.change(1, amend=True), amend=True)

    def op_branch(self) -> None:
        self.temps += 1
        new = f"{self.name}/t{self.temps}"
        git(self.root, "checkout", "-q", "-b", new)
        self.models[new], self.own[new] = dict(self.models[self.branch]), 0
        self.branch = new
        self.commit_and_push(self.change(self.rng.randint(1, 2), unique_share=0.8))
        self.team.add(branches_created=1)

    def op_delete(self) -> None:
        temp = self.branch
        kept = set(self.models[self.home].values())
        gone = [c for c in self.models[temp].values() if c not in kept]
        git(self.root, "checkout", "-q", self.home)
        clear_data(self.root)  # what is on disk belongs to the deleted branch
        self.branch = self.home
        git(self.root, "branch", "-q", "-D", temp)
        git(self.root, "push", "-q", "origin", "--delete", temp)
        with self.team.lock:
            self.team.graveyard += gone
        self.team.add(branches_deleted=1)

    def op_reuse(self) -> None:
        with self.team.lock:  # recent graves: their packs are likely condemned right now
            old = self.rng.choice(self.team.graveyard[-4:])
        self.commit_and_push(self.change(1, contents=[old]), probe=True)
        self.team.add(readds_of_deleted_bytes=1)


def collect_once(d: Path, team: Team, *, busy_ok: bool = True) -> dict | None:
    """D's step: fetch with prune, then one remote gc; its JSON (None if another gc ran)."""
    git(d, "fetch", "-q", "--prune", "origin")
    res = gc_remote(d)
    lines = res.stderr.strip().splitlines()
    if busy_ok and res.returncode == 1 and len(lines) == 1 and GC_BUSY in lines[0]:
        team.add(gc_busy=1)
        return None
    assert res.returncode == 0, f"cas gc --remote failed ({res.returncode}):\n{res.stderr}"
    out = json.loads(res.stdout)
    team.add(gc_runs=1, packs_condemned=len(out["packs_condemned"]),
             packs_deleted=len(out["packs_deleted"]), packs_rescued=len(out["packs_rescued"]),
             gc_bytes_freed=out["bytes_freed"])
    return out


def run_loop(name: str, first: Callable[[], None] | None, step: Callable[[], None],
             team: Team) -> None:
    try:
        if first is not None:
            first()
        while not team.stop.is_set():
            step()
    except Exception:  # reported by the main thread
        with team.lock:
            team.errors.append(f"{name}: {traceback.format_exc()}")
        team.stop.set()


# checks ------------------------------------------------------------------------------------
def check_commit(v: Path, sha: str, team: Team, heads: dict[str, list[str]]) -> bool:
    """Check out ``sha`` in the verifying clone and pull it. A branch head must restore every
    file byte-identical; another commit may lack collected data, but no byte may differ.
    Returns whether every file was restored."""
    expected = team.expected[sha]
    clear_data(v)
    git(v, "checkout", "-q", "-f", "--detach", sha)
    tracked = git(v, "ls-tree", "-r", "--name-only", sha, "--", "data").split()
    assert all(t.endswith((".cas", "/.gitignore")) for t in tracked), \
        f"commit {sha} tracks data files in Git: {tracked}"
    pointers = {t.removesuffix(".cas") for t in tracked if t.endswith(".cas")}
    assert pointers == set(expected), \
        f"commit {sha}: pointers {sorted(pointers)}, but the writer recorded {sorted(expected)}"
    res = cas(v, "pull", check=False)
    got = {p.relative_to(v).as_posix(): p.read_bytes() for p in data_paths(v)}
    wrong = [f"{rel}: restored {describe(data)}, committed "
             f"{describe(content(expected[rel])) if rel in expected else 'nothing'}"
             for rel, data in got.items() if rel not in expected
             or data != content(expected[rel])]
    missing = sorted(set(expected) - set(got))
    where = f"{team.origin.get(sha, 'the first commit')}"
    gap = team.gaps.get(sha)
    what = (f"commit {sha} ({where}; branch head of {heads[sha]}" if sha in heads
            else f"commit {sha} ({where}; not a branch head") + \
        (f"; its git push ended {gap:.2f} s after its cas push)" if gap is not None else ")")
    assert not wrong, f"{what}: restored bytes differ:\n" + "\n".join(wrong)
    complete = res.returncode == 0 and not missing
    if sha in heads:
        assert complete, (f"{what}: cas pull exited {res.returncode}, files not restored: "
                          f"{missing}\n{res.stdout}\n{res.stderr}")
    return complete


# the test ----------------------------------------------------------------------------------
@pytest.mark.parametrize("seconds", [pytest.param(SHORT_SECONDS, id="40s"),
                                     pytest.param(LONG_SECONDS, id="10min",
                                                  marks=pytest.mark.slow)])
@pytest.mark.parametrize("backend", ["local", pytest.param("s3", marks=pytest.mark.s3)])
def test_team_and_remote_gc_at_once(backend: str, seconds: float, tmp_path: Path,
                                    request: pytest.FixtureRequest) -> None:
    started = time.monotonic()
    remote = shared_remote(backend, tmp_path, request)
    team = Team()

    # One bare Git repository, its first commit naming the remote (no data yet).
    server = tmp_path / "server.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(server))
    git(server, "config", "receive.autogc", "false")
    git(server, "config", "gc.auto", "0")
    seed = tmp_path / "seed"
    seed.mkdir()
    git(seed, "init", "-q", "-b", "main")
    cas(seed, "init")
    cas(seed, "remote", "add", "origin", remote.url, "--default")
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "first commit: the remote")
    git(seed, "remote", "add", "origin", str(server))
    git(seed, "push", "-q", "origin", "main")
    team.expected[git(seed, "rev-parse", "HEAD").strip()] = {}

    def clone(name: str) -> Path:
        dest = tmp_path / name
        git(tmp_path, "clone", "-q", str(server), str(dest))
        if remote.endpoint:
            cas(dest, "remote", "modify", "origin", "endpoint_url", remote.endpoint, "--local")
        return dest

    writers = [Writer(n, clone(n), team, seed=i + 1) for i, n in enumerate("abc")]
    d = clone("d")
    gc_rng = random.Random(4)

    def collector_step() -> None:
        collect_once(d, team)
        team.stop.wait(gc_rng.uniform(0.2, 1.0))

    threads = [threading.Thread(target=run_loop, args=(f"writer {w.name}", w.first, w.step,
                                                       team), daemon=True) for w in writers]
    threads.append(threading.Thread(target=run_loop, args=("collector d", None, collector_step,
                                                           team), daemon=True))
    phase = time.monotonic()
    for t in threads:
        t.start()
    if seconds == SHORT_SECONDS:
        team.stop.wait(SHORT_MIN_SECONDS)
        while not team.stop.wait(0.25) and time.monotonic() - phase < seconds:
            with team.lock:
                if all(team.counts[k] >= n for k, n in EVENTS.items()):
                    break
    else:
        team.stop.wait(seconds)
    team.stop.set()
    for t in threads:
        t.join(timeout=2 * CMD_TIMEOUT)
    stress_time = time.monotonic() - started
    with team.lock:
        during = Counter(team.counts)
        gaps = sorted(team.gaps.values()) or [0.0]
    print(f"\n[team stress, {backend}, {seconds:g} s] team phase {stress_time:.0f} s")
    print(f"  pushes {during['pushes']} ({during['commits']} commits, {during['amends']} amends,"
          f" {during['readds_of_deleted_bytes']} re-adds of deleted bytes), "
          f"{during['bytes_uploaded']} bytes uploaded, {during['resent_after_gc']} objects "
          f"re-sent after gc; branches created {during['branches_created']}, deleted "
          f"{during['branches_deleted']}; push warnings {len(team.push_warnings)}")
    print(f"  re-added bytes were, as the push began: on the remote "
          f"{during['readd_found_live']}, only in condemned packs "
          f"{during['readd_found_condemned']}, gone {during['readd_found_gone']}")
    print(f"  git push after cas push: median {gaps[len(gaps) // 2]:.2f} s, max {gaps[-1]:.2f} s"
          f" (grace {GRACE_SECONDS:g} s)")
    print(f"  gc: runs {during['gc_runs']} (+{during['gc_busy']} found another gc), "
          f"packs condemned {during['packs_condemned']}, deleted {during['packs_deleted']}, "
          f"rescued {during['packs_rescued']}, {during['gc_bytes_freed']} bytes freed")
    for warning in team.push_warnings[:3]:
        print(f"  push warning: {warning}")
    assert not [t for t in threads if t.is_alive()], "a loop did not stop (hung command?)"
    assert not team.errors, "\n\n".join(team.errors)
    assert during["pushes"] >= 6 and during["gc_runs"] >= 3, f"too little happened: {during}"
    assert during["packs_condemned"] > 0, f"gc never condemned anything: {during}"

    # Every branch head (and what remains of other commits) pulls byte-identical into a fresh
    # clone, and the remote is sound.
    v = clone("verify")
    heads: dict[str, list[str]] = {}
    for line in git(server, "for-each-ref", "--format=%(objectname) %(refname:short)",
                    "refs/heads").splitlines():
        sha, ref = line.split()
        heads.setdefault(sha, []).append(ref)
    commits = git(server, "rev-list", "--all").split()
    unknown = [c for c in commits if c not in team.expected]
    assert not unknown, f"commits no writer recorded: {unknown}"
    others_complete = sum(check_commit(v, sha, team, heads) for sha in commits
                          if sha not in heads)
    for sha in heads:
        check_commit(v, sha, team, heads)
    verify_time = time.monotonic() - started - stress_time
    print(f"  verified {len(heads)} branch heads and {len(commits) - len(heads)} other commits "
          f"({others_complete} still complete) in {verify_time:.0f} s")
    report = fsck_remote(d, server)
    print(f"  fsck --remote: {report['packs_checked']} packs, "
          f"{len(report['condemned_packs'])} condemned, {report['root_records']} root records")

    # Quiet end: every branch but main goes; two gc runs, the grace period elapsed before
    # each, delete what became garbage.
    main_head = git(server, "rev-parse", "refs/heads/main").strip()
    doomed = sorted(r for refs in heads.values() for r in refs if r != "main")
    main_parts = {s for c in team.expected[main_head].values() for s in c}
    garbage = any(s not in main_parts for sha, refs in heads.items() if refs != ["main"]
                  for c in team.expected[sha].values() for s in c)
    bytes_before = remote.pack_bytes()
    if doomed:
        git(v, "push", "-q", "origin", "--delete", *doomed)
    quiet = []
    for _ in range(2):
        time.sleep(GRACE_SECONDS + 0.5)
        out = collect_once(d, team, busy_ok=False)
        assert out is not None
        quiet.append(out)
    bytes_after = remote.pack_bytes()
    print(f"  quiet end: deleted {len(doomed)} branches; gc runs "
          f"{[(len(q['packs_condemned']), len(q['packs_deleted'])) for q in quiet]} "
          f"(condemned, deleted); remote packs {bytes_before} bytes before, {bytes_after} "
          f"after")
    final = fsck_remote(d, server)
    w = clone("newcomer")
    cas(w, "pull")
    got = {p.relative_to(w).as_posix(): p.read_bytes() for p in data_paths(w)}
    want = {rel: content(c) for rel, c in team.expected[main_head].items()}
    assert got.keys() == want.keys(), f"main {main_head}: files {sorted(got)} != {sorted(want)}"
    for rel in want:
        assert got[rel] == want[rel], \
            f"main {main_head}: {rel} is {describe(got[rel])}, committed {describe(want[rel])}"

    c = team.counts
    print(f"  final fsck --remote: {final['packs_checked']} packs; main pulls byte-identical")
    print(f"  totals: gc runs {c['gc_runs']}, packs condemned {c['packs_condemned']}, "
          f"deleted {c['packs_deleted']}, rescued {c['packs_rescued']}; whole test "
          f"{time.monotonic() - started:.0f} s")
    if garbage:
        assert bytes_after < bytes_before, \
            f"deleted branches held data main lacks, yet remote packs went from " \
            f"{bytes_before} to {bytes_after} bytes"
        assert sum(len(q["packs_deleted"]) for q in quiet), f"quiet gc deleted nothing: {quiet}"
