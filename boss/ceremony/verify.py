"""The final check: every merged worker's acceptance test on the merged result, before it may land.

After the last merge, the acceptance tests not yet run on the head's tree run first in one go
(when there are two or more); when that run fails, each runs on its own. When all pass, the
journal records the head's tree as `verified`, the one tree that may land. When a worker's test
fails, it runs on each merge from the worker's own on, in order, to find the first after which it
fails: that merge is dropped (REVERTED, naming the worker it broke), the integration branch goes
back to the head it started from, and the merging step (boss/ceremony/merging.py) makes the
merges after it again.
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
    for victim in merged:
        w = s.m.worker(victim.id)
        if acceptance.result(s, w, j.head, j.head_tree, f"final check {victim.id}")["ok"]:
            continue
        later = merged[merged.index(victim) :]
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
    if len(todo) < 2:
        return
    if s.at != j.head:
        s.goto(j.head)
    name, label = f"final.accept.{short(j.head_tree)}", "final check"
    s.progress(f"final check: the acceptance tests of {', '.join(w.id for w in todo)}")
    run = integration.run_acceptance_together(s.paths, s.m, todo, s.wt, name, s.ticker, label)
    s.ran = True
    j.acceptance_runs += 1
    if run.exit_code != 0:
        return
    for w in todo:
        j.acceptance[f"{j.head_tree} {w.id}"] = {"test": w.test, "ok": True, "log": run.log,
                                                "retry_log": "", **run.to_dict()}  # fmt: skip


def drop_breaker(s: Session, victim: Record, breaker: Record) -> None:
    """Drop the merge that broke victim's acceptance test, go back to the head it started from,
    and merge again what came after it (in one journal save)."""
    j = s.j
    w = s.m.worker(victim.id)
    result = j.acceptance[f"{breaker.merge_tree} {victim.id}"]
    if breaker is victim:
        why = f"its acceptance test `{w.test}` {acceptance.failed(result)} on the merged result"
    else:
        why = (
            f"its merge broke {victim.id}'s acceptance test `{w.test}`: it passes before this "
            f"merge and {acceptance.failed(result)} after it"
        )
    position = j.queue.index(breaker.id)
    j.records = [
        x.reopened() if x.id in j.queue[position + 1 :] and x.decided and not x.broke else x
        for x in j.records
    ]
    breaker.verdict, breaker.reason = REVERTED, f"{why}; merge dropped"
    breaker.broke, breaker.merge_commit = victim.id, ""
    breaker.test_log, breaker.retry_log = result["log"], result["retry_log"]
    j.head, j.head_tree = breaker.pre, gittrees.tree_of(s.paths.repo, breaker.pre)
    j.verified, j.current = "", None
    s.save()
    log(s.paths, REVERTED, f"merge.{breaker.id}", "revert", breaker.reason,
        breaker.retry_log or breaker.test_log)  # fmt: skip
    s.progress(f"final check: {breaker.id}: REVERTED ({breaker.reason})")
    again = [x.id for x in j.records if x.id in j.queue[position + 1 :] and not x.decided]
    if again:
        s.progress(f"final check: merging again without {breaker.id}: {' '.join(again)}")
    s.goto(j.head)
