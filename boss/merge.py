"""The merge ceremony (SPEC section 8): triage, baseline, serial merge-then-test, landing.

A state machine over the journal (boss/journal.py): each step is written before and after it
runs, so a ceremony killed at any point resumes where it stopped. Merges happen in the
integration worktree on `boss/<plan>/integration`, never in the user's checkout; a dropped
merge resets that branch to the commit the journal recorded before it. The base moves once,
by compare-and-swap, to a commit whose exact tree passed the integration test.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from boss import git, integration, statelog, triage
from boss import journal as jr
from boss.config import Config
from boss.errors import InputError, StateError
from boss.journal import CONFLICT, MERGED, PENDING, REVERTED, SKIPPED, Journal, Record
from boss.manifest import Manifest
from boss.paths import PlanPaths
from worker.run import JUNK
from worker.worktree import tool_excludes

Progress = Callable[[str], None]
# Test/debug switch: BOSS_MERGE_CRASH_AT=<point>[:<ID>] kills the ceremony with SIGKILL at that
# point (prepare, baseline, merge, test, land, checkout), to prove it resumes from its journal.
CRASH_ENV = "BOSS_MERGE_CRASH_AT"
# The state-log action of each verdict the merging step gives.
_ACTIONS = {MERGED: "merge", REVERTED: "revert", CONFLICT: "conflict", SKIPPED: "skip"}


def now() -> str:
    """The current UTC time with milliseconds, for the timeline."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def short(commit: str) -> str:
    return commit[:10]


def crash_point(point: str, worker_id: str = "") -> None:
    """Die here, as `kill -9` would, when BOSS_MERGE_CRASH_AT names this point."""
    wanted = os.environ.get(CRASH_ENV, "")
    name, _, wid = wanted.partition(":")
    if name == point and (not wid or wid == worker_id):
        os.kill(os.getpid(), signal.SIGKILL)


def journal_path(paths: PlanPaths) -> Path:
    return paths.merge_dir / "journal.json"


def base_commit_now(paths: PlanPaths, m: Manifest) -> str:
    """The commit the base branch points at; InputError naming the manifest when it is missing."""
    commit = git.rev(paths.repo, f"refs/heads/{m.base}")
    if commit is None:
        msg = f"{paths.manifest}: field base: branch {m.base!r} does not exist"
        raise InputError(msg)
    return commit


def run(paths: PlanPaths, m: Manifest, config: Config, progress: Progress) -> Journal:
    """Run the ceremony to its end (or resume an interrupted one); the final journal."""
    paths.merge_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(paths.merge_dir / "merge.lock"), timeout=0)
    try:
        lock.acquire()
    except Timeout as e:
        msg = f"another `boss merge {paths.plan}` is running (lock: {paths.merge_dir / 'merge.lock'})"
        raise StateError(msg) from e
    try:
        j = jr.load(journal_path(paths))
        if j is None or j.step == jr.DONE:
            j = _begin(paths, m, config, progress)
        else:
            progress(f"resuming the ceremony begun at {j.started_at} (step {j.step})")
        c = _Ceremony(paths, m, j, progress)
        if j.step == jr.PREPARE:
            c.prepare()
        if j.step == jr.BASELINE:
            c.baseline()
        if j.step == jr.MERGING:
            c.merge_all()
        if j.step == jr.LANDING:
            c.land()
        if j.step == jr.REPORT:
            c.report()
        return j
    finally:
        lock.release()


def exit_code(j: Journal) -> int:
    """0 when every queued worker merged (and landed), 1 otherwise."""
    queued = j.queued
    merged_now = [r for r in queued if r.id in j.queue and r.verdict == MERGED]
    ok = bool(queued) and all(r.verdict == MERGED for r in queued) and (j.landed or not merged_now)
    return 0 if ok else 1


def _begin(paths: PlanPaths, m: Manifest, config: Config, progress: Progress) -> Journal:
    repo = paths.repo
    base_start = base_commit_now(paths, m)
    git.add_exclude(repo, [*tool_excludes(paths), *JUNK])
    shutil.rmtree(paths.merge_dir / "logs", ignore_errors=True)
    t = triage.triage(paths, m, config, base_start)
    j = Journal(
        plan=paths.plan,
        base=m.base,
        base_start=base_start,
        integration_branch=integration.branch(paths.plan),
        worktree=str(integration.worktree_path(paths)),
        started_at=now(),
        head=base_start,
        records=t.records,
        queue=[r.id for r in t.records if r.queued and not r.decided],
    )
    for r in t.records:
        what = "queued (verified from git)" if r.queued and not r.decided else f"{r.verdict}: {r.reason}"
        action = "quarantine" if r.verdict == jr.QUARANTINED else "triage"
        _log(paths, r.verdict or "QUEUED", f"merge.{r.id}", action, what)
    counts: dict[str, int] = {}
    for r in t.records:
        key = "queued" if r.queued and not r.decided else r.verdict
        counts[key] = counts.get(key, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in counts.items())
    progress(f"boss merge {paths.plan}: {m.base} at {short(base_start)}; {len(t.records)} workers: {summary}")
    for r in t.records:
        if r.verdict and r.verdict != MERGED:
            progress(f"  {r.id}: {r.verdict} ({r.reason})")
    jr.save(journal_path(paths), j)
    return j


def _log(paths: PlanPaths, state: str, iid: str, action: str, result: str, artifacts: str = "") -> None:
    from worker.status import now_iso

    statelog.append(paths.log, statelog.Event(now_iso(), state, iid, action, result, artifacts))


@dataclass
class _Ceremony:
    paths: PlanPaths
    m: Manifest
    j: Journal
    progress: Progress

    @property
    def wt(self) -> Path:
        return Path(self.j.worktree)

    def save(self) -> None:
        jr.save(journal_path(self.paths), self.j)

    def step(self, name: str) -> None:
        self.j.step = name
        self.save()

    def prepare(self) -> None:
        if not self.j.queue:
            self.step(jr.LANDING)
            return
        crash_point("prepare")
        integration.prepare(self.paths, self.m, self.j.base_start)
        self.step(jr.BASELINE)

    def baseline(self) -> None:
        j, m = self.j, self.m
        if not m.integration_test.strip():
            j.baseline = {"ran": False, "ok": True, "reason": "the plan has no integration_test"}
            self.step(jr.MERGING)
            return
        crash_point("baseline")
        started = now()
        self.progress(f"baseline: running `{m.integration_test}` on {m.base} at {short(j.base_start)}")
        result = integration.run_test(self.paths, m, self.wt, "baseline", self.progress, "baseline")
        j.test_runs += 1
        verdict = integration.judge_baseline(m, result)
        j.baseline = {"ran": True, "ok": verdict.ok, "reason": verdict.reason, **result.to_dict()}
        j.tested[git.tree_of(self.paths.repo, j.base_start)] = result.to_dict()
        j.events.append({"name": "baseline", "start": started, "end": now()})
        _log(self.paths, "MERGE", "merge", "baseline", f"{'ok' if verdict.ok else 'red'}: {verdict.reason}",
             result.log)  # fmt: skip
        self.progress(f"baseline: {m.base} {verdict.reason} ({result.elapsed:.1f}s)")
        if not verdict.ok:
            why = f"the integration test {verdict.reason} on {m.base} before any merge"
            for r in self._pending():
                r.verdict, r.reason = PENDING, f"not attempted: {why}; see {result.log}"
            j.message = f"stopped: {why}, so no merge could be judged; fix {m.base} first"
            self.step(jr.LANDING)
            return
        self.step(jr.MERGING)

    def _pending(self) -> list[Record]:
        return [r for r in self.j.records if r.id in self.j.queue and not r.decided]

    def merge_all(self) -> None:
        j = self.j
        integration.prepare(self.paths, self.m, j.head)
        total = len(j.queue)
        for k, r in enumerate(self._pending(), total - len(self._pending()) + 1):
            label = f"[{k}/{total}] {r.id}"
            w = self.m.worker(r.id)
            dropped = next((d for d in w.depends_on if self.j.record(d).verdict != MERGED), None)
            if dropped is not None:
                dep = j.record(dropped)
                r.verdict = SKIPPED
                r.reason = f"its dependency {dropped} was not merged ({dep.verdict or dep.state})"
                self._decided(r, label)
                continue
            self._merge_one(r, label)
        j.current = None
        self.step(jr.LANDING)

    def _decided(self, r: Record, label: str, artifacts: str = "") -> None:
        r.finished_at = now()
        self.j.current = None
        self.save()
        _log(self.paths, r.verdict, f"merge.{r.id}", _ACTIONS.get(r.verdict, "triage"), r.reason, artifacts)
        self.progress(f"{label}: {r.verdict} ({r.reason})")

    def _merge_one(self, r: Record, label: str) -> None:
        j, wt = self.j, self.wt
        pre = j.head
        r.started_at = now()
        j.current = {"id": r.id, "pre": pre, "phase": "merge"}
        self.save()
        self.progress(f"{label}: merging {r.branch} ({short(r.head)})")
        title = self.m.worker(r.id).title
        message = f"boss: merge {r.id} ({title})\n\nPlan {j.plan}, branch {r.branch}."
        res = git.merge_no_ff(wt, r.head, message)
        crash_point("merge", r.id)
        if res.returncode != 0:
            files = git.unmerged_paths(wt)
            integration.reset(wt, pre)
            if not files:  # not a conflict: something left in the worktree was in the way
                git.git(wt, "clean", "-fdq")
                res = git.merge_no_ff(wt, r.head, message)
                files = git.unmerged_paths(wt) if res.returncode else []
                if res.returncode:
                    integration.reset(wt, pre)
            if res.returncode:
                self._conflict(r, label, files, res.stderr or res.stdout)
                return
        new_head, tree = git.rev_parse_many(wt, "HEAD", "HEAD^{tree}")
        j.current = {**j.current, "phase": "test", "merged": new_head}
        self.save()
        ok, why = self._test(r, tree, label)
        if ok:
            j.head = new_head
            r.verdict, r.merge_commit = MERGED, new_head
            r.reason = why
        else:
            integration.reset(wt, j.current["pre"])
            r.verdict, r.reason = REVERTED, why
        self._decided(r, label, r.retry_log or r.test_log)

    def _conflict(self, r: Record, label: str, files: list[str], output: str) -> None:
        r.verdict, r.conflicts = CONFLICT, files
        merged = [x for x in self.j.records if x.verdict == MERGED and x.head and x.start]
        touched = git.diff_names_many(self.paths.repo, [(x.start, x.head) for x in merged])
        r.conflict_with = [x.id for x, names in zip(merged, touched, strict=True) if set(names) & set(files)]
        if files:
            who = ", ".join(r.conflict_with) or f"{self.m.base} (changed since the branch started)"
            r.reason = f"conflicts with {who} in {', '.join(files)}; the merge was aborted"
        else:
            r.reason = f"git merge failed: {output.strip().splitlines()[-1] if output.strip() else '?'}"
        self._decided(r, label)

    def _test(self, r: Record, tree: str, label: str) -> tuple[bool, str]:
        """Judge the merged tree: a cached result for a tree tested before, else run (and retry)."""
        j, m = self.j, self.m
        if not m.integration_test.strip():
            return True, "merged cleanly (no integration_test to run)"
        baseline = integration.Run.from_dict(j.baseline)
        if tree in j.tested:
            first = integration.Run.from_dict(j.tested[tree])
            verdict = integration.judge(m, first, baseline)
            r.test_log = first.log
            return verdict.ok, f"same tree as a run already judged: {verdict.reason}"
        self.progress(f"{label}: testing")
        first = integration.run_test(self.paths, m, self.wt, r.id, self.progress, label)
        crash_point("test", r.id)
        j.test_runs += 1
        r.test_log = first.log
        verdict = integration.judge(m, first, baseline)
        _log(self.paths, "MERGING", f"merge.{r.id}", "test", f"{'pass' if verdict.ok else 'fail'}: "
             f"{verdict.reason}", first.log)  # fmt: skip
        final, decisive = first, verdict
        if not verdict.ok:
            self.progress(f"{label}: red ({verdict.reason}); running it once more")
            final = integration.run_test(self.paths, m, self.wt, f"{r.id}.retry", self.progress, label)
            j.test_runs += 1
            r.retry_log = final.log
            decisive = integration.judge(m, final, baseline)
            _log(self.paths, "MERGING", f"merge.{r.id}", "retry",
                 f"{'pass' if decisive.ok else 'fail'}: {decisive.reason}", final.log)  # fmt: skip
            r.retried = decisive.ok
        j.tested[tree] = final.to_dict()
        if decisive.ok and r.retried:
            return True, f"passed on retry: the first run {verdict.reason} (flaky?)"
        if decisive.ok:
            return True, f"integration test {decisive.reason} after the merge"
        r.new_failures = decisive.new_failures
        return False, f"the integration test {decisive.reason} after the merge (twice); merge dropped"

    def land(self) -> None:
        j, repo = self.j, self.paths.repo
        crash_point("land")
        target, base_ref = j.head, f"refs/heads/{j.base}"
        started = now()
        if target == j.base_start:
            j.message = j.message or f"nothing new was merged; {j.base} is unchanged"
            self.step(jr.REPORT)
            return
        merged = sum(1 for r in j.records if r.id in j.queue and r.verdict == MERGED)
        current = git.rev(repo, base_ref)
        checkout = next((p for p, b in git.worktrees(repo).items() if b == j.base), None)
        how = f"land it with `git merge --ff-only {j.integration_branch}` on {j.base}"
        if current != target:
            if current != j.base_start:
                j.message = (
                    f"{j.base} moved from {short(j.base_start)} to {short(current or '')} during the "
                    f"ceremony, so it was not touched; the tested result is on {j.integration_branch}: "
                    f"{how}, or run `boss merge` again"
                )
                self._landed(False, started)
                return
            if checkout is not None and not (
                git.is_clean(checkout) and git.read_tree_update(checkout, j.base_start, target, dry_run=True)
            ):
                j.message = (
                    f"{j.base} is checked out in {checkout} with uncommitted changes (or untracked "
                    f"files in the way), so it was not touched; the tested result is on "
                    f"{j.integration_branch}: commit or stash your changes, then {how}"
                )
                self._landed(False, started)
                return
            j.checkout, j.land_target = str(checkout or ""), target
            self.save()
            if not git.update_ref(repo, base_ref, target, j.base_start):
                j.message = f"{j.base} moved at the last moment, so it was not touched; {how}"
                self._landed(False, started)
                return
        crash_point("checkout")
        if (
            checkout is not None
            and not git.index_at(checkout, target)
            and git.index_at(checkout, j.base_start)
        ):
            git.read_tree_update(checkout, j.base_start, target)
        j.message = f"landed: {j.base} moved from {short(j.base_start)} to {short(target)} ({merged} merged)"
        self._landed(True, started)

    def _landed(self, landed: bool, started: str) -> None:
        self.j.landed = landed
        self.j.events.append({"name": "land" if landed else "not landed", "start": started, "end": now()})
        _log(self.paths, "MERGE", "merge", "land", self.j.message)
        self.progress(self.j.message)
        self.step(jr.REPORT)

    def report(self) -> None:
        from boss import merge_report

        self.j.finished_at = self.j.finished_at or now()
        written = merge_report.write(self.paths, self.m, self.j)
        _log(
            self.paths, "MERGE", "merge", "report", merge_report.counts_line(self.j), self.paths.rel(written)
        )
        self.step(jr.DONE)


@dataclass(frozen=True)
class DryRun:
    """What `boss merge` would do now: triage, the merge order, the predicted conflicts."""

    base: str
    base_start: str
    records: list[Record]
    order: list[str]
    prediction: triage.Prediction
    in_progress: str  # the step of an interrupted ceremony that `boss merge` would resume, or ""


def dry_run(paths: PlanPaths, m: Manifest, config: Config) -> DryRun:
    """Triage and predict conflicts with `git merge-tree`, changing nothing."""
    base_start = base_commit_now(paths, m)
    t = triage.triage(paths, m, config, base_start)
    prediction = triage.predict(paths.repo, m, base_start, t)
    j = jr.load(journal_path(paths))
    in_progress = j.step if j is not None and j.step != jr.DONE else ""
    order = [r.id for r in t.records if r.queued and not r.decided]
    return DryRun(m.base, base_start, t.records, order, prediction, in_progress)
