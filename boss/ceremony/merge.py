"""The merge ceremony (SPEC section 8): triage, baseline, serial merge-then-test, landing.

A state machine over the journal (boss/core/journal.py): each step is written before and after it
runs, so a ceremony killed at any point resumes where it stopped. Merges happen in the
integration worktree on `boss/<plan>/integration`, never in the user's checkout; a dropped
merge resets that branch to the commit the journal recorded before it.

Nothing a worker wrote decides a merge: after each merge the worker's acceptance test (from
the manifest boss holds) and the integration test run on the merged candidate, and the
integration test is judged against the last tested head. After the last merge every merged
worker's acceptance test runs again on the result; a merge that broke an earlier worker's test
is dropped and the merges after it are made again. The base moves once, by compare-and-swap,
to a commit whose exact tree the journal records as verified.

This module drives it: it begins a ceremony (triage, into a new journal) or resumes one, and
runs the steps in order on a `Session` (boss/ceremony/session.py): prepare and baseline here,
then merging (boss/ceremony/merging.py, with the final check in boss/ceremony/verify.py),
landing (boss/ceremony/landing.py) and the report. With `--slots N`, the test runs those steps
ask for are made ahead, N at once, by boss/ceremony/speculate.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from boss.ceremony import integration, landing, merging, redoing, speculate, triage
from boss.ceremony import report as merge_report
from boss.ceremony.session import Progress, Session, journal_path, log, now, short
from boss.core import git, gittrees, notify
from boss.core import journal as jr
from boss.core.config import Config
from boss.core.journal import MERGED, PENDING, Journal, crash_point
from boss.core.lock import locked
from boss.core.manifest import Manifest
from boss.core.paths import PlanPaths, integration_branch
from boss.core.proc import stop_left_by
from boss.core.testrun import Remote
from boss.core.worktrees import tool_excludes


def run(
    paths: PlanPaths,
    m: Manifest,
    config: Config,
    progress: Progress,
    redo_rounds: int = 0,
    slots: int = 1,
    remote: Callable[[], Remote] | None = None,
) -> Journal:
    """Run the ceremony to its end (or resume an interrupted one); the final journal. `redo_rounds`:
    of a new ceremony, at most that many rounds of redoing dropped workers (boss/ceremony/redoing.py).
    `slots`: test runs at once; above 1, made ahead by boss/ceremony/speculate.py, same verdicts.
    `remote`: makes where the slots' runs are made instead (its own slots; a Dask cluster), once
    the ceremony's lock is held; closed when the ceremony ends."""
    lock = paths.merge_dir / "merge.lock"
    busy = f"another `boss merge {paths.plan}` is running (lock: {lock})"
    with locked(lock, 0, busy), _place(remote) as place:
        stop_left_by(integration.run_owner(paths))  # what a ceremony killed with -9 left running
        j = jr.load(journal_path(paths))
        if j is None or j.step == jr.DONE:
            j = _begin(paths, m, config, progress)
            j.redo_rounds = redo_rounds
        else:
            progress(f"resuming the ceremony begun at {j.started_at} (step {j.step})")
            if j.step in (jr.MERGING, jr.REDO, jr.LANDING):
                landing.check_head(paths, j)
        testing = j.step not in (jr.LANDING, jr.REPORT)
        s = Session(paths, m, j, progress, elsewhere=place is not None and testing)
        j.slots = max(1, place.slots if place is not None else slots)
        if (j.slots > 1 or place is not None) and testing:
            if place is not None:
                progress(f"test slots: {j.slots} on {place.where}")
            s.spec = speculate.Speculator(s, j.slots, place)
            s.spec.replan()
        try:
            if j.step == jr.PREPARE:
                _prepare(s)
            if j.step == jr.BASELINE:
                _baseline(s)
            if j.step == jr.MERGING:
                merging.merge_all(s)
            while redoing.due(s):
                redoing.redo_all(s)
                if j.step == jr.MERGING:
                    merging.merge_all(s)
            _stop_slots(s)  # every test has run: what the slots made ahead is counted for the report
            if j.step == jr.LANDING:
                landing.land(s)
            if j.step == jr.REPORT:
                _report(s)
        except BaseException as e:  # failed or interrupted: said too (the journal resumes it)
            outcome = "interrupted" if isinstance(e, KeyboardInterrupt | SystemExit) else "failed"
            notify.emit(paths.repo, notify.CEREMONY_ENDED, paths.plan, number=j.number, outcome=outcome,
                        step=j.step, error=str(e) or type(e).__name__)  # fmt: skip
            raise
        finally:
            _stop_slots(s)
            s.ticker.stop()
        return j


@contextmanager
def _place(make: Callable[[], Remote] | None) -> Iterator[Remote | None]:
    """Where the test slots run when not here (made now, closed at the end); None: here."""
    if make is None:
        yield None
        return
    place = make()
    try:
        yield place
    finally:
        place.close()


def _stop_slots(s: Session) -> None:
    """Stop the test slots, if any: every run not made is dropped, every running one stopped."""
    if isinstance(s.spec, speculate.Speculator):
        s.spec.stop()
        s.spec = None
        s.save()


def exit_code(j: Journal) -> int:
    """0 when every queued worker merged (and landed), 1 otherwise."""
    queued = j.queued
    merged_now = [r for r in queued if r.id in j.queue and r.verdict == MERGED]
    ok = bool(queued) and all(r.verdict == MERGED for r in queued) and (j.landed or not merged_now)
    return 0 if ok else 1


def _begin(paths: PlanPaths, m: Manifest, config: Config, progress: Progress) -> Journal:
    repo = paths.repo
    base_start = triage.base_head(paths, m)
    git.add_exclude(repo, tool_excludes(paths))
    t = triage.triage(paths, m, config, base_start)
    j = Journal(
        plan=paths.plan,
        base=m.base,
        base_start=base_start,
        integration_branch=integration_branch(paths.plan),
        worktree=str(integration.worktree_path(paths)),
        started_at=now(),
        head=base_start,
        records=t.records,
        number=merge_report.next_number(paths),
        queue=[r.id for r in t.records if r.queued and not r.decided],
    )
    counts: dict[str, int] = {}
    for r in t.records:
        key = "queued" if r.queued and not r.decided else r.verdict
        counts[key] = counts.get(key, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in counts.items())
    queued = " ".join(j.queue)
    log(paths, "MERGE", "merge", "triage", f"{summary}; merge order (verified from git): {queued or '-'}")
    for r in t.records:  # a queued worker's line is its merge verdict, later
        if r.verdict:
            action = "quarantine" if r.verdict == jr.QUARANTINED else "triage"
            log(paths, r.verdict, f"merge.{r.id}", action, r.reason)
    progress(f"boss merge {paths.plan}: {m.base} at {short(base_start)}; {len(t.records)} workers: {summary}")
    for r in t.records:
        if r.verdict and r.verdict != MERGED:
            progress(f"  {r.id}: {r.verdict} ({r.reason})")
    jr.save(journal_path(paths), j)
    return j


def _prepare(s: Session) -> None:
    if not s.j.queue:
        s.step(jr.LANDING)
        return
    merge_report.warm_up()
    crash_point("prepare")
    integration.prepare(s.paths, s.m, s.j.base_start, not s.elsewhere)
    s.prepared, s.at = True, s.j.base_start
    s.step(jr.BASELINE)


def _baseline(s: Session) -> None:
    j, m = s.j, s.m
    if not m.integration_test.strip():
        j.baseline = {"ran": False, "ok": True, "reason": "the plan has no integration_test"}
        s.proven(j.base_start, gittrees.tree_of(s.paths.repo, j.base_start))
        s.step(jr.MERGING)
        return
    crash_point("baseline")
    if not s.prepared:  # resumed: make sure the worktree is there, at the base
        integration.prepare(s.paths, m, j.base_start, not s.elsewhere)
        s.prepared, s.at = True, j.base_start
    started = now()
    s.progress(f"baseline: running `{m.integration_test}` on {m.base} at {short(j.base_start)}")
    if s.spec is not None:
        base_tree = gittrees.tree_of(s.paths.repo, j.base_start)
        result = s.spec.fetch("int", base_tree, "", 1, j.base_start, "baseline")
    else:
        result = integration.run_test(s.paths, m, s.wt, "baseline", s.ticker, "baseline")
        s.ran_here()
    j.test_runs += 1
    verdict = integration.judge_baseline(m, result)
    j.baseline = {"ran": True, "ok": verdict.ok, "reason": verdict.reason, **result.to_dict()}
    commit, tree = gittrees.commit_and_tree(s.paths.repo, f"refs/heads/{j.base}", s.common)
    if commit != j.base_start:
        tree = gittrees.tree_of(s.paths.repo, j.base_start)
    j.tested[tree] = result.to_dict()
    j.events.append({"name": "baseline", "start": started, "end": now()})
    log(s.paths, "MERGE", "merge", "baseline", f"{'ok' if verdict.ok else 'red'}: {verdict.reason}",
        result.log)  # fmt: skip
    s.progress(f"baseline: {m.base} {verdict.reason} ({result.elapsed:.1f}s)")
    if not verdict.ok:
        why = f"the integration test {verdict.reason} on {m.base} before any merge"
        for r in s.pending():
            r.verdict, r.reason = PENDING, f"not attempted: {why}; see {result.log}"
        j.message = f"stopped: {why}, so no merge could be judged; fix {m.base} first"
        s.step(jr.LANDING)
        return
    s.proven(j.base_start, tree)
    s.step(jr.MERGING)


def _report(s: Session) -> None:
    s.j.finished_at = s.j.finished_at or now()
    for worker_id, entry in s.j.redo.items():  # a redone worker's verdict says it was redone, and why
        r, was = s.j.record(worker_id), f"redone on {short(entry['onto'])} after {entry['from']}"
        if not r.reason.startswith("redone on "):
            why = f": {entry['why']}" if entry.get("why") else ""
            r.reason = f"{was} ({entry['reason']}){why}; {r.reason}" if r.reason else f"{was}{why}"
    written = merge_report.write(s.paths, s.m, s.j)
    log(s.paths, "MERGE", "merge", "report", merge_report.counts_line(s.j), s.paths.rel(written))
    s.step(jr.DONE)
    notify.emit(s.paths.repo, notify.CEREMONY_ENDED, s.paths.plan, number=s.j.number, outcome="done",
                counts=merge_report.counts_line(s.j), report=s.paths.rel(written))  # fmt: skip
