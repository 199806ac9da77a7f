"""TIER 2 safeguard: a checkpoint of a worktree before a risky command, and restoring one.

A checkpoint is a commit object whose tree is the worktree as it is (tracked changes and
untracked files, not ignored ones), whose parent is HEAD, kept under
`refs/boss/checkpoints/<plan>/<worker>/<n>`. It is built in a temporary index, so neither the
worktree, its index nor any branch changes. A clean worktree is checkpointed too (the tree is
HEAD's): a TIER 2 git command may move HEAD (`reset --hard`, `rebase`). Taking one twice in
the same state reuses the last.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from boss.core import git, gittrees
from boss.core.errors import StateError

PREFIX = "refs/boss/checkpoints"
KEEP = 200  # checkpoints kept per worker; older ones are deleted when a new one is taken


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint: its ref, number, commit, tree and parent (HEAD when it was taken)."""

    ref: str
    number: int
    commit: str
    tree: str
    parent: str
    created: bool = True


def prefix(plan: str, worker_id: str) -> str:
    """The ref folder of a worker's checkpoints."""
    return f"{PREFIX}/{plan}/{worker_id}/"


def list_checkpoints(worktree: Path, plan: str, worker_id: str) -> list[Checkpoint]:
    """A worker's checkpoints, oldest first."""
    fmt = "%(refname)%00%(objectname)%00%(tree)%00%(parent)"
    text = git.git(worktree, "for-each-ref", f"--format={fmt}", prefix(plan, worker_id)).stdout
    found = []
    for line in text.splitlines():
        ref, commit, tree, parent = [*line.split("\0"), "", "", ""][:4]
        number = ref.rsplit("/", 1)[-1]
        if number.isdigit():
            found.append(Checkpoint(ref, int(number), commit, tree, parent.split(" ")[0], False))
    return sorted(found, key=lambda c: c.number)


def _worktree_tree(worktree: Path) -> str:
    """The tree of everything in the worktree (tracked and untracked, not ignored)."""
    index = Path(git.out(worktree, "rev-parse", "--path-format=absolute", "--git-path", "index"))
    tmp = Path(tempfile.mkdtemp(prefix="boss-checkpoint-"))
    try:
        scratch = tmp / "index"
        if index.is_file():
            shutil.copyfile(index, scratch)  # keeps git's stat cache: only changed files are hashed
        env = {"GIT_INDEX_FILE": str(scratch)}
        git.git(worktree, "add", "--all", env=env)
        return git.git(worktree, "write-tree", env=env).stdout.strip()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def take(worktree: Path, plan: str, worker_id: str, message: str) -> Checkpoint:
    """Checkpoint the worktree (or return the last checkpoint when nothing changed since)."""
    head = git.rev(worktree, "HEAD")
    if head is None:
        msg = f"{worktree}: no commit yet, nothing to checkpoint against"
        raise StateError(msg)
    tree = _worktree_tree(worktree)
    existing = list_checkpoints(worktree, plan, worker_id)
    if existing and existing[-1].tree == tree and existing[-1].parent == head:
        return existing[-1]
    commit = gittrees.commit_tree(worktree, tree, [head], message)
    number = (existing[-1].number if existing else 0) + 1
    ref = f"{prefix(plan, worker_id)}{number}"
    git.update_ref(worktree, ref, commit)
    for old in existing[: max(0, len(existing) + 1 - KEEP)]:
        git.delete_ref(worktree, old.ref)
    return Checkpoint(ref, number, commit, tree, head, True)


def find(worktree: Path, plan: str, worker_id: str, which: str | None = None) -> Checkpoint:
    """A checkpoint by number or full ref (the latest when which is None)."""
    existing = list_checkpoints(worktree, plan, worker_id)
    if not existing:
        msg = f"worker {worker_id}: no checkpoints yet (refs {prefix(plan, worker_id)}*)"
        raise StateError(msg)
    if which is None:
        return existing[-1]
    for cp in existing:
        if which in (str(cp.number), cp.ref):
            return cp
    known = ", ".join(str(c.number) for c in existing)
    msg = f"worker {worker_id}: no checkpoint {which!r} (checkpoints: {known})"
    raise StateError(msg)


def restore(
    worktree: Path, plan: str, worker_id: str, which: str | None = None
) -> tuple[Checkpoint, Checkpoint]:
    """Put the worktree back as checkpoint `which` was taken: HEAD, files, untracked files.

    The current state is checkpointed first, so a restore can itself be undone. Returns
    (the checkpoint restored, the checkpoint of the state before the restore).
    """
    target = find(worktree, plan, worker_id, which)
    before = take(worktree, plan, worker_id, f"boss: before restoring checkpoint {target.number}")
    git.reset_hard(worktree, target.parent)  # HEAD (and the branch) back where it was; untracked gone
    if not gittrees.read_tree_update(worktree, target.parent, target.tree):  # files as checkpointed
        msg = f"{worktree}: git could not lay out checkpoint {target.ref}; the state before is {before.ref}"
        raise StateError(msg)
    git.git(worktree, "reset", "--quiet", target.parent)  # the changes stay, unstaged, as they were
    return target, before
