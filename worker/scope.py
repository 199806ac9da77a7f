"""Scope enforcement: which changed paths fall outside a worker's scope regexes."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from boss import git


def out_of_scope(paths: Iterable[str], scope: Iterable[str]) -> list[str]:
    """The paths that no scope regex matches (re.search on repo-relative POSIX paths)."""
    compiled = [re.compile(rx) for rx in scope]
    return sorted(p for p in set(paths) if not any(rx.search(p) for rx in compiled))


def changed_since(worktree: Path, start: str, *, include_uncommitted: bool = True) -> list[str]:
    """Paths changed since start: committed, plus uncommitted, untracked, deleted and renamed."""
    paths = set(git.changed_paths(worktree, start, "HEAD"))
    if include_uncommitted:
        paths.update(git.worktree_changes(worktree))
    return sorted(paths)


def violations(worktree: Path, start: str, scope: Iterable[str]) -> list[str]:
    """Out-of-scope paths changed in a worktree since start, whether committed or not."""
    return out_of_scope(changed_since(worktree, start), scope)


def branch_violations(repo: Path, start: str, head: str, scope: Iterable[str]) -> list[str]:
    """Out-of-scope paths between two commits, recomputed from git alone (the ceremony's check)."""
    return out_of_scope(git.changed_paths(repo, start, head), scope)
