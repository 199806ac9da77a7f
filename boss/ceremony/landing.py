"""The landing step: the base moves once, by compare-and-swap, to the tree the final check verified.

Only a head whose tree the journal records as tested may be merged on, and only the verified one
may land (`check_head`, also the guard of a resumed ceremony). The base moves only if it still
points where the ceremony started (`git update-ref <new> <old>`) and, where the base is checked
out, none of that checkout's uncommitted changes touch what the landing changes and nothing in it
(ignored files included) is in the way; its files then follow the base, and the person's other
uncommitted changes stay as they are. Otherwise the base is not touched, and the journal's
message says where the tested result is and how to land it. A landing killed after the base moved
brings the checkout's files along when it resumes.
"""

from __future__ import annotations

import os
from pathlib import Path

from boss.ceremony.session import Session, journal_path, log, now, short
from boss.core import git, gittrees
from boss.core import journal as jr
from boss.core.errors import StateError
from boss.core.journal import MERGED, Journal, crash_point
from boss.core.paths import PlanPaths


def check_head(paths: PlanPaths, j: Journal, landing: bool = False) -> str:
    """The tree of the journal's head; StateError when the ceremony never tested it (or, to
    land, never verified it): only a tree the journal records as tested may go on or land."""
    if j.head == j.base_start:
        return j.head_tree
    tree = gittrees.tree_of(paths.repo, j.head) if git.rev(paths.repo, f"{j.head}^{{commit}}") else ""
    if tree and tree == j.head_tree and tree in j.proven and (not landing or tree == j.verified):
        return tree
    what = "verified (every merged worker's acceptance test passing on it)" if landing else "tested"
    msg = (
        f"{journal_path(paths)}: field head: commit {short(j.head)} (tree {short(tree) or 'missing'}) "
        f"is not a tree this ceremony {what}, so it cannot be merged on or landed; "
        f"{j.base} is untouched. Move the journal away and run `boss merge` again"
    )
    raise StateError(msg)


def ignored_in_the_way(repo: Path, checkout: Path, old: str, new: str) -> list[str]:
    """Paths the landing would add that are already files in the checkout: ignored ones, which
    `git read-tree -m -u` overwrites without a word (a `.env`, say, replaced by a worker's)."""
    changed = git.changed_paths(repo, old, new)
    present = [p for p in changed if os.path.lexists(checkout / p)]
    if not present:
        return []
    tracked = gittrees.tree_entries(repo, old, present)
    return [p for p in present if p not in tracked]


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def dirty_in_the_way(repo: Path, checkout: Path, old: str, new: str) -> list[str]:
    """The checkout's uncommitted paths (staged, modified, deleted, untracked) that the landing
    changes, or that stand where it puts a file or folder; the others are left as they are."""
    changed = git.changed_paths(repo, old, new)
    dirty = git.worktree_changes(checkout)
    return [d for d in dirty if any(_overlaps(d, c) for c in changed)]


def _at(checkout: Path, commit: str, paths: list[str]) -> bool:
    """True when the checkout's index and files hold commit's version of every one of paths."""
    if not paths:
        return True
    staged = git.zsplit(git.git(checkout, "diff", "--cached", "--name-only", "-z", commit).stdout)
    unstaged = git.zsplit(git.git(checkout, "diff", "--name-only", "-z").stdout)
    wanted = set(paths)
    return not wanted.intersection(staged) and not wanted.intersection(unstaged)


def land(s: Session) -> None:
    """Move the base to the verified head (or say why not, in the journal's message); on to the report."""
    j, repo = s.j, s.paths.repo
    crash_point("land")
    target, base_ref = j.head, f"refs/heads/{j.base}"
    started = now()
    if target == j.base_start:
        j.message = j.message or f"nothing new was merged; {j.base} is unchanged"
        s.step(jr.REPORT)
        return
    check_head(s.paths, j, landing=True)  # only the tree the final check verified lands
    merged = sum(1 for r in j.records if r.id in j.queue and r.verdict == MERGED)
    current = git.rev(repo, base_ref)
    checkout = next((p for p, b in git.worktrees(repo).items() if b == j.base), None)
    how = f"land it with `git merge --ff-only {j.integration_branch}` on {j.base}"
    if current != target:
        if current != j.base_start:
            # A fast-forward only works when nothing new landed on the base meanwhile.
            can_ff = current is not None and git.is_ancestor(repo, current, target)
            advice = (
                f"{how}, or run `boss merge` again"
                if can_ff
                else (
                    "run `boss merge` again to merge and test the work on top of the new "
                    f"{j.base} (a fast-forward to {j.integration_branch} is no longer possible)"
                )
            )
            j.message = (
                f"{j.base} moved from {short(j.base_start)} to {short(current or '')} during the "
                f"ceremony, so it was not touched; the tested result is on {j.integration_branch}: "
                f"{advice}"
            )
            _landed(s, False, started)
            return
        touched = dirty_in_the_way(repo, checkout, j.base_start, target) if checkout else []
        if checkout is not None and (
            touched or not gittrees.read_tree_update(checkout, j.base_start, target, dry_run=True)
        ):
            shown = f": {', '.join(touched[:5])}{' ...' if len(touched) > 5 else ''}" if touched else ""
            j.message = (
                f"{j.base} is checked out in {checkout} with uncommitted changes (or untracked "
                f"files in the way) where the merged work changes files{shown}, so it was not "
                f"touched; the tested result is on {j.integration_branch}: commit or stash your "
                f"changes, then {how}"
            )
            _landed(s, False, started)
            return
        hidden = ignored_in_the_way(repo, checkout, j.base_start, target) if checkout else []
        if hidden:
            j.message = (
                f"{j.base} is checked out in {checkout}, where the merged work would overwrite "
                f"ignored files ({', '.join(hidden[:5])}), so it was not touched; the tested "
                f"result is on {j.integration_branch}: move those files away, then {how}"
            )
            _landed(s, False, started)
            return
        j.checkout, j.land_target = str(checkout or ""), target
        s.save()
        if not git.update_ref(repo, base_ref, target, j.base_start):
            j.message = f"{j.base} moved at the last moment, so it was not touched; {how}"
            _landed(s, False, started)
            return
        crash_point("checkout")
        if checkout is not None:  # nothing in the way, checked above: its files follow the base
            gittrees.read_tree_update(checkout, j.base_start, target)
    elif checkout is not None:
        _finish_checkout(s, checkout, target)
    j.message = f"landed: {j.base} moved from {short(j.base_start)} to {short(target)} ({merged} merged)"
    _landed(s, True, started)


def _finish_checkout(s: Session, checkout: Path, target: str) -> None:
    """Landed by an interrupted run, which may not have brought the checkout's files along."""
    bring_along(checkout, s.j.base_start, target)


def bring_along(checkout: Path, old: str, new: str) -> None:
    """The checkout's files follow its branch, moved from old to new by a run that was
    interrupted before they did; judged on the paths the move changes only (the person's other
    changes stay as they are), and only where they are still old's."""
    changed = git.changed_paths(checkout, old, new)
    if not _at(checkout, new, changed) and _at(checkout, old, changed):
        gittrees.read_tree_update(checkout, old, new)


def _landed(s: Session, landed: bool, started: str) -> None:
    s.j.landed = landed
    s.j.events.append({"name": "land" if landed else "not landed", "start": started, "end": now()})
    log(s.paths, "MERGE", "merge", "land", s.j.message)
    j = s.j
    moved = f"{j.base} {short(j.base_start)} -> {short(j.head)}"
    s.progress(f"land: {moved}" if landed else "land: not landed (see the message below)")
    s.step(jr.REPORT)
