"""A group's merge: its members merged one after the other and judged as one candidate.

Workers of one group (the manifest's `group` field) land together or not at all. Their merges
start from the last tested head, which the journal records before the first of them, and go on
one after the other in dependency order; then each member's acceptance test runs on the group's
merged tree, and the integration test once, judged against that head. Only then are the members
decided, in one journal save: killed before it, the rerun goes back to the head before the group
and merges the whole group again. A member that conflicts or fails its acceptance test, or an
integration test the group breaks, drops the group whole: every member gets the verdict
(CONFLICT or REVERTED) with the evidence naming the member or the tests, and the integration
branch goes back to the head before the group. A member kept out before its merge (FAILED,
quarantined, its dependency not merged, ...) keeps the whole group out (SKIPPED).
"""

from __future__ import annotations

from boss.ceremony import candidate, integration
from boss.ceremony.session import Session, now, short
from boss.core import gittrees
from boss.core.journal import CONFLICT, MERGED, REVERTED, SKIPPED, Record


def merge_group(s: Session, name: str, label: str) -> None:
    """Merge, judge and decide the pending members of group name."""
    j = s.j
    members = [j.record(w.id) for w in s.m.groups()[name]]
    pending = [r for r in members if r.id in j.queue and not r.decided]
    ids = ", ".join(r.id for r in pending)
    why_out = _kept_out(s, name, members, pending)
    if why_out:
        for r in pending:
            r.verdict, r.reason = SKIPPED, why_out
        candidate.decided(s, pending, label)
        return
    pre = candidate.begin(s, pending[0])
    head, tree, culprit, why = _merge_members(s, name, pending, pre, label)
    verdict = CONFLICT if culprit is not None else ""
    where = f"the merged group {name} ({ids})"
    for r in pending if culprit is None else ():
        ok, why = candidate.accept(s, r, head, tree, f"{label} {r.id}", where)
        if not ok:
            culprit, verdict = r, REVERTED
            break
    if culprit is None:
        last = pending[-1]
        ok, why = candidate.integration_test(
            s, last, tree, label, f"after the group {name} ({ids}) merged", "acceptance tests pass",
            "group dropped whole",
        )  # fmt: skip
        why = why or f"the group {name} ({ids}) merged cleanly; acceptance tests pass (no integration_test)"
        for r in pending:
            r.test_log, r.retry_log, r.retried = last.test_log, last.retry_log, last.retried
            r.new_failures = list(last.new_failures)
        verdict = MERGED if ok else REVERTED
    if verdict == MERGED:
        s.proven(head, tree)
        for r in pending:
            r.verdict, r.reason = MERGED, why
    else:
        integration.reset(s.wt, pre)  # the head before the group, as the journal recorded
        s.at, s.ran = pre, False
        _dropped(pending, name, culprit, verdict, why)
    candidate.decided(s, pending, label)


def _merge_members(
    s: Session, name: str, pending: list[Record], pre: str, label: str
) -> tuple[str, str, Record | None, str]:
    """Merge the members one after the other from pre: (the last merge's commit and tree, and
    the member that conflicted with the reason, if one did)."""
    head, tree = pre, ""
    merged: list[Record] = []
    for r in pending:
        if r is not pending[0]:  # the first's start is in the journal's announcement
            r.started_at = now()
        s.progress(f"{label}: merging {r.id} of group {name}: {r.branch} ({short(r.head)})")
        ok, files, output = candidate.merge(s, r, head)
        if not ok:
            return head, tree, r, candidate.conflict(s, r, files, output, tuple(merged))
        head, tree = gittrees.commit_and_tree(s.wt, f"refs/heads/{s.j.integration_branch}", s.common)
        r.pre, r.merge_commit, r.merge_tree, s.at = pre, head, tree, head
        merged.append(r)
    return head, tree, None, ""


def _kept_out(s: Session, name: str, members: list[Record], pending: list[Record]) -> str:
    """Why the group cannot land whole before any merge ("" when it can)."""
    out = next((r for r in members if r.decided and r.verdict != MERGED), None)
    if out is not None:
        return f"its group {name} stays out whole: its member {out.id} is {out.verdict} ({out.reason})"
    among = frozenset(r.id for r in members)
    for r in pending:
        dropped = candidate.dropped_dependency(s, r, among)
        if dropped is not None:
            dep = s.j.record(dropped)
            return (
                f"its group {name} stays out whole: its member {r.id}'s dependency {dropped} "
                f"was not merged ({dep.verdict or dep.state})"
            )
    return ""


def _dropped(pending: list[Record], name: str, culprit: Record | None, verdict: str, why: str) -> None:
    """Every member's verdict and evidence when the group is dropped (because of culprit, if one)."""
    for r in pending:
        r.verdict, r.merge_commit = verdict, ""
        if culprit is None:  # the integration test: its reason names the group and the tests
            r.reason = why
        elif r is culprit:
            r.reason = f"{why}; its group {name} is dropped whole"
        else:
            r.reason = f"its group {name} is dropped whole because of its member {culprit.id}: {why}"
            r.test_log, r.retry_log = culprit.test_log, culprit.retry_log
