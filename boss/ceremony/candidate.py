"""One merge candidate in the integration worktree: the merge, its conflicts, its tests, its verdict.

The merging step (boss/ceremony/merging.py) makes one worker's merge a candidate; a group's
(boss/ceremony/grouping.py) makes the merges of all its members one candidate. Both merge with
`merge`, explain a merge git cannot make with `conflict`, judge the candidate with `accept`
(a worker's acceptance test) and `integration` (the integration test, against the last tested
head), and save verdicts with `decided`, whose save also announces the next merge.
"""

from __future__ import annotations

from boss.ceremony import acceptance, integration
from boss.ceremony.session import Session, log, now
from boss.core import gittrees
from boss.core.journal import CONFLICT, MERGED, REVERTED, SKIPPED, Record, crash_point

# The state-log action of each verdict the merging step gives.
ACTIONS = {MERGED: "merge", REVERTED: "revert", CONFLICT: "conflict", SKIPPED: "skip"}


def announce(s: Session, r: Record) -> None:
    """Record in the journal (not yet saved) that r's merge-and-test starts from the current head."""
    r.started_at = now()
    s.j.current = {"id": r.id, "pre": s.j.head, "started": r.started_at}


def begin(s: Session, r: Record) -> str:
    """Start r's merge-and-test (a group's: its first member's) from the last tested head: the
    journal names that head before the merge, so a rerun killed after it goes back there; the
    worktree at it, clean. The head, returned."""
    j = s.j
    pre = j.head
    # Saved before the merge (usually by the save of the previous verdict) and after its
    # verdict: killed in between, the rerun resets the integration branch to this `pre`
    # (the last tested head) and merges and tests again.
    if j.current is None or j.current["id"] != r.id or j.current["pre"] != pre:
        announce(s, r)
        s.save()
    if s.at != pre or s.ran:  # a test ran here: what it changed must not reach the merge
        s.goto(pre)
    return pre


def dropped_dependency(s: Session, r: Record, among: frozenset[str] = frozenset()) -> str | None:
    """A dependency of r (outside `among`, the ids merged with it) that was not merged."""
    deps = (d for d in s.m.worker(r.id).depends_on if d not in among)
    return next((d for d in deps if s.j.record(d).verdict != MERGED), None)


def decided(s: Session, rs: list[Record], label: str) -> None:
    """Save the verdicts of rs; the same save announces the next merge, if one follows at once."""
    for r in rs:
        r.finished_at = now()
    s.j.current = None
    following = next(iter(s.pending()), None)
    if following is not None and dropped_dependency(s, following) is None:
        announce(s, following)
    s.save()
    s.replan()
    for r in rs:
        artifacts = r.retry_log or r.test_log if r.verdict != CONFLICT else ""
        log(s.paths, r.verdict, f"merge.{r.id}", ACTIONS.get(r.verdict, "triage"), r.reason, artifacts)
        s.progress(f"{label if len(rs) == 1 else f'{label} {r.id}'}: {r.verdict} ({r.reason})")


def merge(s: Session, r: Record, pre: str) -> tuple[bool, list[str], str]:
    """Merge r's head into the integration worktree: (merged, the conflicting files, git's
    output). When it fails, the worktree is back at pre, the commit it was merged onto."""
    wt = s.wt
    title = s.m.worker(r.id).title
    message = f"boss: merge {r.id} ({title})\n\nPlan {s.j.plan}, branch {r.branch}."
    res = gittrees.merge_no_ff(wt, r.head, message)
    crash_point("merge", r.id)
    if res.returncode == 0:
        return True, [], ""
    files = gittrees.unmerged_paths(wt)
    integration.reset(wt, pre)
    if not files:  # not a conflict: something left in the worktree was in the way (reset removed it)
        res = gittrees.merge_no_ff(wt, r.head, message)
        files = gittrees.unmerged_paths(wt) if res.returncode else []
        if res.returncode:
            integration.reset(wt, pre)
    s.at, s.ran = pre, False
    return res.returncode == 0, files, res.stderr or res.stdout


def conflict(s: Session, r: Record, files: list[str], output: str, also: tuple[Record, ...] = ()) -> str:
    """r's merge git could not make: its CONFLICT evidence on r, and the reason, naming the
    merged workers (and those of `also`, merged before it in its group) that changed the files."""
    r.verdict, r.conflicts = CONFLICT, files
    merged = [x for x in [*s.j.records, *also] if (x.verdict == MERGED or x in also) and x.head and x.start]
    touched = gittrees.diff_names_many(s.paths.repo, [(x.start, x.head) for x in merged])
    r.conflict_with = [x.id for x, names in zip(merged, touched, strict=True) if set(names) & set(files)]
    if files:
        who = ", ".join(r.conflict_with) or f"{s.m.base} (changed since the branch started)"
        return f"conflicts with {who} in {', '.join(files)}; the merge was aborted"
    return f"git merge failed: {output.strip().splitlines()[-1] if output.strip() else '?'}"


def accept(s: Session, r: Record, commit: str, tree: str, label: str, where: str) -> tuple[bool, str]:
    """r's own acceptance test on the candidate (`where`, in words), whatever its status file says."""
    w = s.m.worker(r.id)
    result = acceptance.result(s, w, commit, tree, label)
    r.acceptance_log = result["retry_log"] or result["log"]
    if result["ok"]:
        return True, ""
    r.test_log, r.retry_log = result["log"], result["retry_log"]
    failed = acceptance.failed(result)
    log(s.paths, "MERGING", f"merge.{r.id}", "accept", f"fail: {failed}", r.acceptance_log)
    return False, f"its acceptance test `{w.test}` {failed} on {where}, whatever its status says"


def integration_test(
    s: Session, r: Record, tree: str, label: str, after: str, passed: str, dropped: str
) -> tuple[bool, str]:
    """Judge the candidate's tree against the last tested head: a cached result for a tree
    tested before, else run (and retry); the evidence on r. The reason says what ran `after`,
    then `passed` or `dropped`; "" when the plan has no integration test."""
    j, m = s.j, s.m
    if not m.integration_test.strip():
        return True, ""
    reference = integration.Run.from_dict(j.tested.get(j.head_tree) or j.baseline)
    if tree in j.tested:
        first = integration.Run.from_dict(j.tested[tree])
        verdict = integration.judge(m, first, reference)
        r.test_log = first.log
        r.new_failures = verdict.new_failures
        return verdict.ok, f"same tree as a run already judged: {verdict.reason}"
    s.progress(f"{label}: testing")
    if s.spec is not None:
        first = s.spec.fetch("int", tree, "", 1, s.at, label)
    else:
        first = integration.run_test(s.paths, m, s.wt, r.id, s.ticker, label)
        s.ran_here()
    crash_point("test", r.id)
    j.test_runs += 1
    r.test_log = first.log
    verdict = integration.judge(m, first, reference)
    final, decisive = first, verdict
    if not verdict.ok:  # a green run's line is the MERGED verdict's
        log(s.paths, "MERGING", f"merge.{r.id}", "test", f"fail: {verdict.reason}", first.log)
        s.progress(f"{label}: red ({verdict.reason}); running it once more")
        if s.spec is not None:
            final = s.spec.fetch("int", tree, "", 2, s.at, label)
        else:
            integration.pristine(s.wt, j.plan, s.at)
            final = integration.run_test(s.paths, m, s.wt, f"{r.id}.retry", s.ticker, label)
            s.ran_here()
        j.test_runs += 1
        r.retry_log = final.log
        decisive = integration.judge(m, final, reference)
        log(s.paths, "MERGING", f"merge.{r.id}", "retry",
            f"{'pass' if decisive.ok else 'fail'}: {decisive.reason}", final.log)  # fmt: skip
        r.retried = decisive.ok
    j.tested[tree] = final.to_dict()
    if decisive.ok and r.retried:
        return True, f"passed on retry: the first run {verdict.reason} (flaky?); {passed}"
    if decisive.ok:
        return True, f"integration test {decisive.reason} {after}; {passed}"
    r.new_failures = decisive.new_failures
    return False, f"the integration test {decisive.reason} {after} (twice); {dropped}"
