"""The merging step: each queued worker (or group) merged into the integration worktree and tested.

Each merge (`git merge --no-ff` on the integration branch) starts from the last tested head,
which the journal records before the merge: killed in between, the rerun goes back to that head
and merges the worker again. The worker's acceptance test (boss/ceremony/acceptance.py) runs on
the merged candidate, then the integration test, judged against the last tested head (a red run
is made once more). A merge that fails either is dropped (REVERTED) and the branch reset to the
commit before it; a merge git cannot make is a CONFLICT, naming the merged workers that touched
the same files; a worker whose dependency was not merged is SKIPPED. The members of a group
are merged one after the other and judged as one candidate (boss/ceremony/grouping.py). After
the last merge the final check (boss/ceremony/verify.py) may drop a merge (or a group) that
broke an earlier worker's test, and the merges after it are made again.
"""

from __future__ import annotations

from boss.ceremony import candidate, grouping, integration, verify
from boss.ceremony.session import Session, short
from boss.core import gittrees
from boss.core import journal as jr
from boss.core.journal import MERGED, REVERTED, SKIPPED, Record


def merge_all(s: Session) -> None:
    """Merge and test every pending worker, then the final check, until it passes; on to landing."""
    j = s.j
    if not s.prepared:  # a resumed ceremony: back to the last tested head, whatever happened
        integration.prepare(s.paths, s.m, j.head, not s.elsewhere)
        s.prepared, s.at = True, j.head
    for x in j.records:  # the group each worker is merged with (the manifest boss holds)
        x.group = s.m.worker(x.id).group
    s.replan()  # with slots: what is pending now (a resumed ceremony, or a redo round's merges)
    total = len(j.queue)
    while True:
        while pending := s.pending():
            r = pending[0]
            label = f"[{total - len(pending) + 1}/{total}] {r.id}"
            if r.group:
                grouping.merge_group(s, r.group, label)
                continue
            dropped = candidate.dropped_dependency(s, r)
            if dropped is not None:
                dep = j.record(dropped)
                r.verdict = SKIPPED
                r.reason = f"its dependency {dropped} was not merged ({dep.verdict or dep.state})"
                candidate.decided(s, [r], label)
                continue
            _merge_one(s, r, label)
        broken = verify.final_check(s)
        if broken is None:
            break
        verify.drop_breaker(s, *broken)
    j.current = None
    s.step(jr.LANDING)


def _merge_one(s: Session, r: Record, label: str) -> None:
    j = s.j
    pre = candidate.begin(s, r)
    s.progress(f"{label}: merging {r.branch} ({short(r.head)})")
    ok, files, output = candidate.merge(s, r, pre)
    if not ok:
        r.reason = candidate.conflict(s, r, files, output)
        candidate.decided(s, [r], label)
        return
    new_head, tree = gittrees.commit_and_tree(s.wt, f"refs/heads/{j.integration_branch}", s.common)
    r.pre, r.merge_tree, s.at = pre, tree, new_head
    ok, why = candidate.accept(s, r, new_head, tree, label, "the merged candidate")
    why = f"{why}; merge dropped" if not ok else why
    if ok:
        ok, why = candidate.integration_test(
            s, r, tree, label, "after the merge", "acceptance test passes", "merge dropped"
        )
        why = why or "merged cleanly, its acceptance test passes (no integration_test to run)"
    if ok:
        s.proven(new_head, tree)
        r.verdict, r.merge_commit = MERGED, new_head
        r.reason = why
    else:
        integration.reset(s.wt, pre)  # the pre-merge commit the journal recorded
        s.at, s.ran = pre, False
        r.verdict, r.reason = REVERTED, why
    candidate.decided(s, [r], label)
