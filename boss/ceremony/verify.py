"""The final check: every merged worker's acceptance test on the merged result, before it may land.

After the last merge, the acceptance tests not yet run on the head's tree run first in one go
(when there are two or more); when that run fails, each runs on its own. When all pass, the
journal records the head's tree as `verified`, the one tree that may land. When a worker's test
fails, it runs on each merge from the worker's own on, in order, to find the first after which it
fails: that merge is dropped (REVERTED, naming the worker it broke), the integration branch goes
back to the head it started from, and the merging step (boss/ceremony/merging.py) makes the
merges after it again. A group's merges count as one (only the tree after its last was tested):
the search looks at that tree, and a group that broke a test is dropped whole.
"""

from __future__ import annotations

from boss.ceremony import acceptance, integration
from boss.ceremony.session import Session, journal_path, log, short
from boss.core import gittrees
from boss.core.errors import StateError
from boss.core.journal import REVERTED, Record, crash_point


def final_check(s: Session) -> tuple[Record, Record] | None:
    """Every merged worker's acceptance test on the head's tree: None when all pass (the
    tree is then verified, the one that may land), else (the worker whose test fails, the
    merge that broke it: the first merge after which it fails)."""
    j = s.j
    merged = s.merged()
    if j.verified == j.head_tree or not merged:
        j.verified = j.head_tree
        return None
    crash_point("verify")
    if merged[-1].merge_commit != j.head:  # pragma: no cover - the head is the last merge's
        raise StateError(f"{journal_path(s.paths)}: field head: not the last merge's commit")
    _together(s, merged)
    ends = [
        r
        for k, r in enumerate(merged)
        if not r.group or k + 1 == len(merged) or merged[k + 1].group != r.group
    ]
    for victim in merged:
        w = s.m.worker(victim.id)
        if acceptance.result(s, w, j.head, j.head_tree, f"final check {victim.id}")["ok"]:
            continue
        # each merge (a group's last) from the victim's own on, until the one after which it fails
        later = [r for r in ends if merged.index(r) >= merged.index(victim)]
        label = f"final check: the merge that broke {victim.id}'s test"
        for breaker in later[:-1]:
            if not acceptance.result(s, w, breaker.merge_commit, breaker.merge_tree, label)["ok"]:
                return victim, breaker
        return victim, later[-1]
    j.verified = j.head_tree
    s.save()
    log(s.paths, "MERGE", "merge", "verify",
        f"the acceptance tests of {len(merged)} merged worker(s) pass on {short(j.head)}")  # fmt: skip
    return None


def _together(s: Session, merged: list[Record]) -> None:
    """The acceptance tests not yet run on the head's tree, in one run: when it passes each
    is recorded as passing; when not, each is run on its own to find the one that fails."""
    j = s.j
    todo = [
        w
        for w in (s.m.worker(r.id) for r in merged)
        if j.acceptance.get(f"{j.head_tree} {w.id}", {}).get("test") != w.test
    ]
    if len(todo) < 2 or s.spec is not None:  # with slots, each has run on its own already
        return
    if s.at != j.head:
        s.goto(j.head)
    name, label = f"final.accept.{short(j.head_tree)}", "final check"
    s.progress(f"final check: the acceptance tests of {', '.join(w.id for w in todo)}")
    run = integration.run_acceptance_together(s.paths, s.m, todo, s.wt, name, s.ticker, label)
    s.ran_here()
    j.acceptance_runs += 1
    if run.exit_code != 0:
        return
    for w in todo:
        j.acceptance[f"{j.head_tree} {w.id}"] = {"test": w.test, "ok": True, "log": run.log,
                                                "retry_log": "", **run.to_dict()}  # fmt: skip


def drop_breaker(s: Session, victim: Record, breaker: Record) -> None:
    """Drop the merge that broke victim's acceptance test (breaker's, or its whole group's), go
    back to the head it started from, and merge again what came after it (in one journal save)."""
    j = s.j
    w = s.m.worker(victim.id)
    result = j.acceptance[f"{breaker.merge_tree} {victim.id}"]
    unit = [x for x in s.merged() if x.group == breaker.group] if breaker.group else [breaker]
    failed, group = acceptance.failed(result), breaker.group
    test = f"{victim.id}'s acceptance test `{w.test}`"
    if victim in unit and not group:
        why = f"its acceptance test `{w.test}` {failed} on the merged result; merge dropped"
    elif victim in unit:
        why = f"{test} {failed} on the merged result; its group {group} is dropped whole"
    elif not group:
        why = f"its merge broke {test}: it passes before this merge and {failed} after it; merge dropped"
    else:
        why = (
            f"the merge of its group {group} broke {test}: it passes before the group and {failed} "
            "after it; the group is dropped whole"
        )
    position = j.queue.index(breaker.id)
    j.records = [
        x.reopened() if x.id in j.queue[position + 1 :] and x.decided and not x.broke else x
        for x in j.records
    ]
    for x in unit:
        x.verdict, x.reason = REVERTED, why
        x.broke, x.merge_commit = victim.id, ""
        x.test_log, x.retry_log = result["log"], result["retry_log"]
    j.head, j.head_tree = breaker.pre, gittrees.tree_of(s.paths.repo, breaker.pre)
    j.verified, j.current = "", None
    s.save()
    s.replan()
    for x in unit:
        log(s.paths, REVERTED, f"merge.{x.id}", "revert", x.reason, x.retry_log or x.test_log)
        s.progress(f"final check: {x.id}: REVERTED ({x.reason})")
    again = [x.id for x in j.records if x.id in j.queue[position + 1 :] and not x.decided]
    if again:
        without = f"group {group}" if group else breaker.id
        s.progress(f"final check: merging again without {without}: {' '.join(again)}")
    s.goto(j.head)
