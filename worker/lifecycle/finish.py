"""The end of a run whose test passed: its work committed on the worker's branch, then the branch
checked against the worker's scope (SUCCESS, or SCOPE_VIOLATION naming the files outside it)."""

from __future__ import annotations

from boss.core import git, scope
from boss.core import status as st
from worker.lifecycle.session import Run, short


def finish(run: Run, iid: str) -> str:
    """Commit the passing work, check the branch's scope, and end the run; its end state."""
    rec, w, wt = run.rec, run.w, run.wt
    head = git.commit_all(
        wt.path, f"{w.id}: {w.title}\n\nboss worker, plan {run.paths.plan}, iteration {run.iteration}"
    )
    head = head or git.head(wt.path)
    rec.event(iid, "commit", short(head), head_commit=head)
    run.paths.blocker(w.id).unlink(missing_ok=True)  # an earlier run's report: this one finished
    found = scope.branch_problems(run.paths.repo, wt.start, head, w.scope)
    if found:
        violations, said = list(found), scope.described(found)
        rec.event(iid, "scope", "violation: " + ", ".join(said), violations=violations)
        shown = ", ".join(said[:5]) + (f" and {len(said) - 5} more" if len(said) > 5 else "")
        return rec.end(st.SCOPE_VIOLATION, f"changed files outside its scope: {shown}")
    rec.event(iid, "scope", "ok")
    return rec.end(st.SUCCESS, "")
