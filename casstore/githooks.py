"""Git integration installed by ``cas install``: hooks, the diff driver and the merge driver.

Hooks run casstore at the moments Git changes pointers: after ``git checkout``/``switch``
and ``git merge``/``pull`` the data follows (``cas checkout``); before ``git push`` the data
goes to the default remote (``cas push``, when ``core.remote`` is set); before ``git commit``
a warning names tracked data changed since it was last added.

Existing hooks are kept. Shell hooks get a marked block after their first line; a hook in
another language is renamed to ``<hook>.cas-chained`` and called by a small shell hook
after our block. ``cas uninstall`` removes exactly that block (or restores the renamed
hook) and the Git config entries; ``.gitattributes`` is committed and shared, so it stays.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic import atomic_write_text
from .errors import CasError, NotARepoError
from .gitutil import git, git_ok
from .pointer import SUFFIX, data_path_for, parse_pointer_bytes
from .project import gitignore_line

if TYPE_CHECKING:
    from .project import Project

HOOKS = ("post-checkout", "post-merge", "pre-push", "pre-commit")
BEGIN = "# >>> cas hooks: added by 'cas install'; 'cas uninstall' removes this block >>>"
END = "# <<< cas hooks <<<"
WRAPPER = "# cas hooks wrapper: the original hook is {name}.cas-chained"
CHAINED_SUFFIX = ".cas-chained"
SHELLS = ("sh", "bash", "dash", "zsh", "ksh", "ash")
ATTRIBUTES_LINE = "*.cas diff=cas merge=cas"


@dataclass
class InstallResult:
    """What ``cas install``/``cas uninstall`` changed."""

    hooks_dir: str
    hooks: list[str] = field(default_factory=list)  # hooks written or cleaned
    chained: list[str] = field(default_factory=list)  # existing hooks kept and chained
    config: list[str] = field(default_factory=list)  # Git config keys set or removed
    gitattributes: bool = False  # whether .gitattributes was changed

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def cas_command(repo: Project) -> str:
    """The shell command that runs this same casstore installation from Git's top folder."""
    cmd = f"{shlex.quote(sys.executable)} -m casstore.cli.main"
    top = git_toplevel(repo)
    if top is not None and top.resolve() != repo.root.resolve():
        cmd += f" -C {shlex.quote(os.path.relpath(repo.root, top))}"
    return cmd


def git_toplevel(repo: Project) -> Path | None:
    """The top folder of the Git work tree holding ``repo`` (None outside Git)."""
    try:
        out = git(repo.root, "rev-parse", "--show-toplevel").decode().strip()
    except CasError:
        return None
    return Path(out) if out else None


def hooks_dir(repo: Project) -> Path:
    """Where Git looks for hooks (honours core.hooksPath)."""
    try:
        out = git(repo.root, "rev-parse", "--git-path", "hooks").decode().strip()
    except CasError:
        raise NotARepoError(f"{repo.root} is not inside a Git repository; run 'git init' "
                            "first") from None
    p = Path(out)
    return p if p.is_absolute() else (repo.root / p)


def _block(cmd: str, name: str) -> str:
    return f'{BEGIN}\n{cmd} hook {name} "$@" || exit $?\n{END}\n'


def _strip_block(text: str) -> tuple[str, bool]:
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    inside = found = False
    for line in lines:
        if line.rstrip("\n") == BEGIN:
            inside = found = True
            continue
        if inside:
            if line.rstrip("\n") == END:
                inside = False
            continue
        out.append(line)
    return "".join(out), found


def _is_shell(first_line: str) -> bool:
    if not first_line.startswith("#!"):
        return True  # Git runs shebang-less hooks with sh
    words = first_line[2:].split()
    if not words:
        return True
    prog = os.path.basename(words[0])
    if prog == "env" and len(words) > 1:
        prog = os.path.basename(words[-1] if words[1].startswith("-") else words[1])
    return prog in SHELLS


def _write_hook(path: Path, text: str) -> None:
    atomic_write_text(path, text)
    mode = path.stat().st_mode
    os.chmod(path, mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def install_hook(hdir: Path, name: str, cmd: str) -> bool:
    """Add our block to hook ``name``; returns True if an existing hook was chained."""
    path = hdir / name
    block = _block(cmd, name)
    chained = hdir / (name + CHAINED_SUFFIX)
    if path.exists() and not path.is_file():
        raise CasError(f"{path} is not a file; move it away and run 'cas install' again")
    if not path.exists():
        _write_hook(path, "#!/bin/sh\n" + block)
        return False
    text, _ = _strip_block(path.read_text(encoding="utf-8", errors="surrogateescape"))
    first, _, rest = text.partition("\n")
    if WRAPPER.format(name=name) in text or _is_shell(first):
        if first.startswith("#!"):
            new = f"{first}\n{block}{rest}"
        else:
            new = f"#!/bin/sh\n{block}{text}"
        _write_hook(path, new)
        return bool(rest.strip()) or not first.startswith("#!")
    # A hook in another language: keep it under another name and call it after ours.
    if chained.exists():
        raise CasError(f"{chained} already exists; merge it with {path} by hand, then run "
                       "'cas install' again")
    os.replace(path, chained)
    _write_hook(path, f"#!/bin/sh\n{WRAPPER.format(name=name)}\n{block}"
                      f'exec "$(dirname "$0")/{name}{CHAINED_SUFFIX}" "$@"\n')
    return True


def uninstall_hook(hdir: Path, name: str) -> bool:
    """Remove our block (or wrapper) from hook ``name``; returns whether anything changed."""
    path = hdir / name
    if not path.is_file():
        return False
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    chained = hdir / (name + CHAINED_SUFFIX)
    if WRAPPER.format(name=name) in text and chained.is_file():
        os.replace(chained, path)
        return True
    stripped, found = _strip_block(text)
    if not found:
        return False
    if stripped.strip() in ("", "#!/bin/sh"):
        path.unlink()
    else:
        atomic_write_text(path, stripped)
    return True


def _git_config(repo: Project, cmd: str) -> dict[str, str]:
    return {
        "diff.cas.textconv": f"{cmd} textconv",
        "merge.cas.name": "casstore pointer merge",
        "merge.cas.driver": f"{cmd} merge-driver %O %A %B %P",
    }


def _ensure_attributes(top: Path) -> bool:
    path = top / ".gitattributes"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if ATTRIBUTES_LINE in text.splitlines():
        return False
    if text and not text.endswith("\n"):
        text += "\n"
    atomic_write_text(path, text + ATTRIBUTES_LINE + "\n")
    return True


def install(repo: Project, *, hooks: tuple[str, ...] = HOOKS) -> InstallResult:
    """Install hooks, the textconv diff driver and the merge driver into ``repo``'s Git."""
    hdir = hooks_dir(repo)
    hdir.mkdir(parents=True, exist_ok=True)
    cmd = cas_command(repo)
    res = InstallResult(hooks_dir=str(hdir))
    for name in hooks:
        if install_hook(hdir, name, cmd):
            res.chained.append(name)
        res.hooks.append(name)
    for key, value in _git_config(repo, cmd).items():
        git(repo.root, "config", "--local", key, value)
        res.config.append(key)
    res.gitattributes = _ensure_attributes(git_toplevel(repo) or repo.root)
    return res


def uninstall(repo: Project) -> InstallResult:
    """Remove what ``install`` added: our hook blocks and our Git config entries."""
    hdir = hooks_dir(repo)
    res = InstallResult(hooks_dir=str(hdir))
    for name in HOOKS:
        if uninstall_hook(hdir, name):
            res.hooks.append(name)
    for key in _git_config(repo, "").keys():
        if git(repo.root, "config", "--local", "--get", key, check=False).strip():
            git(repo.root, "config", "--local", "--unset-all", key)
            res.config.append(key)
    for section in ("diff.cas", "merge.cas"):
        # Drop the now-empty sections; fails harmlessly when other keys remain.
        git(repo.root, "config", "--local", "--remove-section", section, check=False)
    return res


EXCLUDE_HEADER = "# cas: data tracked on another branch, kept because it differs from its pointer"


def leave_other_branch_data(repo: Project, prev: str) -> list[str]:
    """After a branch switch: data whose pointer existed at ``prev`` but not now is no
    longer git-ignored (the .gitignore line left with the branch), so ``git add -A`` would
    commit it. Remove it when it is unchanged and the cache holds it (switching back
    restores it); otherwise keep it and git-ignore it in .git/info/exclude, which is never
    committed. Returns one line per path, saying which."""
    # start-up: digests brings the store's index and numpy; only a branch switch needs it
    from .digests import DirNow, current_file_digest

    listing = git(repo.root, "ls-tree", "-r", "--name-only", "-z", prev, check=False)
    lines: list[str] = []
    keep: list[str] = []
    for rel in sorted(x.decode("utf-8", "surrogateescape") for x in listing.split(b"\0") if x):
        if not rel.endswith(SUFFIX) or (repo.root / rel).exists():
            continue
        try:
            ptr = parse_pointer_bytes(git(repo.root, "cat-file", "blob", f"{prev}:./{rel}"), rel)
            data = data_path_for(repo.root / rel, ptr)
            shown = repo.rel(data)
        except CasError:
            continue
        if not os.path.lexists(data) or repo.tracked_ancestor(data) is not None:
            continue
        if git(repo.root, "ls-files", "--", shown).strip():
            continue  # Git tracks this path on this branch: not ours to touch
        if _is_ignored(repo, shown):
            continue  # already ignored (a .gitignore of this branch, or our exclude)
        unchanged = False
        try:
            if ptr.kind == "file" and data.is_file() and not data.is_symlink():
                unchanged = current_file_digest(repo, data) == ptr.digest
            elif ptr.kind == "dir" and data.is_dir() and not data.is_symlink():
                now = DirNow(repo, data, follow_symlinks=ptr.follow_symlinks,
                             recorded=ptr.digest)
                # Only when the scan saw every file: files .casignore hides (or links it
                # skips) are the user's and would be deleted with the folder.
                seen = len(now.entries())
                total = sum(len(f) for _, _, f in os.walk(data))
                unchanged = now.digest == ptr.digest and seen == total
        except (OSError, CasError):
            unchanged = False
        if unchanged and repo.in_cache(ptr.digest):
            if data.is_dir():
                shutil.rmtree(data)
            else:
                data.unlink()
            lines.append(f"removed {shown}: tracked only on the other branch, unchanged and "
                         "in the cache (switching back restores it)")
        else:
            keep.append(shown)
            lines.append(f"kept {shown}: tracked only on the other branch and changed (or "
                         "not in the cache); git-ignored in .git/info/exclude so that "
                         "'git add -A' leaves it out")
    repo.stat_cache.flush()
    if keep:
        _exclude(repo, keep)
    return lines


def _is_ignored(repo: Project, shown: str) -> bool:
    return git_ok(repo.root, "check-ignore", "-q", "--", shown)


def _exclude(repo: Project, shown: list[str]) -> None:
    out = git(repo.root, "rev-parse", "--git-path", "info/exclude").decode().strip()
    path = Path(out) if os.path.isabs(out) else repo.root / out
    top = git_toplevel(repo) or repo.root
    text = path.read_text(encoding="utf-8", errors="surrogateescape") if path.exists() else ""
    have = set(text.splitlines())
    add = []
    for s in shown:
        # info/exclude patterns are relative to the top of the work tree.
        rel = os.path.relpath(repo.root / s, top).replace(os.sep, "/")
        line = "/" + gitignore_line(rel).lstrip("/")
        if line not in have:
            add.append(line)
    if not add:
        return
    if EXCLUDE_HEADER not in have:
        add.insert(0, EXCLUDE_HEADER)
    if text and not text.endswith("\n"):
        text += "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text + "\n".join(add) + "\n")
