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
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from boss.ceremony import integration, triage
from boss.ceremony import report as merge_report
from boss.core import git, gittrees, statelog
from boss.core import journal as jr
from boss.core.config import Config
from boss.core.errors import StateError
from boss.core.journal import CONFLICT, MERGED, PENDING, REVERTED, SKIPPED, Journal, Record, crash_point
from boss.core.lock import locked
from boss.core.manifest import Manifest, Worker
from boss.core.paths import PlanPaths, integration_branch
from boss.core.worktrees import tool_excludes

Progress = Callable[[str], None]
# The state-log action of each verdict the merging step gives.
_ACTIONS = {MERGED: "merge", REVERTED: "revert", CONFLICT: "conflict", SKIPPED: "skip"}


def now() -> str:
    """The current UTC time with milliseconds, for the timeline."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def short(commit: str) -> str:
    return commit[:10]


def journal_path(paths: PlanPaths) -> Path:
    return paths.merge_dir / "journal.json"


def run(paths: PlanPaths, m: Manifest, config: Config, progress: Progress) -> Journal:
    """Run the ceremony to its end (or resume an interrupted one); the final journal."""
    lock = paths.merge_dir / "merge.lock"
    busy = f"another `boss merge {paths.plan}` is running (lock: {lock})"
    with locked(lock, 0, busy):
        j = jr.load(journal_path(paths))
        if j is None or j.step == jr.DONE:
            j = _begin(paths, m, config, progress)
        else:
            progress(f"resuming the ceremony begun at {j.started_at} (step {j.step})")
            if j.step in (jr.MERGING, jr.LANDING):
                _check_head(paths, j)
        c = _Ceremony(paths, m, j, progress)
        try:
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
        finally:
            c.ticker.stop()
        return j


def exit_code(j: Journal) -> int:
    """0 when every queued worker merged (and landed), 1 otherwise."""
    queued = j.queued
    merged_now = [r for r in queued if r.id in j.queue and r.verdict == MERGED]
    ok = bool(queued) and all(r.verdict == MERGED for r in queued) and (j.landed or not merged_now)
    return 0 if ok else 1


def _check_head(paths: PlanPaths, j: Journal, landing: bool = False) -> str:
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


def _ignored_in_the_way(repo: Path, checkout: Path, old: str, new: str) -> list[str]:
    """Paths the landing would add that are already files in the checkout: ignored ones, which
    `git read-tree -m -u` overwrites without a word (a `.env`, say, replaced by a worker's)."""
    changed = git.changed_paths(repo, old, new)
    present = [p for p in changed if os.path.lexists(checkout / p)]
    if not present:
        return []
    tracked = gittrees.tree_entries(repo, old, present)
    return [p for p in present if p not in tracked]


def _begin(paths: PlanPaths, m: Manifest, config: Config, progress: Progress) -> Journal:
    repo = paths.repo
    base_start = triage.base_head(paths, m)
    git.add_exclude(repo, tool_excludes(paths))
    shutil.rmtree(paths.merge_dir / "logs", ignore_errors=True)
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
        queue=[r.id for r in t.records if r.queued and not r.decided],
    )
    counts: dict[str, int] = {}
    for r in t.records:
        key = "queued" if r.queued and not r.decided else r.verdict
        counts[key] = counts.get(key, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in counts.items())
    queued = " ".join(j.queue)
    _log(paths, "MERGE", "merge", "triage", f"{summary}; merge order (verified from git): {queued or '-'}")
    for r in t.records:  # a queued worker's line is its merge verdict, later
        if r.verdict:
            action = "quarantine" if r.verdict == jr.QUARANTINED else "triage"
            _log(paths, r.verdict, f"merge.{r.id}", action, r.reason)
    progress(f"boss merge {paths.plan}: {m.base} at {short(base_start)}; {len(t.records)} workers: {summary}")
    for r in t.records:
        if r.verdict and r.verdict != MERGED:
            progress(f"  {r.id}: {r.verdict} ({r.reason})")
    jr.save(journal_path(paths), j)
    return j


def _log(paths: PlanPaths, state: str, iid: str, action: str, result: str, artifacts: str = "") -> None:
    from boss.core.status import now_iso

    statelog.append(paths.log, statelog.Event(now_iso(), state, iid, action, result, artifacts))


@dataclass
class _Ceremony:
    paths: PlanPaths
    m: Manifest
    j: Journal
    progress: Progress

    prepared: bool = False  # the integration worktree was (re)set in this process
    at: str = ""  # the commit the integration worktree was last set or merged to
    ran: bool = False  # a test ran in the integration worktree since then (it may have changed files)

    @property
    def wt(self) -> Path:
        return Path(self.j.worktree)

    @cached_property
    def common(self) -> Path:
        return git.common_dir(self.paths.repo)

    @cached_property
    def ticker(self) -> integration.Ticker:
        return integration.Ticker(self.progress)

    def save(self) -> None:
        jr.save(journal_path(self.paths), self.j)

    def step(self, name: str) -> None:
        self.j.step = name
        self.save()

    def prepare(self) -> None:
        if not self.j.queue:
            self.step(jr.LANDING)
            return
        merge_report.warm_up()
        crash_point("prepare")
        integration.prepare(self.paths, self.m, self.j.base_start)
        self.prepared, self.at = True, self.j.base_start
        self.step(jr.BASELINE)

    def baseline(self) -> None:
        j, m = self.j, self.m
        if not m.integration_test.strip():
            j.baseline = {"ran": False, "ok": True, "reason": "the plan has no integration_test"}
            self._proven(j.base_start, gittrees.tree_of(self.paths.repo, j.base_start))
            self.step(jr.MERGING)
            return
        crash_point("baseline")
        if not self.prepared:  # resumed: make sure the worktree is there, at the base
            integration.prepare(self.paths, m, j.base_start)
            self.prepared, self.at = True, j.base_start
        started = now()
        self.progress(f"baseline: running `{m.integration_test}` on {m.base} at {short(j.base_start)}")
        result = integration.run_test(self.paths, m, self.wt, "baseline", self.ticker, "baseline")
        self.ran = True
        j.test_runs += 1
        verdict = integration.judge_baseline(m, result)
        j.baseline = {"ran": True, "ok": verdict.ok, "reason": verdict.reason, **result.to_dict()}
        commit, tree = gittrees.commit_and_tree(self.paths.repo, f"refs/heads/{j.base}", self.common)
        if commit != j.base_start:
            tree = gittrees.tree_of(self.paths.repo, j.base_start)
        j.tested[tree] = result.to_dict()
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
        self._proven(j.base_start, tree)
        self.step(jr.MERGING)

    def _proven(self, commit: str, tree: str) -> None:
        """commit (whose tree is tree) passed every test so far: it is the new tested head."""
        self.j.head, self.j.head_tree = commit, tree
        if tree not in self.j.proven:
            self.j.proven.append(tree)

    def _pending(self) -> list[Record]:
        return [r for r in self.j.records if r.id in self.j.queue and not r.decided]

    def _merged(self) -> list[Record]:
        """The workers this ceremony merged so far, in merge order."""
        return [r for r in self.j.records if r.id in self.j.queue and r.verdict == MERGED]

    def merge_all(self) -> None:
        j = self.j
        if not self.prepared:  # a resumed ceremony: back to the last tested head, whatever happened
            integration.prepare(self.paths, self.m, j.head)
            self.prepared, self.at = True, j.head
        total = len(j.queue)
        while True:
            for k, r in enumerate(self._pending(), total - len(self._pending()) + 1):
                label = f"[{k}/{total}] {r.id}"
                dropped = self._dropped_dependency(r)
                if dropped is not None:
                    dep = j.record(dropped)
                    r.verdict = SKIPPED
                    r.reason = f"its dependency {dropped} was not merged ({dep.verdict or dep.state})"
                    self._decided(r, label)
                    continue
                self._merge_one(r, label)
            broken = self._final_check()
            if broken is None:
                break
            self._drop_breaker(*broken)
        j.current = None
        self.step(jr.LANDING)

    def _dropped_dependency(self, r: Record) -> str | None:
        return next((d for d in self.m.worker(r.id).depends_on if self.j.record(d).verdict != MERGED), None)

    def _announce(self, r: Record) -> None:
        """Record in the journal (not yet saved) that r's merge-and-test starts from the current head."""
        r.started_at = now()
        self.j.current = {"id": r.id, "pre": self.j.head, "started": r.started_at}

    def _decided(self, r: Record, label: str, artifacts: str = "") -> None:
        """Save r's verdict; the same save announces the next merge, if one follows at once."""
        r.finished_at = now()
        self.j.current = None
        following = next(iter(self._pending()), None)
        if following is not None and self._dropped_dependency(following) is None:
            self._announce(following)
        self.save()
        _log(self.paths, r.verdict, f"merge.{r.id}", _ACTIONS.get(r.verdict, "triage"), r.reason, artifacts)
        self.progress(f"{label}: {r.verdict} ({r.reason})")

    def _merge_one(self, r: Record, label: str) -> None:
        j, wt = self.j, self.wt
        pre = j.head
        # Saved before the merge (usually by the save of the previous verdict) and after its
        # verdict: killed in between, the rerun resets the integration branch to this `pre`
        # (the last tested head) and merges and tests the worker again.
        if j.current is None or j.current["id"] != r.id or j.current["pre"] != pre:
            self._announce(r)
            self.save()
        if self.at != pre or self.ran:  # a test ran here: what it changed must not reach the merge
            self._goto(pre)
        self.progress(f"{label}: merging {r.branch} ({short(r.head)})")
        title = self.m.worker(r.id).title
        message = f"boss: merge {r.id} ({title})\n\nPlan {j.plan}, branch {r.branch}."
        res = gittrees.merge_no_ff(wt, r.head, message)
        crash_point("merge", r.id)
        if res.returncode != 0:
            files = gittrees.unmerged_paths(wt)
            integration.reset(wt, pre)
            if not files:  # not a conflict: something left in the worktree was in the way
                git.git(wt, "clean", "-fdq")
                res = gittrees.merge_no_ff(wt, r.head, message)
                files = gittrees.unmerged_paths(wt) if res.returncode else []
                if res.returncode:
                    integration.reset(wt, pre)
            if res.returncode:
                self.at, self.ran = pre, False
                self._conflict(r, label, files, res.stderr or res.stdout)
                return
        new_head, tree = gittrees.commit_and_tree(wt, f"refs/heads/{j.integration_branch}", self.common)
        r.pre, r.merge_tree, self.at = pre, tree, new_head
        ok, why = self._accept(r, new_head, tree, label)
        if ok:
            ok, why = self._test(r, tree, label)
        if ok:
            self._proven(new_head, tree)
            r.verdict, r.merge_commit = MERGED, new_head
            r.reason = why
        else:
            integration.reset(wt, pre)  # the pre-merge commit the journal recorded
            self.at, self.ran = pre, False
            r.verdict, r.reason = REVERTED, why
        self._decided(r, label, r.retry_log or r.test_log)

    def _conflict(self, r: Record, label: str, files: list[str], output: str) -> None:
        r.verdict, r.conflicts = CONFLICT, files
        merged = [x for x in self.j.records if x.verdict == MERGED and x.head and x.start]
        touched = gittrees.diff_names_many(self.paths.repo, [(x.start, x.head) for x in merged])
        r.conflict_with = [x.id for x, names in zip(merged, touched, strict=True) if set(names) & set(files)]
        if files:
            who = ", ".join(r.conflict_with) or f"{self.m.base} (changed since the branch started)"
            r.reason = f"conflicts with {who} in {', '.join(files)}; the merge was aborted"
        else:
            r.reason = f"git merge failed: {output.strip().splitlines()[-1] if output.strip() else '?'}"
        self._decided(r, label)

    def _acceptance(self, w: Worker, commit: str, tree: str, label: str) -> dict[str, Any]:
        """Worker w's acceptance test on tree (commit's): the journal's result, else run (and,
        when red, once more) with the worktree at commit; recorded in the journal, which the
        verdict it leads to saves (killed before that, the run is made again)."""
        j, key = self.j, f"{tree} {w.id}"
        known = j.acceptance.get(key)
        if known is not None and known.get("test") == w.test:
            return known
        if self.at != commit:
            self._goto(commit)
        name = f"{w.id}.accept.{short(tree)}"
        self.progress(f"{label}: acceptance test of {w.id}")
        first = integration.run_acceptance(self.paths, self.m, w, self.wt, name, self.ticker, label)
        self.ran = True
        crash_point("accept", w.id)
        j.acceptance_runs += 1
        result = {"test": w.test, "ok": first.exit_code == 0, "log": first.log, "retry_log": "",
                  **{k: v for k, v in first.to_dict().items() if k != "log"}}  # fmt: skip
        if not result["ok"]:  # red: once more, from a clean tree (a flaky test?)
            integration.pristine(self.wt, j.plan, commit)
            final = integration.run_acceptance(
                self.paths, self.m, w, self.wt, f"{name}.retry", self.ticker, label
            )
            j.acceptance_runs += 1
            result.update(ok=final.exit_code == 0, retry_log=final.log, retried=final.exit_code == 0,
                          exit_code=final.exit_code, timed_out=final.timed_out)  # fmt: skip
        j.acceptance[key] = result  # saved with the verdict it leads to
        return result

    @staticmethod
    def _failed(result: dict[str, Any]) -> str:
        """How an acceptance run failed, in words."""
        if result.get("timed_out"):
            return "timed out"
        return f"fails (exit {result.get('exit_code')}, twice)"

    def _accept(self, r: Record, commit: str, tree: str, label: str) -> tuple[bool, str]:
        """r's own acceptance test on its merged candidate, whatever its status file says."""
        w = self.m.worker(r.id)
        result = self._acceptance(w, commit, tree, label)
        r.acceptance_log = result["retry_log"] or result["log"]
        if result["ok"]:
            return True, ""
        r.test_log, r.retry_log = result["log"], result["retry_log"]
        failed = self._failed(result)
        _log(self.paths, "MERGING", f"merge.{r.id}", "accept", f"fail: {failed}", r.acceptance_log)
        return False, (
            f"its acceptance test `{w.test}` {failed} on the merged candidate, "
            "whatever its status says; merge dropped"
        )

    def _test(self, r: Record, tree: str, label: str) -> tuple[bool, str]:
        """Judge the merged tree against the last tested head: a cached result for a tree tested
        before, else run (and retry)."""
        j, m = self.j, self.m
        if not m.integration_test.strip():
            return True, "merged cleanly, its acceptance test passes (no integration_test to run)"
        reference = integration.Run.from_dict(j.tested.get(j.head_tree) or j.baseline)
        if tree in j.tested:
            first = integration.Run.from_dict(j.tested[tree])
            verdict = integration.judge(m, first, reference)
            r.test_log = first.log
            return verdict.ok, f"same tree as a run already judged: {verdict.reason}"
        self.progress(f"{label}: testing")
        first = integration.run_test(self.paths, m, self.wt, r.id, self.ticker, label)
        self.ran = True
        crash_point("test", r.id)
        j.test_runs += 1
        r.test_log = first.log
        verdict = integration.judge(m, first, reference)
        final, decisive = first, verdict
        if not verdict.ok:  # a green run's line is the MERGED verdict's
            _log(self.paths, "MERGING", f"merge.{r.id}", "test", f"fail: {verdict.reason}", first.log)
            self.progress(f"{label}: red ({verdict.reason}); running it once more")
            integration.pristine(self.wt, j.plan, self.at)
            final = integration.run_test(self.paths, m, self.wt, f"{r.id}.retry", self.ticker, label)
            j.test_runs += 1
            r.retry_log = final.log
            decisive = integration.judge(m, final, reference)
            _log(self.paths, "MERGING", f"merge.{r.id}", "retry",
                 f"{'pass' if decisive.ok else 'fail'}: {decisive.reason}", final.log)  # fmt: skip
            r.retried = decisive.ok
        j.tested[tree] = final.to_dict()
        if decisive.ok and r.retried:
            return True, f"passed on retry: the first run {verdict.reason} (flaky?); acceptance test passes"
        if decisive.ok:
            return True, f"integration test {decisive.reason} after the merge; acceptance test passes"
        r.new_failures = decisive.new_failures
        return False, f"the integration test {decisive.reason} after the merge (twice); merge dropped"

    def _final_check(self) -> tuple[Record, Record] | None:
        """Every merged worker's acceptance test on the head's tree: None when all pass (the
        tree is then verified, the one that may land), else (the worker whose test fails, the
        merge that broke it: the first merge after which it fails)."""
        j = self.j
        merged = self._merged()
        if j.verified == j.head_tree or not merged:
            j.verified = j.head_tree
            return None
        crash_point("verify")
        if merged[-1].merge_commit != j.head:  # pragma: no cover - the head is the last merge's
            raise StateError(f"{journal_path(self.paths)}: field head: not the last merge's commit")
        self._together(merged)
        for victim in merged:
            w = self.m.worker(victim.id)
            if self._acceptance(w, j.head, j.head_tree, f"final check {victim.id}")["ok"]:
                continue
            later = merged[merged.index(victim) :]
            label = f"final check: the merge that broke {victim.id}'s test"
            for breaker in later[:-1]:
                if not self._acceptance(w, breaker.merge_commit, breaker.merge_tree, label)["ok"]:
                    return victim, breaker
            return victim, later[-1]
        j.verified = j.head_tree
        self.save()
        _log(self.paths, "MERGE", "merge", "verify",
             f"the acceptance tests of {len(merged)} merged worker(s) pass on {short(j.head)}")  # fmt: skip
        return None

    def _together(self, merged: list[Record]) -> None:
        """The acceptance tests not yet run on the head's tree, in one run: when it passes each
        is recorded as passing; when not, each is run on its own to find the one that fails."""
        j = self.j
        todo = [
            w
            for w in (self.m.worker(r.id) for r in merged)
            if j.acceptance.get(f"{j.head_tree} {w.id}", {}).get("test") != w.test
        ]
        if len(todo) < 2:
            return
        if self.at != j.head:
            self._goto(j.head)
        name, label = f"final.accept.{short(j.head_tree)}", "final check"
        self.progress(f"final check: the acceptance tests of {', '.join(w.id for w in todo)}")
        run = integration.run_acceptance_together(self.paths, self.m, todo, self.wt, name, self.ticker, label)
        self.ran = True
        j.acceptance_runs += 1
        if run.exit_code != 0:
            return
        for w in todo:
            j.acceptance[f"{j.head_tree} {w.id}"] = {"test": w.test, "ok": True, "log": run.log,
                                                    "retry_log": "", **run.to_dict()}  # fmt: skip

    def _drop_breaker(self, victim: Record, breaker: Record) -> None:
        """Drop the merge that broke victim's acceptance test, go back to the head it started from,
        and merge again what came after it (in one journal save)."""
        j = self.j
        w = self.m.worker(victim.id)
        result = j.acceptance[f"{breaker.merge_tree} {victim.id}"]
        if breaker is victim:
            why = f"its acceptance test `{w.test}` {self._failed(result)} on the merged result"
        else:
            why = (
                f"its merge broke {victim.id}'s acceptance test `{w.test}`: it passes before this "
                f"merge and {self._failed(result)} after it"
            )
        position = j.queue.index(breaker.id)
        j.records = [
            x.reopened() if x.id in j.queue[position + 1 :] and x.decided and not x.broke else x
            for x in j.records
        ]
        breaker.verdict, breaker.reason = REVERTED, f"{why}; merge dropped"
        breaker.broke, breaker.merge_commit = victim.id, ""
        breaker.test_log, breaker.retry_log = result["log"], result["retry_log"]
        j.head, j.head_tree = breaker.pre, gittrees.tree_of(self.paths.repo, breaker.pre)
        j.verified, j.current = "", None
        self.save()
        _log(self.paths, REVERTED, f"merge.{breaker.id}", "revert", breaker.reason,
             breaker.retry_log or breaker.test_log)  # fmt: skip
        self.progress(f"final check: {breaker.id}: REVERTED ({breaker.reason})")
        again = [x.id for x in j.records if x.id in j.queue[position + 1 :] and not x.decided]
        if again:
            self.progress(f"final check: merging again without {breaker.id}: {' '.join(again)}")
        self._goto(j.head)

    def _goto(self, commit: str) -> None:
        """The integration worktree at commit exactly (tracked files, HEAD, branch)."""
        integration.pristine(self.wt, self.j.plan, commit)
        self.at, self.ran = commit, False

    def land(self) -> None:
        j, repo = self.j, self.paths.repo
        crash_point("land")
        target, base_ref = j.head, f"refs/heads/{j.base}"
        started = now()
        if target == j.base_start:
            j.message = j.message or f"nothing new was merged; {j.base} is unchanged"
            self.step(jr.REPORT)
            return
        _check_head(self.paths, j, landing=True)  # only the tree the final check verified lands
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
                self._landed(False, started)
                return
            if checkout is not None and not (
                git.is_clean(checkout)
                and gittrees.read_tree_update(checkout, j.base_start, target, dry_run=True)
            ):
                j.message = (
                    f"{j.base} is checked out in {checkout} with uncommitted changes (or untracked "
                    f"files in the way), so it was not touched; the tested result is on "
                    f"{j.integration_branch}: commit or stash your changes, then {how}"
                )
                self._landed(False, started)
                return
            hidden = _ignored_in_the_way(repo, checkout, j.base_start, target) if checkout else []
            if hidden:
                j.message = (
                    f"{j.base} is checked out in {checkout}, where the merged work would overwrite "
                    f"ignored files ({', '.join(hidden[:5])}), so it was not touched; the tested "
                    f"result is on {j.integration_branch}: move those files away, then {how}"
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
            if checkout is not None:  # clean, checked above: its files follow the base
                gittrees.read_tree_update(checkout, j.base_start, target)
        elif checkout is not None:
            self._finish_checkout(checkout, target)
        j.message = f"landed: {j.base} moved from {short(j.base_start)} to {short(target)} ({merged} merged)"
        self._landed(True, started)

    def _finish_checkout(self, checkout: Path, target: str) -> None:
        """Landed by an interrupted run, which may not have brought the checkout's files along."""
        if not gittrees.index_at(checkout, target) and gittrees.index_at(checkout, self.j.base_start):
            gittrees.read_tree_update(checkout, self.j.base_start, target)

    def _landed(self, landed: bool, started: str) -> None:
        self.j.landed = landed
        self.j.events.append({"name": "land" if landed else "not landed", "start": started, "end": now()})
        _log(self.paths, "MERGE", "merge", "land", self.j.message)
        j = self.j
        moved = f"{j.base} {short(j.base_start)} -> {short(j.head)}"
        self.progress(f"land: {moved}" if landed else "land: not landed (see the message below)")
        self.step(jr.REPORT)

    def report(self) -> None:
        self.j.finished_at = self.j.finished_at or now()
        written = merge_report.write(self.paths, self.m, self.j)
        _log(
            self.paths, "MERGE", "merge", "report", merge_report.counts_line(self.j), self.paths.rel(written)
        )
        self.step(jr.DONE)
