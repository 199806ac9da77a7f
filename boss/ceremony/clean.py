"""`boss clean`: remove the worktrees, branches and refs the tool made, never unmerged work.

A worker's worktree and branch go when its work is in the base (merged), when its review
rejected it or a person dropped it (`boss drop`), or when its branch holds nothing of its own
(skipped, never started); anything else (unmerged commits, uncommitted changes, a running
worker, a failed or crashed worker whose blocker report says to finish on its branch, an
unlanded ceremony result) is kept unless forced, and the result says what was kept and why.
Commits boss did not make (a person's, boss.core.handwork) are kept even when forced, unless
discarded: `discard` implies `force`, and the result names each commit it drops. A worker
removed from the manifest leaves its worktree, branch, refs and folder behind: they go too
(its boss-made commits can never be merged now), under the same rules for running workers,
uncommitted changes and commits by hand. `--all` never removes the files in `.boss/` that
are the user's own (config.yaml, policy.yaml).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from boss.ceremony import integration
from boss.core import git, handwork
from boss.core import journal as jr
from boss.core import status as st
from boss.core.config import Config, load_config
from boss.core.decisions import REJECT, read_decision, read_drop
from boss.core.errors import BossError
from boss.core.manifest import Manifest, load
from boss.core.paths import BOSS_DIR, PlanPaths, integration_branch, list_plans
from boss.core.worktrees import start_ref

# What a person wrote in .boss/; everything else there the tool made.
USER_FILES = ("config.yaml", "policy.yaml")


@dataclass
class Cleaned:
    """What a clean removed (or, in a dry run, would remove) and what it kept, with reasons."""

    worktrees: list[str] = field(default_factory=list)
    branches: list[str] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    discarded: list[str] = field(default_factory=list)  # "<branch>: <sha> <subject>", commits by hand
    hand_kept: list[str] = field(default_factory=list)  # branches kept for commits by hand
    freed: int = 0  # bytes of the worktrees and folders removed

    def add(self, other: Cleaned) -> None:
        for name in ("worktrees", "branches", "refs", "folders", "kept", "discarded", "hand_kept"):
            getattr(self, name).extend(getattr(other, name))
        self.freed += other.freed


def disk_usage(path: Path) -> int:
    """Bytes of the files below path (symlinks not followed)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += (Path(root) / name).lstat().st_size
            except OSError:
                continue
    return total


def human(size: int) -> str:
    """12 B, 3.4 KB, 5.6 MB, 1.2 GB."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


class _Cleaner:
    """Removes things one by one, counting bytes; in a dry run it only counts."""

    def __init__(self, repo: Path, dry_run: bool) -> None:
        self.repo = repo
        self.dry_run = dry_run
        self.done = Cleaned()
        self.registered = {p.resolve(): b for p, b in git.worktrees(repo).items()}
        self.checked_out = {b for b in self.registered.values() if b}

    def worktree(self, path: Path) -> None:
        if not path.exists() and path.resolve() not in self.registered:
            return
        self.done.freed += disk_usage(path) if path.is_dir() else 0
        self.done.worktrees.append(str(path))
        # Its branch is no longer checked out (a dry run says what the real run would do).
        self.checked_out.discard(self.registered.get(path.resolve()) or "")
        if self.dry_run:
            return
        if path.resolve() in self.registered:
            git.worktree_remove(self.repo, path)
            self.registered.pop(path.resolve())
        if path.exists():
            shutil.rmtree(path)

    def branch(self, name: str) -> None:
        if name in self.checked_out:
            self.done.kept.append(f"branch {name}: checked out in a worktree of yours; not deleted")
        elif self.dry_run or git.delete_branch(self.repo, name):
            self.done.branches.append(name)

    def refs(self, prefix: str) -> None:
        for ref in git.refs_under(self.repo, prefix):
            if self.dry_run or git.delete_ref(self.repo, ref):
                self.done.refs.append(ref)

    def boss_dir(self, path: Path) -> None:
        """The tool's folder, but for the user's own files in it."""
        mine = [path / name for name in USER_FILES if (path / name).is_file()]
        if not mine:
            self.folder(path)
            return
        for child in sorted(path.iterdir()):
            if child not in mine:
                self.folder(child)
        self.done.kept.extend(f"{p}: your own file" for p in mine)

    def folder(self, path: Path) -> None:
        if path.is_file() or path.is_symlink():
            self.done.freed += path.lstat().st_size
            self.done.folders.append(str(path))
            if not self.dry_run:
                path.unlink()
        elif path.exists():
            self.done.freed += disk_usage(path)
            self.done.folders.append(str(path))
            if not self.dry_run:
                shutil.rmtree(path)


def clean_plan(
    paths: PlanPaths,
    m: Manifest,
    config: Config,
    *,
    force: bool = False,
    dry_run: bool = False,
    discard: bool = False,
) -> Cleaned:
    """Remove the worktrees, branches and refs of a plan's finished work; keep unmerged work
    (and commits by hand, unless `discard`), and remove what workers gone from the manifest left."""
    c = _Cleaner(paths.repo, dry_run)
    force = force or discard
    _clean_workers(c, paths, m, config, force, discard)
    _clean_removed(c, paths, m, config, force, discard)
    _clean_integration(c, paths, m, force)
    if not dry_run:
        git.git(paths.repo, "worktree", "prune")
        plan_root = paths.worktree_root / paths.plan
        if plan_root.is_dir() and not any(plan_root.iterdir()):
            plan_root.rmdir()
    return c.done


def _hand_work_kept(
    c: _Cleaner, paths: PlanPaths, worker_id: str, branch: str, base: str | None, discard: bool
) -> bool:
    """True (and why, in kept) when the branch holds commits boss did not make and not discard;
    with discard, each such commit is named in discarded."""
    commits = handwork.hand_commits(paths, worker_id, branch, base or "")
    if not commits:
        return False
    if not discard:
        c.done.kept.append(
            f"{worker_id}: branch {branch} holds {handwork.counted(len(commits))} boss did not make "
            f"({handwork.listed(commits)}); land them with `boss merge {paths.plan}`, or --discard drops them"
        )
        c.done.hand_kept.append(branch)
        return True
    c.done.discarded.extend(f"{branch}: {commit.line()}" for commit in commits)
    return False


def _clean_workers(
    c: _Cleaner, paths: PlanPaths, m: Manifest, config: Config, force: bool, discard: bool = False
) -> None:
    repo = paths.repo
    heads = git.branch_heads(repo)
    base = git.rev(repo, f"refs/heads/{m.base}")
    refs = [f"refs/heads/{w.branch}" for w in m.workers if w.branch in heads]
    merged = git.refs_merged(repo, base, refs) if base else set()
    for w in m.workers:
        status = st.read(paths.status(w.id))
        decision = read_decision(paths, w.id)
        head = heads.get(w.branch)
        wt = paths.worktree(w.id)
        state = st.effective_state(status, config.heartbeat_stale)
        if state == st.RUNNING:
            c.done.kept.append(f"{w.id}: still running; nothing removed")
            continue
        own_work = (
            head is not None
            and f"refs/heads/{w.branch}" not in merged
            and head != (status.start_commit if status else "")
        )
        dropped = read_drop(paths, w.id) is not None
        rejected = dropped or (decision is not None and decision.decision == REJECT)
        if own_work and _hand_work_kept(c, paths, w.id, w.branch, base, discard):
            continue
        if not force and state in (st.FAILED, st.CRASHED) and head is not None and not dropped:
            c.done.kept.append(
                f"{w.id}: {state}; its branch {w.branch} and worktree are where its blocker report's "
                "manual step is done (--force removes them)"
            )
            continue
        dirty = wt.is_dir() and wt.resolve() in c.registered and bool(git.worktree_changes(wt))
        if not force and dirty:
            c.done.kept.append(f"{w.id}: its worktree {wt} has uncommitted changes (--force removes them)")
            continue
        if not force and own_work and not rejected:
            c.done.kept.append(
                f"{w.id}: branch {w.branch} has work not merged into {m.base} (--force deletes it)"
            )
            continue
        c.worktree(wt)
        if head is not None:
            c.branch(w.branch)
        c.refs(f"refs/boss/{paths.plan}/{w.id}/")


def removed_workers(paths: PlanPaths, m: Manifest) -> list[str]:
    """Ids of workers gone from the manifest that left a worktree, refs or a folder behind."""
    ids = {w.id for w in m.workers}
    found: set[str] = set()
    for folder in (paths.worktree_root / paths.plan, paths.root / "workers"):
        if folder.is_dir():
            found |= {p.name for p in folder.iterdir() if p.is_dir()}
    prefix = f"refs/boss/{paths.plan}/"
    found |= {ref.removeprefix(prefix).split("/")[0] for ref in git.refs_under(paths.repo, prefix)}
    # Worker ids start with a letter: `_integration` (the ceremony's worktree) is not one.
    return sorted(i for i in found - ids if i[:1].isalpha())


def _clean_removed(
    c: _Cleaner, paths: PlanPaths, m: Manifest, config: Config, force: bool, discard: bool
) -> None:
    """What workers removed from the manifest left: worktree, branch (only one they made, and
    no current worker's), refs and folder, under the rules for running work and work by hand."""
    repo = paths.repo
    base = git.rev(repo, f"refs/heads/{m.base}")
    in_use = {w.branch for w in m.workers}
    for wid in removed_workers(paths, m):
        status = None
        with contextlib.suppress(BossError):
            status = st.read(paths.status(wid))
        wt = paths.worktree(wid)
        if st.effective_state(status, config.heartbeat_stale) == st.RUNNING:
            c.done.kept.append(f"{wid} (removed from the manifest): still running; nothing removed")
            continue
        branch = (status.branch if status else "") or (c.registered.get(wt.resolve()) or "")
        start = git.rev(repo, start_ref(paths, wid))
        head = git.rev(repo, f"refs/heads/{branch}") if branch else None
        made = head is not None and start is not None and git.is_ancestor(repo, start, head)
        ours = made and branch not in in_use
        if ours and _hand_work_kept(c, paths, wid, branch, base, discard):
            continue
        dirty = wt.is_dir() and wt.resolve() in c.registered and bool(git.worktree_changes(wt))
        if dirty and not force:
            c.done.kept.append(
                f"{wid} (removed from the manifest): its worktree {wt} has uncommitted changes "
                "(--force removes them)"
            )
            continue
        c.worktree(wt)
        if ours:
            c.branch(branch)
        c.refs(f"refs/boss/{paths.plan}/{wid}/")
        c.folder(paths.worker_dir(wid))


def _clean_integration(c: _Cleaner, paths: PlanPaths, m: Manifest, force: bool) -> None:
    repo, name = paths.repo, integration_branch(paths.plan)
    journal_file = paths.merge_dir / "journal.json"
    try:
        j = jr.load(journal_file)
        in_progress = j.step if j is not None and j.step != jr.DONE else ""
    except BossError:
        in_progress = "unreadable journal"
    head = git.rev(repo, f"refs/heads/{name}")
    base = git.rev(repo, f"refs/heads/{m.base}")
    unlanded = head is not None and base is not None and not git.is_ancestor(repo, head, base)
    if not force and in_progress:
        c.done.kept.append(
            f"{name}: a merge ceremony is in progress (step {in_progress}); run `boss merge {paths.plan}` "
            "to finish it (--force abandons it)"
        )
        return
    if not force and unlanded:
        c.done.kept.append(
            f"{name}: holds a tested result not in {m.base}; land it with `git merge --ff-only {name}` "
            "(--force deletes it)"
        )
        return
    c.worktree(integration.worktree_path(paths))
    if head is not None:
        c.branch(name)
    if in_progress and not c.dry_run:
        journal_file.unlink(missing_ok=True)  # the abandoned ceremony cannot resume without its branch


def clean_all(repo: Path, *, force: bool = False, dry_run: bool = False, discard: bool = False) -> Cleaned:
    """Every plan's clean, then refs/boss/*, leftover worktrees and .boss/ when nothing was kept."""
    config = load_config(repo)
    total = Cleaned()
    for plan in list_plans(repo):
        paths = PlanPaths.of(repo, plan, config.worktree_root)
        try:
            m = load(paths.manifest)
        except BossError as e:
            total.kept.append(f"plan {plan}: {str(e).splitlines()[0]}; its worktrees and branches kept")
            continue
        total.add(clean_plan(paths, m, config, force=force, dry_run=dry_run, discard=discard))
    c = _Cleaner(repo, dry_run)
    root = PlanPaths.of(repo, "_", config.worktree_root).worktree_root
    done = {Path(p).resolve() for p in total.worktrees}
    for path, branch in git.worktrees(repo).items():
        inside = path.resolve().is_relative_to(root.resolve()) and path.resolve() != repo.resolve()
        if not inside or path.resolve() in done or branch in total.hand_kept:
            continue
        if not force and git.worktree_changes(path):
            c.done.kept.append(f"{path}: uncommitted changes (--force removes them)")
            continue
        c.worktree(path)
        if branch and branch.startswith("boss/"):
            c.branch(branch)
    # boss's records of its own commits (refs, statuses) stay while a person's commits are kept
    if (force and not total.hand_kept) or not total.kept:
        c.refs("refs/boss/")
        c.boss_dir(repo / BOSS_DIR)
        if root.is_dir() and not dry_run and not any(root.iterdir()):
            root.rmdir()
    else:
        how = "--discard" if total.hand_kept else "--force"
        c.done.kept.append(f"{repo / BOSS_DIR}: kept, with refs/boss/*, while work above is kept ({how})")
    if not dry_run:
        git.git(repo, "worktree", "prune")
    total.add(c.done)
    return total
