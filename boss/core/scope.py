"""Scope enforcement: which changed paths fall outside a worker's scope regexes, or are never
acceptable whatever the scope says (a link leaving the worktree, a submodule, a name with a
control character)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

from boss.core import git, gittrees

SYMLINK, GITLINK = "120000", "160000"
_LINK_HOPS = 40  # as the kernel's limit: a longer chain (a loop) counts as leaving


def name_problem(path: str) -> str | None:
    """Why a path's name is never acceptable, or None.

    A regex `$` matches before a trailing newline (`^src/.*\\.py$` accepts "src/x.py\\n"), and a
    control character hides in logs and terminals: such a name is a violation whatever the scope.
    """
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        return "its name holds a control character"
    if "\ufffd" in path:
        return "its name is not valid UTF-8"
    return None


def shown(path: str) -> str:
    """A path printable on one line: control characters escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in path)


def out_of_scope(paths: Iterable[str], scope: Iterable[str]) -> list[str]:
    """The paths that no scope regex matches (re.search on repo-relative POSIX paths), and those
    whose name is never acceptable (name_problem)."""
    compiled = [re.compile(rx) for rx in scope]
    return sorted(p for p in set(paths) if name_problem(p) or not any(rx.search(p) for rx in compiled))


def leaves(link: str, target: str, lookup: Callable[[str], str | None]) -> bool:
    """True when the symbolic link at `link` (repo-relative) points outside the repository.

    Resolved component by component within the tree: `lookup(path)` gives the target of another
    link on the way (None for anything else), so `a -> b/..` through a linked `b` is followed
    as the kernel would. An absolute target always leaves.
    """
    resolved: list[str] = link.split("/")[:-1]
    todo = target.split("/")
    hops = 0
    if target.startswith("/"):
        return True
    while todo:
        part = todo.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                return True
            resolved.pop()
            continue
        further = lookup("/".join([*resolved, part]))
        if further is None:
            resolved.append(part)
            continue
        hops += 1
        if hops > _LINK_HOPS or further.startswith("/"):
            return True
        todo = further.split("/") + todo
    return False


def tree_problems(repo: Path | str, head: str, paths: Iterable[str]) -> dict[str, str]:
    """The paths (of those changed) that commit head records as a submodule or as a symbolic
    link leaving the repository, with the reason."""
    entries = gittrees.tree_entries(repo, head)
    targets: dict[str, str] = {}

    def target(path: str) -> str | None:
        mode_sha = entries.get(path)
        if mode_sha is None or mode_sha[0] != SYMLINK:
            return None
        if path not in targets:
            targets[path] = git.git(repo, "cat-file", "blob", mode_sha[1]).stdout
        return targets[path]

    found = {}
    for path in paths:
        mode = entries.get(path, ("", ""))[0]
        if mode == GITLINK:
            found[path] = "a submodule (gitlink): its content is not in this repository"
        elif mode == SYMLINK and leaves(path, target(path) or "", target):
            found[path] = f"a symbolic link to {shown(target(path) or '')}, outside the worktree"
    return found


def disk_problems(worktree: Path, paths: Iterable[str]) -> dict[str, str]:
    """The same for uncommitted paths, read from the worktree: a link leaving it, or a nested
    git repository (`git add` would record it as a submodule)."""

    def target(path: str) -> str | None:
        p = worktree / path
        return str(p.readlink()) if p.is_symlink() else None

    found = {}
    for path in paths:
        p = worktree / path.rstrip("/")
        if p.is_symlink() and leaves(path, str(p.readlink()), target):
            found[path] = f"a symbolic link to {shown(str(p.readlink()))}, outside the worktree"
        elif not p.is_symlink() and p.is_dir() and (p / ".git").exists():
            found[path] = "a nested git repository: it would be committed as a submodule (gitlink)"
    return found


def changed_since(worktree: Path, start: str, *, include_uncommitted: bool = True) -> list[str]:
    """Paths changed since start: committed, plus uncommitted, untracked, deleted and renamed."""
    paths = set(git.changed_paths(worktree, start, "HEAD"))
    if include_uncommitted:
        paths.update(git.worktree_changes(worktree))
    return sorted(paths)


def problems(worktree: Path, start: str, scope: Iterable[str]) -> dict[str, str]:
    """Each path changed in a worktree since start (committed or not) that is a violation, with why."""
    committed = git.changed_paths(worktree, start, "HEAD")
    uncommitted = git.worktree_changes(worktree)
    found = _named([*committed, *uncommitted], scope)
    found.update(tree_problems(worktree, "HEAD", committed))
    found.update(disk_problems(worktree, uncommitted))
    return dict(sorted(found.items()))


def violations(worktree: Path, start: str, scope: Iterable[str]) -> list[str]:
    """Paths changed in a worktree since start, whether committed or not, that are violations."""
    return list(problems(worktree, start, scope))


def branch_problems(repo: Path, start: str, head: str, scope: Iterable[str]) -> dict[str, str]:
    """Each path changed between two commits that is a violation, with why (from git alone)."""
    changed = git.changed_paths(repo, start, head)
    found = _named(changed, scope)
    found.update(tree_problems(repo, head, changed))
    return dict(sorted(found.items()))


def branch_violations(repo: Path, start: str, head: str, scope: Iterable[str]) -> list[str]:
    """Violating paths between two commits, recomputed from git alone (the ceremony's check)."""
    return list(branch_problems(repo, start, head, scope))


def described(found: dict[str, str]) -> list[str]:
    """Violations for people: the path (escaped), with the reason when it is not just the scope."""
    return [shown(p) if why == _OUTSIDE else f"{shown(p)} ({why})" for p, why in found.items()]


_OUTSIDE = "outside its scope"


def _named(paths: Iterable[str], scope: Iterable[str]) -> dict[str, str]:
    return {p: name_problem(p) or _OUTSIDE for p in out_of_scope(paths, scope)}
