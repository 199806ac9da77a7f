"""What every worktree boss makes shares: the tool's own excludes, the untracked files copied
in, and the refs that tell a worker's branch from a branch it did not make."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterable
from pathlib import Path

from boss.core import git
from boss.core.manifest import Worker
from boss.core.paths import PlanPaths


def registry_lock(paths: PlanPaths) -> contextlib.AbstractContextManager[None]:
    """The lock on the repository's list of worktrees (`.boss/worktrees.lock`), held alone by
    every `git worktree add`, `remove` and `prune` that workers and the ceremony (its
    integration worktree, its test slots) make: none of them is safe beside another, since each
    reads every entry under .git/worktrees/ and fails on one half made ("failed to read
    .git/worktrees/_slot2/commondir"), and a prune may remove one half made."""
    from boss.core.lock import locked

    lock = paths.boss_dir / "worktrees.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    return locked(lock, 120, f"{lock}: busy for 120s")


def tool_excludes(paths: PlanPaths) -> list[str]:
    """The .git/info/exclude patterns that keep the tool's own folders out of the user's status."""
    patterns = ["/.boss/"]
    with contextlib.suppress(ValueError):  # a worktree root outside the repository needs none
        patterns.append("/" + paths.worktree_root.relative_to(paths.repo).as_posix() + "/")
    return patterns


def start_ref(paths: PlanPaths, worker_id: str) -> str:
    """The rollback ref holding a worker's clean start."""
    return f"refs/boss/{paths.plan}/{worker_id}/start"


def foreign_branches(paths: PlanPaths, workers: Iterable[Worker]) -> list[tuple[Worker, str]]:
    """(worker, message) for each worker whose branch exists but was not made by that worker.

    A worker resets its branch to its start on every run. That is right for a branch it made
    (its start ref is in the branch's history) and would lose work on any other: a branch the
    user had, or one of another plan.
    """
    workers = list(workers)
    if not workers:
        return []
    refs = ["refs/heads/" + w.branch for w in workers] + [start_ref(paths, w.id) for w in workers]
    found = git.ref_commits(paths.repo, refs)
    foreign = []
    for w in workers:
        head, start = found.get("refs/heads/" + w.branch), found.get(start_ref(paths, w.id))
        if head is None or (start is not None and git.is_ancestor(paths.repo, start, head)):
            continue
        foreign.append(
            (
                w,
                f"worker {w.id}, field branch: branch {w.branch!r} already exists and was not made "
                "by this worker, which would reset it to its start; give the worker another branch "
                f"in the manifest (then `boss render {paths.plan}`), or delete that branch if "
                "nothing on it matters",
            )
        )
    return foreign


def copy_files(repo: Path, worktree: Path, patterns: tuple[str, ...]) -> list[str]:
    """Copy the manifest's untracked files (.env ...) into a new worktree; the paths copied."""
    copied = []
    for rel in patterns:
        matches = sorted(repo.glob(rel)) if any(c in rel for c in "*?[") else [repo / rel]
        for src in matches:
            if not src.exists():
                continue
            dest = worktree / src.relative_to(repo)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dest, dirs_exist_ok=True, symlinks=True)
            else:
                shutil.copy2(src, dest)
            copied.append(src.relative_to(repo).as_posix())
    if copied:
        # Copied files are local configuration, never work: keep them out of every diff.
        git.add_exclude(repo, [f"/{c}" for c in copied])
    return copied
