"""A worker's acceptance test on a merged tree, as the ceremony runs and records it.

The test is the worker's `test` in the manifest boss holds, never a copy on a branch. Its result
on a tree is kept in the journal under "<tree> <worker id>", so it runs once per tree (again only
when the test changed): the merging step (boss/ceremony/merging.py) runs a worker's test on its
own merge (a group member's on its group's: boss/ceremony/grouping.py), and the final check
(boss/ceremony/verify.py) on the result and, to find the merge that broke one, on earlier
merges. A red run is made once more from a clean tree before it
counts as failing.
"""

from __future__ import annotations

from typing import Any

from boss.ceremony import integration
from boss.ceremony.session import Session, short
from boss.core.journal import crash_point
from boss.core.manifest import Worker


def result(s: Session, w: Worker, commit: str, tree: str, label: str) -> dict[str, Any]:
    """Worker w's acceptance test on tree (commit's): the journal's result, else run (and,
    when red, once more) with the worktree at commit; recorded in the journal, which the
    verdict it leads to saves (killed before that, the run is made again)."""
    j, key = s.j, f"{tree} {w.id}"
    known = j.acceptance.get(key)
    if known is not None and known.get("test") == w.test:
        return known
    if s.at != commit and s.spec is None:
        s.goto(commit)
    name = f"{w.id}.accept.{short(tree)}"
    s.progress(f"{label}: acceptance test of {w.id}")
    if s.spec is not None:
        first = s.spec.fetch("acc", tree, w.id, 1, commit, label)
    else:
        first = integration.run_acceptance(s.paths, s.m, w, s.wt, name, s.ticker, label)
        s.ran_here()
    crash_point("accept", w.id)
    j.acceptance_runs += 1
    outcome = {"test": w.test, "ok": first.exit_code == 0, "log": first.log, "retry_log": "",
               **{k: v for k, v in first.to_dict().items() if k != "log"}}  # fmt: skip
    if not outcome["ok"]:  # red: once more, from a clean tree (a flaky test?)
        if s.spec is not None:
            final = s.spec.fetch("acc", tree, w.id, 2, commit, label)
        else:
            integration.pristine(s.wt, j.plan, commit)
            final = integration.run_acceptance(s.paths, s.m, w, s.wt, f"{name}.retry", s.ticker, label)
            s.ran_here()
        j.acceptance_runs += 1
        outcome.update(ok=final.exit_code == 0, retry_log=final.log, retried=final.exit_code == 0,
                       exit_code=final.exit_code, timed_out=final.timed_out)  # fmt: skip
    j.acceptance[key] = outcome  # saved with the verdict it leads to
    return outcome


def failed(outcome: dict[str, Any]) -> str:
    """How an acceptance run failed, in words."""
    if outcome.get("timed_out"):
        return "timed out"
    return f"fails (exit {outcome.get('exit_code')}, twice)"
