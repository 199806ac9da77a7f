"""The files an acceptance test command names: the gate freezes them (and their harness) after
the red gate, so the worker can't make its test pass by changing it.

`test_paths` finds them in a worktree, as the worker's gate does; `frozen_in_tree` finds the
same set in a list of tracked files (the base's), without a checkout, so a plan can be checked
before any worker runs (boss.plan.checks).
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Collection
from pathlib import Path

from boss.core import pytest_report

_INTERPRETERS = ("bash", "sh", "zsh", "dash", "node", "ruby", "perl", "deno", "bun")
_TEST_NAME = re.compile(
    r"(^|/)(tests?|spec|__tests__)(/|$)|(^|/)test_[^/]*$|_test\.[^/]+$|\.(test|spec)\.[^/]+$"
)
_DOTTED_TEST = re.compile(r"(?:[A-Za-z_]\w*\.)+test\w*|(?:[A-Za-z_]\w*\.)*test_\w+")


def candidates(words: list[str]) -> list[str]:
    """The words of a test command that name the test itself (not the code it checks)."""
    if not words:
        return []
    first = Path(words[0]).name
    found = [words[0]] if "/" in words[0] else []
    runs_pytest = first in ("pytest", "py.test") or (
        first.startswith("python") and words[1:3] == ["-m", "pytest"]
    )
    if runs_pytest:
        found += [w for w in words[1:] if not w.startswith("-")]
    elif first in _INTERPRETERS or first.startswith("python"):
        args = [w for w in words[1:] if not w.startswith("-")]
        if args and "-c" not in words and "-m" not in words:
            found.append(args[0])
    found += [w for w in words[1:] if _TEST_NAME.search(w.split("::", 1)[0])]
    # `python -m unittest pkg.test_mod` names a test module by its dotted name.
    found += [w.replace(".", "/") + ".py" for w in words[1:] if _DOTTED_TEST.fullmatch(w)]
    return found


def _named(command: str) -> list[str]:
    """The paths (as written, `::test` parts cut) the command names as its test."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    named = [word.split("::", 1)[0] for word in candidates(words)]
    return [n for n in named if n and "=" not in n]


def test_paths(command: str, worktree: Path) -> list[str]:
    """Repo-relative test files or folders the command runs, that exist in the worktree.

    Those are frozen after the red gate. Files a test merely reads (`grep x src/a.py`) are
    the code under test and stay editable.
    """
    found = []
    root = worktree.resolve()
    for candidate in _named(command):
        p = (worktree / candidate).resolve()
        try:
            rel = p.relative_to(root).as_posix()
        except ValueError:
            continue
        if rel not in ("", ".") and p.exists():
            found.append(rel)
    return sorted(set(found))


def frozen_in_tree(command: str, files: Collection[str], *, pytest: bool) -> tuple[list[str], list[str]]:
    """test_paths and the pytest harness, judged from a tree's tracked files (no link followed).

    Returns the test's roots (files or folders) and its harness's files, as the gate would
    freeze them in a worktree of that tree.
    """
    folders = {"/".join(f.split("/")[:i]) for f in files for i in range(1, f.count("/") + 1)}
    roots = set()
    for candidate in _named(command):
        rel = posixpath.normpath(candidate)
        if rel.startswith(("/", "../")) or rel in (".", ".."):
            continue
        if rel in files or rel in folders:
            roots.add(rel)
    found = sorted(roots)
    return found, (pytest_report.harness_in_tree(found, files, folders) if pytest else [])


def is_frozen(path: str, roots: list[str], harness: Collection[str]) -> bool:
    """True when path is one of the frozen files or below a frozen folder."""
    return path in harness or any(path == r or path.startswith(r + "/") for r in roots)
