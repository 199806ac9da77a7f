"""The course of a `boss do`: run its worker while its work is not done, then land it.

The same course serves a new `boss do` and `boss do --retry`: a landed plan is left as it is; a
worker that has not ended SUCCESS (never run, FAILED, interrupted, crashed) runs again, as
`worker run` reruns it; a SUCCESS, or a scope violation, goes to the ceremony, which lands the
first and holds the second for review (once accepted or salvaged, `--retry` lands it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from boss.ceremony.session import short
from boss.core import journal as jr
from boss.core import status as st
from boss.core.config import Config
from boss.core.decisions import read_drop
from boss.core.errors import StateError
from boss.core.lock import locked
from boss.core.manifest import Manifest, display_path
from boss.core.paths import PlanPaths
from boss.solo import follow
from boss.solo.land import land, landing_of, verdict
from boss.solo.record import WORKER, DoRecord


@dataclass(frozen=True)
class Io:
    """Where a `boss do` speaks: lines to the person, the ceremony's progress, the worker's events."""

    say: Callable[[str], None]
    progress: Callable[[str], None]
    show: follow.Show
    notice: follow.Notice
    ask: follow.Ask | None = None


LOCK = "do.lock"  # held by the `boss do` working on the plan


def course(paths: PlanPaths, m: Manifest, config: Config, rec: DoRecord, io: Io) -> int:
    """Run what is left of a `boss do`; 0 when its work is on its branch, 1 otherwise. One at a
    time: StateError while another `boss do` works on the plan, or its worker runs elsewhere."""
    busy = (
        f"plan {paths.plan}: another `boss do` is working on it; follow it: boss status {paths.plan} --watch"
    )
    with locked(paths.root / LOCK, 0, busy):
        return _course(paths, m, config, rec, io)


def _course(paths: PlanPaths, m: Manifest, config: Config, rec: DoRecord, io: Io) -> int:
    plan, w = paths.plan, m.worker(WORKER)
    rec = landing_of(paths, rec)
    if rec.undone_at:
        io.say(f"plan {plan} was undone at {rec.undone_at}; its work is on {w.branch} (boss merge {plan})")
        return 1
    if rec.landed_to:
        io.say(f"already landed: {rec.branch} moved from {short(rec.landed_from)} to {short(rec.landed_to)}")
        return 0
    dropped = read_drop(paths, WORKER)
    if dropped is not None:
        msg = (
            f"worker {WORKER} of plan {plan} is dropped ({dropped.reason}); take it back first: "
            f"boss drop {WORKER} --undo --plan {plan}"
        )
        raise StateError(msg)
    status = st.read(paths.status(WORKER))
    if status is not None and st.effective_state(status, config.heartbeat_stale) == st.RUNNING:
        msg = (
            f"worker {WORKER} of plan {plan} is running in another process (pid {status.pid}); "
            f"follow it: boss status {plan} --watch; when it ends: boss do --retry --plan {plan}"
        )
        raise StateError(msg)
    if status is None or status.state not in (st.SUCCESS, st.SCOPE_VIOLATION):
        agent = m.settings(w).agent
        io.say(f"{WORKER}: {agent} works in {paths.worktree(WORKER)} on branch {w.branch}")
        follow.follow(paths, io.show, io.notice, io.ask, io.say)
        status = st.read(paths.status(WORKER))
    state = status.state if status else st.PENDING
    if state not in (st.SUCCESS, st.SCOPE_VIOLATION):
        return _not_done(paths, rec, status, io)
    io.say(f"{WORKER}: {state}; landing it on {rec.branch} through the merge ceremony")
    j, rec = land(paths, m, config, rec, io.progress)
    found, why = verdict(j)
    if rec.landed_to:
        io.say(
            f"landed: {rec.branch} moved from {short(rec.landed_from)} to {short(rec.landed_to)} (tested on "
            f"that tree: {WORKER}'s acceptance test{' and the integration test' * bool(m.integration_test)})"
        )
        io.say(f"undo it with: boss undo   (back to the rollback point {short(rec.rollback)})")
        return 0
    if found == jr.QUARANTINED:
        io.say(f"held for review: {why}")
        io.say(f"  look: boss quarantine show {WORKER} --plan {plan}")
        q = f"{WORKER} --plan {plan}"
        io.say(f"  keep the rest: boss quarantine salvage {q}   (drops what is out of scope)")
        io.say(f"   or all of it: boss quarantine accept {q} -m WHY")
        io.say(f"  then land it: boss do --retry --plan {plan}")
        io.say(f"  (or refuse it: boss quarantine reject {q} -m WHY)")
        return 1
    report = paths.merge_dir / "REPORT.md"
    if found == jr.MERGED:  # tested, but the branch could not move (it moved, or files in the way)
        io.say(f"tested, not landed: {j.message}")
        io.say(f"{rec.branch} is where it was; report: {display_path(report)}")
        io.say(
            f"then: boss do --retry --plan {plan}   (lands it with its rollback point, so boss undo works)"
        )
        return 1
    io.say(f"not landed: {found or 'not merged'}{f' ({why})' if why else ''}; {j.message}")
    io.say(f"{rec.branch} is where it was; report: {display_path(report)}")
    io.say(f"  the agent again, told why: boss retry {WORKER} --onto --plan {plan}")
    io.say(f"  or change the plan: {display_path(paths.manifest)}, then boss render {plan}")
    io.say(f"  then land it: boss do --retry --plan {plan}")
    return 1


def _not_done(paths: PlanPaths, rec: DoRecord, status: st.Status | None, io: Io) -> int:
    plan = paths.plan
    state, reason = (status.state, status.reason) if status else (st.PENDING, "it did not start")
    io.say(f"{WORKER}: {state}: {reason}")
    if paths.blocker(WORKER).is_file():
        io.say(f"blocker report: {display_path(paths.blocker(WORKER))}")
    io.say(f"nothing landed: {rec.branch} is untouched by plan {plan}")
    io.say(f"  to change its task, test or scope: {display_path(paths.manifest)}, then boss render {plan}")
    io.say(f"then: boss do --retry --plan {plan}   (once what stopped it is dealt with)")
    return 1
