"""Speculative parallel testing: the test runs the serial ceremony will need, made ahead in slots.

The serial procedure (merging, candidate, grouping, acceptance, verify) stays the one judge of
every verdict. Each test result it needs is a run of a command on a tree: the integration test
on a tree (`int`), a worker's acceptance test on a tree (`acc`), a first run or the run again of
a red one. With `--slots N` (N > 1) it asks the Speculator for each (`fetch`) instead of running
it in the integration worktree, and the Speculator has already made most of them:

- It predicts the candidates the serial procedure will judge (boss/ceremony/predict.py).
- It queues, for each candidate in order: each member's acceptance test and the integration
  test on its tree; for a red first run, the run again; for the predicted final tree, every
  predicted merged worker's acceptance test (the final check). N slot threads take them in that
  order, each in a worktree of its own (`_slot<k>`, detached at the candidate's commit), or, with
  `boss merge --engine dask`, on a cluster node (boss/ceremony/elsewhere.py).
- After each verdict, and whenever a run comes back red, the prediction is made again: queued
  runs no longer wanted are dropped (a running one finishes, its result kept), new ones queued.

A merge commit's tree depends only on its parents' trees and the merge, so the serial merge makes
the tree that was predicted, and the result of a run on that tree is the one it would have made:
the verdicts, the landed tree and the dropped workers are those of `--slots 1` (for tests whose
result depends on the tree; a flaky test is run again in both). A run the serial procedure asks
for that was not predicted runs at once, before anything queued.

Rounds: a run queued before any result was known is of round 1; one queued once the ceremony had
used a result of round r, of round r+1. `Journal.rounds` is the highest round of a used result;
serially, every run is a round of its own. Nothing of the speculation is journalled: killed, the
ceremony resumes from its journal, and a new Speculator predicts again.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from boss.ceremony import elsewhere, integration, predict
from boss.ceremony.integration import Run
from boss.ceremony.predict import Candidate
from boss.ceremony.session import Session, now, short
from boss.core import git, gittrees, testrun
from boss.core import journal as jr
from boss.core.errors import GitError
from boss.core.manifest import Worker
from boss.core.worktrees import registry_lock

WAIT = 0.5  # seconds between looks while the ceremony waits for a run (a new result wakes it at once)
QUEUED, RUNNING, DONE, DROPPED = "queued", "running", "done", "dropped"


def slot_path(s: Session, k: int) -> Path:
    """Slot k's worktree, beside the integration worktree (a name no worker id can take)."""
    return integration.worktree_path(s.paths).parent / f"_slot{k}"


Order = tuple[int, int, int]  # (candidate, acceptance 0 | integration 1, member): lower runs first


class Want(NamedTuple):
    """A run a prediction needs: Job's fields, before it is queued."""

    kind: str
    tree: str
    worker: str
    attempt: int
    commit: str
    order: Order
    label: str


@dataclass
class Job:
    """One test run: `kind` int or acc, on `tree` (checked out at `commit`), its attempt."""

    key: str
    kind: str
    tree: str
    commit: str
    worker: str
    attempt: int
    order: Order
    depth: int
    label: str
    needed: bool = False  # asked for by the serial procedure: never dropped
    ahead: bool = True  # queued by a prediction, before the serial procedure asked for it
    state: str = QUEUED
    result: Run | None = None
    used: bool = False
    pgid: int = 0
    cancel: testrun.Cancel | None = None  # stops it where it runs elsewhere
    slot: int = 0
    started: str = ""
    ended: str = ""
    waiters: list[threading.Event] = field(default_factory=list)


def key_of(kind: str, tree: str, worker: str, attempt: int) -> str:
    """The name of a run: what ran, on which tree, which time."""
    return f"{kind} {tree} {worker} {attempt}"


class Speculator:
    """The slots of one ceremony run: predicted test runs, made ahead, handed to the serial judge."""

    def __init__(self, s: Session, slots: int, remote: testrun.Remote | None = None) -> None:
        self.s, self.slots, self.remote = s, slots, remote
        self.cond = threading.Condition()
        self.jobs: dict[str, Job] = {}
        self.level = 0  # the highest round of a result the ceremony used
        self.news = False  # a run came back red since the last prediction
        self.failure: BaseException | None = None
        self.stopping = False
        self.sequence = 0
        self.merges: predict.Merges = {}
        self.made: list[Job] = []  # every run ever queued, those dropped and queued again too
        self.threads = [threading.Thread(target=self._slot, args=(k,), name=f"merge-slot-{k}", daemon=True)
                        for k in range(1, slots + 1)]  # fmt: skip
        # The slots' worktrees are made here, one after the other, before any thread starts: a
        # `git worktree add` beside another git command that reads the worktree list (another
        # add, a `checkout -B`) can fail on the half-made entry. Their setup runs in each slot.
        # With a remote, the slots are its own (boss/ceremony/elsewhere.py).
        for k in range(1, slots + 1 if remote is None else 1):
            _make_slot(s, slot_path(s, k))
        for t in self.threads:
            t.start()

    # --- the serial procedure's side ---------------------------------------------------------

    def fetch(self, kind: str, tree: str, worker: str, attempt: int, commit: str, label: str) -> Run:
        """The result of this run: made ahead, being made (waited for), or made now in a free
        slot before anything queued. Predictions are made again while it waits, as results come."""
        key = key_of(kind, tree, worker, attempt)
        with self.cond:
            job = self.jobs.get(key)
            if job is None or job.state == DROPPED:
                job = self._add(kind, tree, worker, attempt, commit, (-1, 0, self._next()), label)
                job.ahead = False
            job.needed = True
            if job.state == QUEUED:
                job.order = (-1, 0, job.order[2])
        if job.state != DONE:
            what = f"{kind} {short(tree)}{f' {worker}' if worker else ''}"
            self.s.progress(f"{label}: waiting for the slot run {what} ({job.state})")
        while True:
            with self.cond:
                if self.failure is not None:
                    raise self.failure
                if job.state == DONE:
                    break
                news, self.news = self.news, False
                if not news:
                    self.cond.wait(WAIT)
                    continue
            self.replan()
        with self.cond:
            job.used = True
            self.level = max(self.level, job.depth)
            self.s.j.rounds = max(self.s.j.rounds, self.level)
        return job.result  # type: ignore[return-value]  # DONE: a result

    def replan(self) -> None:
        """Predict the candidates from the journal as it is now; queue what they need, drop the rest."""
        wanted = self._wanted()
        with self.cond:
            for job in self.jobs.values():
                # A run under way is left to finish, its result kept: a prediction may need it
                # again, and a test with state of its own (one red first run per tree) must not
                # have been run half for nothing.
                if job.key not in wanted and not job.needed and job.state == QUEUED:
                    self._drop(job)
            for key, want in wanted.items():
                known = self.jobs.get(key)
                if known is None or known.state == DROPPED:
                    self._add(*want)
                elif known.state == QUEUED and not known.needed:
                    known.order = want.order
            self.cond.notify_all()

    def stop(self) -> None:
        """Drop every run not made yet, stop the running ones, wait for the slots; count the waste."""
        with self.cond:
            self.stopping = True
            for job in self.jobs.values():
                if job.state in (QUEUED, RUNNING):
                    self._drop(job)
            self.cond.notify_all()
        for t in self.threads:
            t.join(timeout=60)
        j = self.s.j
        ran = sorted((x for x in self.made if x.started and x.ended), key=lambda x: x.started)
        j.speculative_runs = sum(1 for x in ran if x.ahead)  # stopped ones too: they took slot time
        j.wasted_runs = sum(1 for x in ran if not x.used)
        for x in ran:  # the timeline's section of the slots
            if x.result is None:
                state = "stopped"
            else:
                state = "unused" if not x.used else "ok" if x.result.exit_code == 0 else "red"
            what, when = x.label.removeprefix("slot: "), {"start": x.started, "end": x.ended}
            j.events.append({"name": what, **when, "slot": f"{x.slot}", "state": state})
        for k in range(1, self.slots + 1 if self.remote is None else 1):
            _remove_slot(self.s, slot_path(self.s, k))

    # --- predictions ------------------------------------------------------------------------

    def _wanted(self) -> dict[str, Want]:
        """Every run the predicted candidates need, by key."""
        s = self.s
        out: dict[str, Want] = {}
        try:
            chain, final, merged = self._predict()
        except GitError:  # a prediction git cannot make: the serial procedure runs what it needs
            return out
        tests = bool(s.m.integration_test.strip())
        if tests and s.j.step in (jr.PREPARE, jr.BASELINE):  # the baseline first: every judgement needs it
            base_tree = gittrees.tree_of(s.paths.repo, s.j.base_start)
            self._want(out, Want("int", base_tree, "", 1, s.j.base_start, (-1, 0, 0), "slot: baseline"))
        for pos, cand in enumerate(chain):
            name = f"candidate {pos + 1} ({'+'.join(cand.ids)})"
            for n, wid in enumerate(cand.ids):
                label = f"slot: {wid} on {name}"
                self._want(out, Want("acc", cand.tree, wid, 1, cand.commit, (pos, 0, n), label))
            if tests:
                self._want(out, Want("int", cand.tree, "", 1, cand.commit, (pos, 1, 0), f"slot: {name}"))
        if final is not None:
            for n, wid in enumerate(merged):
                order, label = (len(chain), 0, n), f"slot: final check {wid}"
                self._want(out, Want("acc", final.tree, wid, 1, final.commit, order, label))
        return out

    def _want(self, out: dict[str, Want], want: Want) -> None:
        """A first run; and, when it came back red, its run again (what the serial procedure asks next)."""
        first = key_of(want.kind, want.tree, want.worker, 1)
        out[first] = want
        done = self.jobs.get(first)
        if done is not None and done.result is not None and not self._green(want.kind, done.result):
            again = want._replace(attempt=2, label=f"{want.label} (again)")
            out[key_of(want.kind, want.tree, want.worker, 2)] = again

    def _green(self, kind: str, run: Run) -> bool:
        """Whether a run looks green enough to predict on (the serial procedure judges it for real)."""
        if kind == "acc" or run.exit_code == 0:
            return run.exit_code == 0
        reference = self.s.j.tested.get(self.s.j.head_tree) or self.s.j.baseline
        if not reference.get("log"):
            return False
        return integration.judge(self.s.m, run, Run.from_dict(reference)).ok

    def _red(self, tree: str, ids: list[str]) -> bool:
        """A first run on this candidate came back red (its retry may still save it)."""
        keys = [key_of("int", tree, "", 1)] + [key_of("acc", tree, w, 1) for w in ids]
        with self.cond:
            runs = [(k.split(" ", 1)[0], j.result) for k in keys if (j := self.jobs.get(k)) is not None]
        return any(r is not None and not self._green(kind, r) for kind, r in runs)

    def _predict(self) -> tuple[list[Candidate], Candidate | None, list[str]]:
        # A window of candidates, not the whole queue: what N slots can test before the next
        # verdict, twice over (each prediction after a verdict is then a few git calls).
        return predict.chain(self.s, self._red, max(4, 2 * self.slots), self.merges)

    # --- the job table ----------------------------------------------------------------------

    def _next(self) -> int:
        self.sequence += 1
        return self.sequence

    def _add(
        self, kind: str, tree: str, worker: str, attempt: int, commit: str, order: Order, label: str
    ) -> Job:
        key = key_of(kind, tree, worker, attempt)
        job = Job(key, kind, tree, commit, worker, attempt, order, self.level + 1, label)
        self.jobs[key] = job
        self.made.append(job)
        self.cond.notify_all()
        return job

    def _drop(self, job: Job) -> None:
        """Not wanted any more: never run, or stopped (its result, if any, is not used)."""
        if job.state == RUNNING and job.pgid:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(job.pgid, signal.SIGTERM)
        if job.state == RUNNING and job.cancel is not None:
            job.cancel()
        job.state = DROPPED

    # --- the slots --------------------------------------------------------------------------

    def _take(self) -> Job | None:
        with self.cond:
            while True:
                if self.stopping:
                    return None
                queued = [x for x in self.jobs.values() if x.state == QUEUED]
                if queued:
                    job = min(queued, key=lambda x: x.order)
                    job.state = RUNNING
                    return job
                self.cond.wait()

    def _slot(self, k: int) -> None:
        s = self.s
        path = slot_path(s, k)
        ticker = integration.Ticker(s.progress)
        ready = False
        try:
            job = self._take()
            while job is not None:
                if self.remote is None and not ready:
                    integration.setup_worktree(s.paths, s.m, path)
                    ready = True
                if self.remote is None:  # as in the integration worktree: tracked files as committed
                    git.git(path, "checkout", "--quiet", "--force", "--detach", job.commit)
                    git.clean(path)  # and nothing an earlier run here left (integration.pristine)
                job.slot, job.started = k, now()
                s.progress(f"slot {k}: {job.label.removeprefix('slot: ')}")
                run = self._run(job, path, ticker)
                job.ended = now()
                with self.cond:
                    again = None
                    if job.state == RUNNING:
                        job.result, job.state = run, DONE
                        if run.exit_code != 0 and job.attempt == 1:
                            self.news = True
                            again = self._again(job)  # run again here at once, as the serial ceremony would
                    self.cond.notify_all()
                job = again if again is not None else self._take()
        except BaseException as e:  # the ceremony raises it where it waits
            with self.cond:
                self.failure = e
                self.cond.notify_all()
        finally:
            ticker.stop()

    def _again(self, first: Job) -> Job | None:
        """The run again of a red first run, claimed for the slot that made the first (its
        worktree, as the serial ceremony's retry has); None when it is made already or elsewhere."""
        key = key_of(first.kind, first.tree, first.worker, 2)
        job = self.jobs.get(key)
        if job is None or job.state == DROPPED:
            label = f"{first.label} (again)"
            job = self._add(first.kind, first.tree, first.worker, 2, first.commit, first.order, label)
            job.depth = first.depth + 1
        if job.state != QUEUED:
            return None
        job.state = RUNNING
        return job

    def _run(self, job: Job, path: Path, ticker: integration.Ticker) -> Run:
        s = self.s

        def started(pgid: int) -> None:  # a run dropped meanwhile is stopped as soon as it starts
            with self.cond:
                job.pgid = pgid
                if job.state == DROPPED:
                    with suppress(ProcessLookupError, PermissionError):
                        os.killpg(pgid, signal.SIGTERM)

        name = f"slot.{job.kind}.{short(job.tree)}{f'.{job.worker}' if job.worker else ''}.{job.attempt}"
        if self.remote is not None:
            return self._run_elsewhere(self.remote, job, name, ticker)
        owner = integration.run_owner(s.paths)
        if job.kind == "int":
            return integration.run_test(
                s.paths, s.m, path, name, ticker, job.label, on_start=started, owner=owner
            )
        w: Worker = s.m.worker(job.worker)
        return integration.run_acceptance(
            s.paths, s.m, w, path, name, ticker, job.label, on_start=started, owner=owner
        )

    def _run_elsewhere(self, remote: testrun.Remote, job: Job, name: str, ticker: integration.Ticker) -> Run:
        def started(cancel: testrun.Cancel) -> None:  # a run dropped meanwhile is stopped at once
            with self.cond:
                job.cancel = cancel
                if job.state == DROPPED:
                    cancel()

        req = elsewhere.request(self.s, name, job.kind, job.commit, job.worker)
        return elsewhere.run(self.s, remote, req, ticker, job.label, started, job.slot)


def _make_slot(s: Session, path: Path) -> None:
    """A slot's new worktree, detached at the base (its copied files and setup come at its first run)."""
    _remove_slot(s, path)
    with registry_lock(s.paths):
        git.worktree_add_detached(s.paths.repo, path, s.j.base_start)


def _remove_slot(s: Session, path: Path) -> None:
    if not path.exists():
        return
    with registry_lock(s.paths):
        with suppress(GitError):
            git.worktree_remove(s.paths.repo, path)
        shutil.rmtree(path, ignore_errors=True)
        with suppress(GitError):
            git.git(s.paths.repo, "worktree", "prune")
