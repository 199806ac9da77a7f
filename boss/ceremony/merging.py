"""The merging step: each queued worker merged into the integration worktree and tested, one at a time.

Each merge (`git merge --no-ff` on the integration branch) starts from the last tested head,
which the journal records before the merge: killed in between, the rerun goes back to that head
and merges the worker again. The worker's acceptance test (boss/ceremony/acceptance.py) runs on
the merged candidate, then the integration test, judged against the last tested head (a red run
is made once more). A merge that fails either is dropped (REVERTED) and the branch reset to the
commit before it; a merge git cannot make is a CONFLICT, naming the merged workers that touched
the same files; a worker whose dependency was not merged is SKIPPED. After the last merge the
final check (boss/ceremony/verify.py) may drop a merge that broke an earlier worker's test,
and the merges after it are made again.
"""

from __future__ import annotations

from boss.ceremony import acceptance, integration, verify
from boss.ceremony.session import Session, log, now, short
from boss.core import git, gittrees
from boss.core import journal as jr
from boss.core.journal import CONFLICT, MERGED, REVERTED, SKIPPED, Record, crash_point

# The state-log action of each verdict the merging step gives.
_ACTIONS = {MERGED: "merge", REVERTED: "revert", CONFLICT: "conflict", SKIPPED: "skip"}


def merge_all(s: Session) -> None:
    """Merge and test every pending worker, then the final check, until it passes; on to landing."""
    j = s.j
    if not s.prepared:  # a resumed ceremony: back to the last tested head, whatever happened
        integration.prepare(s.paths, s.m, j.head)
        s.prepared, s.at = True, j.head
    total = len(j.queue)
    while True:
        for k, r in enumerate(s.pending(), total - len(s.pending()) + 1):
            label = f"[{k}/{total}] {r.id}"
            dropped = _dropped_dependency(s, r)
            if dropped is not None:
                dep = j.record(dropped)
                r.verdict = SKIPPED
                r.reason = f"its dependency {dropped} was not merged ({dep.verdict or dep.state})"
                _decided(s, r, label)
                continue
            _merge_one(s, r, label)
        broken = verify.final_check(s)
        if broken is None:
            break
        verify.drop_breaker(s, *broken)
    j.current = None
    s.step(jr.LANDING)


def _dropped_dependency(s: Session, r: Record) -> str | None:
    return next((d for d in s.m.worker(r.id).depends_on if s.j.record(d).verdict != MERGED), None)


def _announce(s: Session, r: Record) -> None:
    """Record in the journal (not yet saved) that r's merge-and-test starts from the current head."""
    r.started_at = now()
    s.j.current = {"id": r.id, "pre": s.j.head, "started": r.started_at}


def _decided(s: Session, r: Record, label: str, artifacts: str = "") -> None:
    """Save r's verdict; the same save announces the next merge, if one follows at once."""
    r.finished_at = now()
    s.j.current = None
    following = next(iter(s.pending()), None)
    if following is not None and _dropped_dependency(s, following) is None:
        _announce(s, following)
    s.save()
    log(s.paths, r.verdict, f"merge.{r.id}", _ACTIONS.get(r.verdict, "triage"), r.reason, artifacts)
    s.progress(f"{label}: {r.verdict} ({r.reason})")


def _merge_one(s: Session, r: Record, label: str) -> None:
    j, wt = s.j, s.wt
    pre = j.head
    # Saved before the merge (usually by the save of the previous verdict) and after its
    # verdict: killed in between, the rerun resets the integration branch to this `pre`
    # (the last tested head) and merges and tests the worker again.
    if j.current is None or j.current["id"] != r.id or j.current["pre"] != pre:
        _announce(s, r)
        s.save()
    if s.at != pre or s.ran:  # a test ran here: what it changed must not reach the merge
        s.goto(pre)
    s.progress(f"{label}: merging {r.branch} ({short(r.head)})")
    title = s.m.worker(r.id).title
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
            s.at, s.ran = pre, False
            _conflict(s, r, label, files, res.stderr or res.stdout)
            return
    new_head, tree = gittrees.commit_and_tree(wt, f"refs/heads/{j.integration_branch}", s.common)
    r.pre, r.merge_tree, s.at = pre, tree, new_head
    ok, why = _accept(s, r, new_head, tree, label)
    if ok:
        ok, why = _test(s, r, tree, label)
    if ok:
        s.proven(new_head, tree)
        r.verdict, r.merge_commit = MERGED, new_head
        r.reason = why
    else:
        integration.reset(wt, pre)  # the pre-merge commit the journal recorded
        s.at, s.ran = pre, False
        r.verdict, r.reason = REVERTED, why
    _decided(s, r, label, r.retry_log or r.test_log)


def _conflict(s: Session, r: Record, label: str, files: list[str], output: str) -> None:
    r.verdict, r.conflicts = CONFLICT, files
    merged = [x for x in s.j.records if x.verdict == MERGED and x.head and x.start]
    touched = gittrees.diff_names_many(s.paths.repo, [(x.start, x.head) for x in merged])
    r.conflict_with = [x.id for x, names in zip(merged, touched, strict=True) if set(names) & set(files)]
    if files:
        who = ", ".join(r.conflict_with) or f"{s.m.base} (changed since the branch started)"
        r.reason = f"conflicts with {who} in {', '.join(files)}; the merge was aborted"
    else:
        r.reason = f"git merge failed: {output.strip().splitlines()[-1] if output.strip() else '?'}"
    _decided(s, r, label)


def _accept(s: Session, r: Record, commit: str, tree: str, label: str) -> tuple[bool, str]:
    """r's own acceptance test on its merged candidate, whatever its status file says."""
    w = s.m.worker(r.id)
    result = acceptance.result(s, w, commit, tree, label)
    r.acceptance_log = result["retry_log"] or result["log"]
    if result["ok"]:
        return True, ""
    r.test_log, r.retry_log = result["log"], result["retry_log"]
    failed = acceptance.failed(result)
    log(s.paths, "MERGING", f"merge.{r.id}", "accept", f"fail: {failed}", r.acceptance_log)
    return False, (
        f"its acceptance test `{w.test}` {failed} on the merged candidate, "
        "whatever its status says; merge dropped"
    )


def _test(s: Session, r: Record, tree: str, label: str) -> tuple[bool, str]:
    """Judge the merged tree against the last tested head: a cached result for a tree tested
    before, else run (and retry)."""
    j, m = s.j, s.m
    if not m.integration_test.strip():
        return True, "merged cleanly, its acceptance test passes (no integration_test to run)"
    reference = integration.Run.from_dict(j.tested.get(j.head_tree) or j.baseline)
    if tree in j.tested:
        first = integration.Run.from_dict(j.tested[tree])
        verdict = integration.judge(m, first, reference)
        r.test_log = first.log
        return verdict.ok, f"same tree as a run already judged: {verdict.reason}"
    s.progress(f"{label}: testing")
    first = integration.run_test(s.paths, m, s.wt, r.id, s.ticker, label)
    s.ran = True
    crash_point("test", r.id)
    j.test_runs += 1
    r.test_log = first.log
    verdict = integration.judge(m, first, reference)
    final, decisive = first, verdict
    if not verdict.ok:  # a green run's line is the MERGED verdict's
        log(s.paths, "MERGING", f"merge.{r.id}", "test", f"fail: {verdict.reason}", first.log)
        s.progress(f"{label}: red ({verdict.reason}); running it once more")
        integration.pristine(s.wt, j.plan, s.at)
        final = integration.run_test(s.paths, m, s.wt, f"{r.id}.retry", s.ticker, label)
        j.test_runs += 1
        r.retry_log = final.log
        decisive = integration.judge(m, final, reference)
        log(s.paths, "MERGING", f"merge.{r.id}", "retry",
            f"{'pass' if decisive.ok else 'fail'}: {decisive.reason}", final.log)  # fmt: skip
        r.retried = decisive.ok
    j.tested[tree] = final.to_dict()
    if decisive.ok and r.retried:
        return True, f"passed on retry: the first run {verdict.reason} (flaky?); acceptance test passes"
    if decisive.ok:
        return True, f"integration test {decisive.reason} after the merge; acceptance test passes"
    r.new_failures = decisive.new_failures
    return False, f"the integration test {decisive.reason} after the merge (twice); merge dropped"
