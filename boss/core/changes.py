"""A worker's whole change against its start, each path marked in or out of its scope: what
`boss diff` and `boss quarantine show` print. Judged from git alone (the start ref boss made, the
branch head), never from what the worker wrote."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from boss.core import git, scope
from boss.core import status as st
from boss.core.decisions import read_decision
from boss.core.errors import InputError
from boss.core.manifest import Manifest
from boss.core.paths import PlanPaths
from boss.core.worktrees import start_ref


@dataclass(frozen=True)
class FileChange:
    """One changed path: lines added and removed (None for a binary file), and when it is out
    of the worker's scope, why."""

    path: str
    added: int | None
    removed: int | None
    outside: str = ""  # '' in scope; else why it is a violation ("outside its scope", ...)


@dataclass(frozen=True)
class Change:
    """A worker's change: from start to head, file by file."""

    worker: str
    branch: str
    start: str
    head: str
    files: list[FileChange] = field(default_factory=list)
    uncommitted: list[str] = field(default_factory=list)  # paths changed in its worktree, not committed

    @property
    def out_of_scope(self) -> list[str]:
        return [f.path for f in self.files if f.outside]

    @property
    def in_scope(self) -> list[str]:
        return [f.path for f in self.files if not f.outside]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "out_of_scope": self.out_of_scope}


def _commit(repo: Any, name: str) -> str | None:
    return git.rev(repo, f"{name}^{{commit}}") if name else None


def ends(paths: PlanPaths, m: Manifest, worker_id: str) -> tuple[str, str]:
    """The worker's start (its start ref, else its status's start commit) and head (its branch,
    else the head its review decision or its status names, as after `boss clean` removed a
    merged branch)."""
    w = m.worker(worker_id)
    repo = paths.repo
    status = st.read(paths.status(worker_id))
    start = _commit(repo, start_ref(paths, w.id)) or _commit(repo, status.start_commit if status else "")
    if start is None:
        msg = f"worker {w.id} has not started: no {start_ref(paths, w.id)} yet; run it first"
        raise InputError(msg)
    decision = read_decision(paths, w.id)  # a salvage's head is its own commit, not the status's
    head = (
        _commit(repo, f"refs/heads/{w.branch}")
        or _commit(repo, decision.head if decision else "")
        or _commit(repo, status.head_commit if status else "")
    )
    if head is None:
        msg = (
            f"worker {w.id}: its branch {w.branch} does not exist and its status names no head commit; "
            f"run it again (boss retry {w.id} --plan {paths.plan})"
        )
        raise InputError(msg)
    return start, head


def of_worker(
    paths: PlanPaths, m: Manifest, worker_id: str, start: str = "", head: str = "", marked: Sequence[str] = ()
) -> Change:
    """The worker's change from start to head (by default its own: `ends`); the paths in
    marked count as out of scope too (those the ceremony's triage found)."""
    w = m.worker(worker_id)
    if not start or not head:
        start, head = ends(paths, m, worker_id)
    repo = paths.repo
    outside = {p: "found by the ceremony" for p in marked}
    outside.update(scope.branch_problems(repo, start, head, w.scope))
    text = git.git(repo, "diff", "--numstat", "-z", "--no-renames", start, head).stdout
    files = []
    for record in text.split("\0"):
        if not record:
            continue
        added, removed, path = record.split("\t", 2)
        files.append(
            FileChange(
                path, int(added) if added.isdigit() else None, int(removed) if removed.isdigit() else None,
                outside.get(path, ""),
            )
        )  # fmt: skip
    worktree = paths.worktree(w.id)
    uncommitted = git.worktree_changes(worktree) if (worktree / ".git").exists() else []
    return Change(w.id, w.branch, start, head, sorted(files, key=lambda f: f.path), uncommitted)


def patch(paths: PlanPaths, c: Change, names: list[str]) -> str:
    """The plain-text diff of names (literal paths) between the change's start and head."""
    if not names:
        return ""
    args = ("--literal-pathspecs", "diff", "--no-color", "--no-renames", c.start, c.head, "--", *names)
    return git.git(paths.repo, *args).stdout


def stat_lines(c: Change) -> list[str]:
    """One line per file: path, +added -removed, and a mark when it is out of scope."""
    width = min(60, max((len(scope.shown(f.path)) for f in c.files), default=0))
    lines = []
    for f in c.files:
        counts = "binary" if f.added is None else f"+{f.added} -{f.removed}"
        mark = f"   OUT OF SCOPE ({f.outside})" if f.outside else ""
        lines.append(f" {scope.shown(f.path):<{width}} | {counts}{mark}")
    return lines


def summary(c: Change) -> str:
    """'W1: branch boss/p/W1 at abc, from its start def: 3 file(s), 1 out of scope'."""
    outside = len(c.out_of_scope)
    return (
        f"{c.worker}: branch {c.branch} at {c.head[:10]}, from its start {c.start[:10]}: "
        f"{len(c.files)} file(s) changed, {outside} out of scope"
    )


def render(paths: PlanPaths, c: Change) -> list[str]:
    """The whole change for people: the summary, the file list, the in-scope diff, then the
    out-of-scope diff under its own banner."""
    lines = [summary(c), *stat_lines(c)]
    if c.uncommitted:
        lines.append(f"(its worktree also has {len(c.uncommitted)} uncommitted change(s), not shown)")
    inside, outside = patch(paths, c, c.in_scope), patch(paths, c, c.out_of_scope)
    if inside:
        lines += ["", f"=== in scope: {len(c.in_scope)} file(s) ===", inside.rstrip("\n")]
    if outside:
        lines += [
            "",
            f"=== OUT OF SCOPE: {len(c.out_of_scope)} file(s), merged only if accepted at review ===",
            outside.rstrip("\n"),
        ]
    return lines
