"""Option groups several commands share, declared once (as borg's ``define_*_group``).

``revision_options`` gives a command ``--rev``, ``--all-branches``, ``--all-tags`` and
``--all-commits`` and hands it the one ``RevSelection`` they make: gc, push and fetch parse
the same four options the same way, and the library below sees a single value.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from ..gitutil import RevSelection

F = TypeVar("F", bound=Callable[..., Any])

SELECT = "select"


def revision_options(verb: str, *, branches: str = "every branch head") -> Callable[[F], F]:
    """Replace the command's ``select: RevSelection`` parameter by the four revision
    options (help: "Also VERB data of ..."); ``branches`` says what --all-branches takes."""

    def wrap(fn: F) -> F:
        # The command names RevSelection only for type checkers: supply it here.
        sig = inspect.signature(fn, eval_str=True, locals={"RevSelection": RevSelection})
        if SELECT not in sig.parameters:
            raise TypeError(f"{fn.__name__} has no '{SELECT}' parameter")
        kw = inspect.Parameter.KEYWORD_ONLY
        group = [
            inspect.Parameter("rev", kw, annotation=list[str], default=typer.Option(
                None, "--rev", help=f"Also {verb} data of this Git revision.")),
            inspect.Parameter("all_branches", kw, annotation=bool, default=typer.Option(
                False, "--all-branches", "-a", help=f"Also {verb} data of {branches}.")),
            inspect.Parameter("all_tags", kw, annotation=bool, default=typer.Option(
                False, "--all-tags", "-T", help=f"Also {verb} tagged data.")),
            inspect.Parameter("all_commits", kw, annotation=bool, default=typer.Option(
                False, "--all-commits", "-A", help=f"Also {verb} data of every commit.")),
        ]
        own = [p.replace(kind=kw) for name, p in sig.parameters.items() if name != SELECT]

        @functools.wraps(fn)
        def command(*, rev: list[str] | None, all_branches: bool, all_tags: bool,
                    all_commits: bool, **options: Any) -> Any:
            select = RevSelection(tuple(rev or ()), all_branches, all_tags, all_commits)
            return fn(**options, select=select)

        # typer reads the parameters from the signature and their types from the
        # annotations: both describe the options, not ``select``.
        params = own + group
        command.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        command.__annotations__["return"] = sig.return_annotation
        return command  # type: ignore[return-value]

    return wrap
