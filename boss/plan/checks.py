"""Warnings about a plan judged against its base's files (`boss validate`, `boss render`, `boss plan`).

Two mistakes the manifest's rules can't see, because they depend on what the base holds:
a scope regex that matches no file there (a typo, or a folder that moved: fine only when the
worker creates it), and an acceptance test whose frozen files cover every file the worker's
scope matches (`pytest {dir}` in `boss plan --split`: the gate freezes the whole folder, so the
worker could change nothing). Both are warnings, never errors.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path

from boss.core import git
from boss.core.manifest import Manifest
from boss.core.pytest_report import is_pytest
from boss.core.testfiles import frozen_in_tree, is_frozen


def base_files(repo: Path, m: Manifest) -> list[str] | None:
    """The files tracked at the plan's base (its recorded commit, else its branch); None when
    neither is a commit of the repository."""
    for ref in (m.base_commit, f"refs/heads/{m.base}"):
        if ref and git.rev(repo, f"{ref}^{{commit}}"):
            return git.zsplit(git.out(repo, "ls-tree", "-r", "-z", "--name-only", "--full-tree", ref))
    return None


def _shown(paths: list[str]) -> str:
    return ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


def file_warnings(m: Manifest, files: Collection[str], where: str) -> list[str]:
    """The warnings for each worker's scope and test against the base's files.

    Args:
        m: the plan.
        files: the files tracked at its base.
        where: how to name the base in a message ("main at 1a2b3c4d5e6f").
    """
    tracked = set(files)
    warnings = []
    for w in m.workers:
        matched: set[str] = set()
        for pattern in w.scope:
            rx = re.compile(pattern)
            hits = {f for f in tracked if rx.search(f)}
            matched |= hits
            if not hits and "\\\\" not in pattern:  # a literal backslash has its own warning
                warnings.append(
                    f"worker {w.id} field scope: {pattern!r} matches no file tracked on {where}; "
                    "fine if the worker (or one it depends on) creates it, otherwise check the pattern"
                )
        if not matched:
            continue
        roots, harness = frozen_in_tree(w.test, tracked, pytest=is_pytest(w.test))
        if all(is_frozen(f, roots, harness) for f in matched):
            warnings.append(
                f"worker {w.id} field test: the gate freezes the files `{w.test}` names, and its "
                f"harness, after the red gate, and they hold every file the worker's scope matches "
                f"({_shown(sorted(matched))}), so the worker could change none of them; name only "
                "the test's own files or folder in the command (`pytest pkg/tests`), not the code "
                "it checks"
            )
    return warnings


def plan_file_warnings(repo: Path, m: Manifest) -> list[str]:
    """file_warnings against the plan's base in repo (none when the base is not there)."""
    files = base_files(repo, m)
    if files is None:
        return []
    where = f"{m.base} at {m.base_commit[:12]}" if m.base_commit else m.base
    return file_warnings(m, files, where)
