"""A worker's git worktree: started from the base or its dependencies, with copy and setup done."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from boss.core import git, handwork, redo
from boss.core import status as st
from boss.core.errors import StateError
from boss.core.manifest import Manifest, Worker
from boss.core.paths import PlanPaths
from boss.core.worktrees import foreign_branches, registry_lock, start_ref


@dataclass(frozen=True)
class Prepared:
    """A worktree ready for work: where it is, the commit it starts from, and whether it is new."""

    path: Path
    start: str
    created: bool


def _base_commit(repo: Path, m: Manifest) -> str:
    commit = m.base_commit and git.rev(repo, m.base_commit)
    if commit:
        return commit
    head = git.rev(repo, f"refs/heads/{m.base}")
    if head is None:
        msg = f"manifest: field base: branch {m.base!r} does not exist in {repo}"
        raise StateError(msg)
    return head


def dependency_heads(paths: PlanPaths, w: Worker) -> list[tuple[str, str]]:
    """(id, head commit) of each dependency; StateError when one has not succeeded."""
    heads = []
    for dep in w.depends_on:
        status = st.read(paths.status(dep))
        if status is None or status.state != st.SUCCESS or not status.head_commit:
            state = status.state if status else st.PENDING
            msg = f"worker {w.id} depends on {dep}, which is {state}; run {dep} first"
            raise StateError(msg)
        heads.append((dep, status.head_commit))
    return heads


def _merge_dependencies(path: Path, heads: list[tuple[str, str]], w: Worker) -> None:
    """Merge the other dependencies' heads into a worktree started at the first one."""
    for dep, commit in heads[1:]:
        res = git.git(
            path,
            "merge",
            "--no-ff",
            "--no-edit",
            "-m",
            f"boss: merge dependency {dep} into {w.id}",
            commit,
            check=False,
            env=git.identity_env(),
        )
        if res.returncode != 0:
            files = git.zsplit(git.git(path, "diff", "--name-only", "-z", "--diff-filter=U").stdout)
            git.git(path, "merge", "--abort", check=False)
            names = ", ".join(d for d, _ in heads)
            msg = f"worker {w.id}: its dependencies {names} conflict in {', '.join(files) or '?'}"
            raise StateError(msg)


def start_point(
    paths: PlanPaths, m: Manifest, w: Worker, heads: list[tuple[str, str]], onto: str | None
) -> str:
    """Where the run starts: `onto` (a redo on the base now, kept as its onto ref), else the
    worker's earlier redo start while it still holds the base commit and its dependencies
    (boss.core.redo), else its first dependency's head, else the plan's base commit."""
    repo, dep_heads = paths.repo, [c for _, c in heads]
    if onto is not None:
        missing = [d for d, c in heads if not git.is_ancestor(repo, c, onto)]
        if missing:
            names = ", ".join(missing)
            msg = f"worker {w.id}: its dependencies {names} are not in {onto[:10]}; merge them first"
            raise StateError(msg)
        head = git.rev(repo, f"refs/heads/{w.branch}")
        if head is not None and head != onto:
            git.update_ref(repo, redo.before_ref(paths, w.id), head)
        git.update_ref(repo, redo.onto_ref(paths, w.id), onto)
        return onto
    base = "" if heads else _base_commit(repo, m)
    return redo.start(paths, w.id, base, dep_heads) or (heads[0][1] if heads else base)


def prepare(
    paths: PlanPaths, m: Manifest, w: Worker, *, fresh: bool = False, onto: str | None = None
) -> Prepared:
    """Make the worktree exist on w.branch at its clean start, and record the rollback ref.

    Every run starts clean: work from earlier failed runs was rolled back anyway, and the
    start moves when a dependency was re-run. `fresh` also removes an existing worktree;
    `onto` starts it from that commit of the base (boss.core.redo). Commits boss did not make
    are refused before (worker.lifecycle.run), unless discarded.
    """
    repo = paths.repo
    path = paths.worktree(w.id)
    heads = dependency_heads(paths, w)
    for _, message in foreign_branches(paths, [w]):
        raise StateError(message)
    start = start_point(paths, m, w, heads, onto)
    # The start ref first: from the moment the branch is (re)made at start_point, it is this
    # worker's by foreign_branches' rule, even if what follows fails or is killed.
    git.update_ref(repo, start_ref(paths, w.id), start)
    # No two `git worktree` add, remove or prune at once (boss.core.worktrees.registry_lock).
    registered = False
    if path.is_dir():
        registered = path.resolve() in {p.resolve() for p in git.worktrees(repo)}
        if fresh and registered:
            with registry_lock(paths):
                git.worktree_remove(repo, path)
            registered = False
        if not registered and path.exists():
            shutil.rmtree(path)  # a leftover folder git no longer knows: nothing to keep
            with registry_lock(paths):
                git.git(repo, "worktree", "prune")
    if not registered:
        path.parent.mkdir(parents=True, exist_ok=True)
        add = ("worktree", "add", "--quiet", "--force", "-B", w.branch, str(path), start)
        with registry_lock(paths):
            added = git.git(repo, *add, check=False).returncode == 0
        if not added:
            # Git still lists a worktree whose folder was deleted by hand: forget it, try again.
            with registry_lock(paths):
                git.git(repo, "worktree", "prune")
                git.git(repo, *add)
    if registered:
        with registry_lock(paths):  # `checkout -B` reads every worktree's entry
            git.git(path, "checkout", "--quiet", "--force", "-B", w.branch, start)
        git.clean(path)
    # From here the branch holds only boss's commits: anything later not made by boss is a person's.
    handwork.record_head(paths, w.id, start)
    if len(heads) > 1 and start == heads[0][1]:
        _merge_dependencies(path, heads, w)
        start = git.head(path)
        git.update_ref(repo, start_ref(paths, w.id), start)
        handwork.record_head(paths, w.id, start)
    return Prepared(path, start, not registered)
