"""What each Git hook that ``cas install`` writes does when Git runs it (``cas hook``).

After ``git checkout``/``switch`` and ``git merge``/``pull`` the data follows (checkout,
fetching what the cache lacks when a remote is set); before ``git commit`` a warning names
tracked data changed since it was added; before ``git push`` the data goes to the default
remote. Installing the hooks is ``casstore.githooks``'.
"""

from __future__ import annotations

from typing import Any

from ..errors import CasError
from ..githooks import HOOKS, leave_other_branch_data
from ..gitutil import git
from ..pointer import data_path_for
from ..project import Project
from ..remote.config import remotes
from .checkout import checkout
from .status import status
from .sync import fetch, push


def _has_remote(repo: Project) -> bool:
    try:
        return bool(repo.config.get("core.remote") or remotes(repo.config))
    except CasError:
        return False


NO_VERIFY_HINT = ("to push the commits without their data, skip the hook with "
                  "'git push --no-verify' (others then cannot check the data out)")


def run_hook(repo: Project, name: str, args: list[str], warn: Any, say: Any = None,
             tell: Any = None) -> int:
    """Do what hook ``name`` is for; ``warn(text)`` prints a warning, ``say(text)`` what
    was done (the CLI shows it on a terminal only), ``tell(text)`` what the user must know
    anyway (data removed from or kept in the workspace). Returns the exit code: only
    pre-push can block Git (a push without its data would break other clones)."""
    say = say or (lambda text: None)
    tell = tell or say
    if name in ("post-checkout", "post-merge"):
        res = checkout(repo)
        if res.failed and _has_remote(repo):
            # Data another clone pushed: fetch what is missing, then check out again.
            try:
                fetch(repo)
            except CasError as exc:
                warn(f"could not fetch the missing data: {exc}")
            else:
                repo.cache.invalidate()
                res = checkout(repo)
        for msg in res.failed:
            warn(msg)
        if res.restored or res.removed:
            arts = _artifacts_of(repo, res.restored + res.removed)
            noun = "artifact" if arts == 1 else "artifacts"
            where = (f" for branch {_branch(repo)}" if name == "post-checkout"
                     else " after the merge")
            say(f"checked out {arts} {noun}{where}")
        if name == "post-checkout" and len(args) >= 3 and args[2] == "1" and args[0] != args[1]:
            for line in leave_other_branch_data(repo, args[0]):
                tell(line)
        return 0
    if name == "pre-commit":
        for e in status(repo):
            if "modified" in e.states:
                warn(f"{e.path} changed since it was added; run 'cas add {e.path}' and "
                     f"'git add {e.pointer}' to commit the new content")
        return 0
    if name == "pre-push":
        if not repo.config.get("core.remote"):
            return 0
        try:
            res = push(repo)
        except CasError as exc:
            warn(f"casstore's pre-push hook could not upload the data: {exc}")
            warn(NO_VERIFY_HINT)
            return 1
        for msg in res.missing:
            warn(f"{msg}; casstore's pre-push hook stopped the push so that no commit "
                 "names data nobody has")
        if res.missing:
            warn(NO_VERIFY_HINT)
            return 1
        if res.objects_sent:
            say(f"pushed {res.objects_sent} objects to '{res.remote}'")
        return 0
    raise CasError(f"unknown hook {name!r}; expected one of {', '.join(HOOKS)}")


def _branch(repo: Project) -> str:
    out = git(repo.root, "symbolic-ref", "--quiet", "--short", "HEAD", check=False).strip()
    if out:
        return out.decode("utf-8", "replace")
    head = git(repo.root, "rev-parse", "--short", "HEAD", check=False).strip()
    return f"(detached at {head.decode()})" if head else "(unknown)"


def _artifacts_of(repo: Project, paths: list[str]) -> int:
    """How many tracked artifacts the restored/removed file paths belong to."""
    roots = []
    for ptr_path in repo.pointer_files():
        try:
            roots.append(repo.rel(data_path_for(ptr_path, repo.load_pointer(ptr_path))))
        except CasError:
            continue
    hit = {r for p in paths for r in roots if p == r or p.startswith(r + "/")}
    return len(hit) or len(paths)
