"""`boss undo`: the branch a `boss do` landed on, put back to its rollback point.

Only while nothing else landed since: the branch must still be where the landing put it, and the
landing must have started from the rollback point (else going back would take away the other
work too). Where the branch is checked out, its files follow, unless the person's uncommitted
changes (or ignored files) stand where the undo changes files: then nothing moves. The landed
commit stays reachable as `refs/boss/<plan>/undone` (and on the worker's branch). The move is a
compare-and-swap, recorded before (`undo_to`) and after (`undone_at`), so an interrupted undo
finishes when run again. The worker's branch keeps the work; nothing is deleted.
"""

from __future__ import annotations

from pathlib import Path

from boss.ceremony import landing
from boss.ceremony.session import short
from boss.core import git, gittrees, statelog
from boss.core.errors import StateError
from boss.core.paths import PlanPaths
from boss.core.status import now_iso
from boss.solo import record
from boss.solo.land import landing_of
from boss.solo.record import WORKER, DoRecord


def undone_ref(plan: str) -> str:
    """`refs/boss/<plan>/undone`: the landed commit an undo took off the branch."""
    return f"refs/boss/{plan}/undone"


def revert_hint(repo: Path, rec: DoRecord) -> str:
    """How to take back only this work with new commits."""
    parents = gittrees.parents(repo, rec.landed_to)
    if len(parents) > 1 and parents[0] == rec.landed_from:
        return f"git revert --no-edit -m 1 {short(rec.landed_to)}"
    return f"git revert --no-edit {short(rec.landed_from)}..{short(rec.landed_to)}"


def undo(paths: PlanPaths, rec: DoRecord) -> str:
    """Put the branch back to the rollback point; what was done, in one line. StateError (nothing
    changed) when it cannot be done safely."""
    repo, plan = paths.repo, paths.plan
    rec = landing_of(paths, rec)
    ref = f"refs/heads/{rec.branch}"
    if rec.undone_at:
        msg = f"plan {plan}: already undone at {rec.undone_at} ({rec.branch} went to {short(rec.undo_to)})"
        raise StateError(msg)
    if not rec.landed_to:
        msg = (
            f"plan {plan}: nothing of it landed on {rec.branch}, so there is nothing to undo "
            f"(boss status {plan} shows {WORKER})"
        )
        raise StateError(msg)
    tip = git.rev(repo, ref)
    checkout = next((p for p, b in git.worktrees(repo).items() if b == rec.branch), None)
    if rec.undo_to and tip == rec.undo_to:  # moved by an undo that was interrupted before the end
        if checkout is not None:
            landing.bring_along(checkout, rec.landed_to, rec.undo_to)
        return _done(paths, rec)
    if rec.landed_from != rec.rollback:
        msg = (
            f"plan {plan}: {rec.branch} moved from its rollback point {short(rec.rollback)} to "
            f"{short(rec.landed_from)} before the work landed, so going back would take that away too; "
            f"nothing changed. To take back only this work: {revert_hint(repo, rec)}"
        )
        raise StateError(msg)
    if tip != rec.landed_to:
        since = git.out(repo, "rev-list", "--count", f"{rec.landed_to}..{tip}") if tip else "?"
        msg = (
            f"plan {plan}: {rec.branch} moved since the work landed (now at {short(tip or 'nothing')}, "
            f"{since} commit(s) after {short(rec.landed_to)}), so undo would take them away too; nothing "
            f"changed. To take back only this work: {revert_hint(repo, rec)}"
        )
        raise StateError(msg)
    if checkout is not None:
        _check_checkout(checkout, rec)
    git.update_ref(repo, undone_ref(plan), rec.landed_to)  # the landed work stays reachable, by name
    rec = record.update(paths, rec, undo_to=rec.rollback)
    if not git.update_ref(repo, ref, rec.rollback, rec.landed_to):
        record.update(paths, rec, undo_to="")
        msg = f"plan {plan}: {rec.branch} moved at the last moment; nothing changed (run boss undo again)"
        raise StateError(msg)
    if checkout is not None:
        gittrees.read_tree_update(checkout, rec.landed_to, rec.rollback)
    return _done(paths, rec)


def _check_checkout(checkout: Path, rec: DoRecord) -> None:
    """StateError when the person's changes in the checkout stand where the undo changes files."""
    touched = landing.dirty_in_the_way(checkout, checkout, rec.landed_to, rec.rollback)
    if touched or not gittrees.read_tree_update(checkout, rec.landed_to, rec.rollback, dry_run=True):
        shown = f": {', '.join(touched[:5])}{' ...' if len(touched) > 5 else ''}" if touched else ""
        msg = (
            f"{checkout}: {rec.branch} is checked out here with uncommitted changes (or untracked files in "
            f"the way) where the undo changes files{shown}; nothing changed: commit or stash them, then "
            "boss undo again"
        )
        raise StateError(msg)
    hidden = landing.ignored_in_the_way(checkout, checkout, rec.landed_to, rec.rollback)
    if hidden:
        msg = (
            f"{checkout}: the undo would overwrite ignored files ({', '.join(hidden[:5])}); nothing "
            "changed: move them away, then boss undo again"
        )
        raise StateError(msg)


def _done(paths: PlanPaths, rec: DoRecord) -> str:
    rec = record.update(paths, rec, undone_at=now_iso())
    line = (
        f"undone: {rec.branch} moved back from {short(rec.landed_to)} to its rollback point "
        f"{short(rec.rollback)}; the work is kept at {undone_ref(paths.plan)} "
        f"(boss merge {paths.plan} lands it again)"
    )
    statelog.append(paths.log, statelog.Event(now_iso(), "UNDONE", WORKER, "undo", line, ""))
    return line
