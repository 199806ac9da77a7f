"""The redo round of `boss merge --redo N`: the workers the merging step dropped, done again on its result.

After the merging step (and its final check), each worker that ended CONFLICT or REVERTED in this
ceremony is run again by its own lifecycle, `worker run PLAN ID --onto HEAD` (a subprocess of the
worker CLI, logged to merge/history/<number>/logs/redo-<id>.log), from the integration branch's
tested head, told why it was dropped (boss.core.redo). A redo that ends SUCCESS is verified from
git as triage verifies a branch (its head and start, its scope, boss's own files) and queued
again: the merging step then merges it in a second pass, with every test, and the final check runs
again. At most N rounds. A worker with dependents in the plan is not redone here (they were built
on its branch): `boss retry ID --onto` redoes it and resets them.

The journal's `redo` field holds each worker's redo (`round`, `from`, `onto`, `state`, `reason`),
saved before and after its run: a ceremony killed during a redo runs that worker again.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from boss.ceremony import triage
from boss.ceremony.session import Session, log, short
from boss.core import git, gittrees, redo, scope
from boss.core import journal as jr
from boss.core import status as st
from boss.core.errors import BossError
from boss.core.proc import run_group
from boss.core.worktrees import start_ref

PLANNED, RUNNING, QUEUED, NOT_REDONE = "planned", "running", "queued", "not redone"
Entry = dict[str, Any]  # one worker's redo in the journal's `redo` field


def due(s: Session) -> bool:
    """Begin the next redo round when one is left and a worker of this ceremony was dropped; True
    when the ceremony is (now) in its redo step."""
    j = s.j
    if j.step == jr.REDO:
        return True
    if j.step != jr.LANDING or j.redo_round >= j.redo_rounds or not j.baseline.get("ok", True):
        return False
    # The first round redoes every dropped worker; a later one, those its second pass dropped again.
    again = {i for i, e in j.redo.items() if e["round"] == j.redo_round and e["state"] == QUEUED}
    dropped = [
        r for r in j.records
        if r.id in j.queue and r.verdict in (jr.CONFLICT, jr.REVERTED) and (not j.redo_round or r.id in again)
    ]  # fmt: skip
    if not dropped:
        return False
    j.redo_round += 1
    for r in dropped:
        entry: Entry = {
            "round": j.redo_round,
            "from": r.verdict,
            "reason": r.reason,
            "onto": j.head,
            "state": PLANNED,
        }
        dependents = sorted(s.m.dependents(r.id))
        if dependents:
            entry["state"] = NOT_REDONE
            built = f"its dependents ({', '.join(dependents)}) were built on its branch"
            entry["why"] = f"{built}; boss retry {r.id} --onto redoes it and resets them"
        j.redo[r.id] = entry
    s.progress(f"redo round {j.redo_round}: {', '.join(r.id for r in dropped)} on {short(j.head)}")
    s.step(jr.REDO)
    return True


def redo_all(s: Session) -> None:
    """Run every planned redo of this round; queue the verified ones and go back to merging."""
    j = s.j
    for worker_id, entry in j.redo.items():
        if entry["round"] == j.redo_round and entry["state"] in (PLANNED, RUNNING):
            _redo_one(s, worker_id, entry)
    queued = any(e["round"] == j.redo_round and e["state"] == QUEUED for e in j.redo.values())
    s.step(jr.MERGING if queued else jr.LANDING)


def _redo_one(s: Session, worker_id: str, entry: Entry) -> None:
    j, paths = s.j, s.paths
    onto = entry["onto"]
    if entry["state"] == PLANNED:
        try:
            why = redo.reason(paths, s.m, worker_id, onto, j)
        except BossError as e:
            _not_redone(s, worker_id, entry, str(e))
            return
        redo.write_feedback(paths, worker_id, why)
        entry["state"] = RUNNING
        s.save()
    s.progress(f"redo {worker_id}: `worker run {paths.plan} {worker_id} --onto {short(onto)}`")
    logfile = paths.ceremony_logs(s.j.number) / f"redo-{worker_id}.log"
    argv = [sys.executable, "-m", "worker", "run", paths.plan, worker_id, "--onto", onto]
    outcome = run_group(argv, cwd=paths.repo, env=os.environ, log_path=logfile, owner="boss-merge-redo")
    jr.crash_point("redo", worker_id)
    problem = _check(s, worker_id, onto)
    if problem:
        _not_redone(s, worker_id, entry, f"{problem} (exit {outcome.exit_code}; see {paths.rel(logfile)})")
        return
    r = j.record(worker_id)
    again = r.reopened()
    again.head, again.start = git.rev(paths.repo, f"refs/heads/{r.branch}") or "", onto
    j.records[j.records.index(r)] = again
    entry["state"] = QUEUED
    s.save()
    done = f"SUCCESS on {short(onto)}; queued again"
    log(paths, "MERGING", f"merge.{worker_id}", "redo", done, paths.rel(logfile))
    s.progress(f"redo {worker_id}: SUCCESS; queued for the second pass")


def _not_redone(s: Session, worker_id: str, entry: Entry, why: str) -> None:
    entry["state"], entry["why"] = NOT_REDONE, why
    s.save()
    log(s.paths, "MERGING", f"merge.{worker_id}", "redo", f"not merged: {why}")
    s.progress(f"redo {worker_id}: {why}")


def _check(s: Session, worker_id: str, onto: str) -> str:
    """What keeps the redone branch out of the second pass, from git and boss's own refs ("" : none)."""
    paths, w = s.paths, s.m.worker(worker_id)
    status = st.read(paths.status(worker_id))
    if status is None or status.state != st.SUCCESS:
        return f"the redo ended {status.state}: {status.reason}" if status else "the redo left no status"
    head = git.rev(paths.repo, f"refs/heads/{w.branch}")
    start = git.rev(paths.repo, start_ref(paths, worker_id))
    if head is None or head != status.head_commit or start != onto or status.start_commit != onto:
        return f"its branch {w.branch} is not where its redo left it"
    if not git.is_ancestor(paths.repo, onto, head):
        return f"its branch {w.branch} does not start at {short(onto)}"
    changed = gittrees.diff_names_many(paths.repo, [(onto, head)])[0]
    own = triage.tool_paths(paths)
    bad = [p for p in changed if triage.is_tool_path(own, p)]
    bad += scope.out_of_scope(changed, w.scope) + list(scope.tree_problems(paths.repo, head, changed))
    if bad:
        return f"its redo changes paths it may not: {', '.join(sorted(set(bad))[:5])}"
    return ""
