"""A worker redone on the base as it is now (`boss retry ID --onto`, `boss merge --redo`).

A worker that ended CONFLICT or REVERTED in a ceremony, or FAILED, can start again from the
base branch's current commit instead of the plan's `base_commit`. That commit is kept as
`refs/boss/<plan>/<id>/onto`; every later run of the worker starts there too (while it is
newer than the plan's base commit and holds the worker's dependencies), and triage accepts a
branch that starts there. Why the worker is redone (the conflict as git sees it now, the new
failing tests of the integration run, or the last test output) is written to
`workers/<id>/redo.md` before the run: the agent reads it as its first feedback. The branch's
earlier head is kept as `refs/boss/<plan>/<id>/before-redo`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from boss.core import git, gittrees, runlog
from boss.core import journal as jr
from boss.core import status as st
from boss.core.errors import InputError, StateError
from boss.core.manifest import Manifest
from boss.core.mdtext import code, fence
from boss.core.paths import PlanPaths, integration_branch
from boss.core.yamlio import write_atomic

REDOABLE = (jr.CONFLICT, jr.REVERTED, st.FAILED)
MAX_SHOWN = 3000  # characters of one conflicted file or test log in the feedback


def onto_ref(paths: PlanPaths, worker_id: str) -> str:
    """The ref holding the base commit a redone worker starts from."""
    return f"refs/boss/{paths.plan}/{worker_id}/onto"


def before_ref(paths: PlanPaths, worker_id: str) -> str:
    """The ref keeping the branch's head from before its last redo."""
    return f"refs/boss/{paths.plan}/{worker_id}/before-redo"


def feedback_path(paths: PlanPaths, worker_id: str) -> Path:
    """`workers/<id>/redo.md`: why the worker is redone, its agent's first feedback."""
    return paths.worker_dir(worker_id) / "redo.md"


def start(paths: PlanPaths, worker_id: str, base_commit: str, dep_heads: list[str]) -> str | None:
    """The redo start of a worker: its onto commit, when it has one that holds the plan's base
    commit and every dependency head; None otherwise (it starts as the plan says)."""
    onto = git.rev(paths.repo, onto_ref(paths, worker_id))
    if onto is None:
        return None
    held = [c for c in [base_commit, *dep_heads] if c]
    return onto if all(git.is_ancestor(paths.repo, c, onto) for c in held) else None


@dataclass(frozen=True)
class Reason:
    """Why a worker is redone: the verdict it is redone from, and its agent's first feedback."""

    verdict: str
    feedback: str


def reason(paths: PlanPaths, m: Manifest, worker_id: str, onto: str, j: jr.Journal | None) -> Reason:
    """Why worker_id is redone onto `onto`: its last ceremony verdict CONFLICT or REVERTED on the
    head it still has, else its FAILED status; StateError when it is none of them."""
    w = m.worker(worker_id)
    missing = [d for d in w.depends_on if not _holds(paths, d, onto)]
    if missing:
        msg = (
            f"worker {worker_id} depends on {', '.join(missing)}, whose work is not in {onto[:10]}; "
            f"merge it first (boss merge), then redo {worker_id}"
        )
        raise StateError(msg)
    status = st.read(paths.status(worker_id))
    head = git.rev(paths.repo, f"refs/heads/{w.branch}")
    r = next((x for x in j.records if x.id == worker_id), None) if j is not None else None
    if r is not None and r.verdict in (jr.CONFLICT, jr.REVERTED) and head and r.head == head:
        if r.verdict == jr.CONFLICT:
            return Reason(jr.CONFLICT, _conflict(paths, r, onto))
        return Reason(jr.REVERTED, _reverted(paths, r))
    if status is not None and status.state == st.FAILED:
        return Reason(st.FAILED, _failed(paths, worker_id, status))
    state = status.state if status else st.PENDING
    verdict = f"; its last merge verdict is {r.verdict}" if r is not None and r.verdict else ""
    msg = (
        f"worker {worker_id} is {state}{verdict}: only a worker that ended CONFLICT or REVERTED "
        f"in `boss merge`, or FAILED, is redone with --onto (run it again with `boss retry {worker_id}`)"
    )
    raise StateError(msg)


def _holds(paths: PlanPaths, dependency: str, onto: str) -> bool:
    status = st.read(paths.status(dependency))
    head = status.head_commit if status and status.state == st.SUCCESS else ""
    return bool(head) and git.is_ancestor(paths.repo, head, onto)


def write_feedback(paths: PlanPaths, worker_id: str, why: Reason) -> Path:
    """Write why the worker is redone where its run reads it; the file."""
    path = feedback_path(paths, worker_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, why.feedback)
    return path


def read_feedback(paths: PlanPaths, worker_id: str) -> str:
    """What write_feedback wrote for the worker ("" when nothing)."""
    try:
        return feedback_path(paths, worker_id).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _tail(text: str) -> str:
    return text if len(text) <= MAX_SHOWN else "[... cut ...]\n" + text[-MAX_SHOWN:]


def _conflict(paths: PlanPaths, r: jr.Record, onto: str) -> str:
    repo = paths.repo
    tree, files = gittrees.merge_tree(repo, onto, r.head)
    who = ", ".join(r.conflict_with) or "changes made since your branch started"
    parts = [
        f"Your earlier work on this task (branch {code(r.branch)}) could not be merged: it conflicted "
        f"with {who} in {', '.join(code(f) for f in r.conflicts) or '?'} (`boss merge`: {r.reason}). "
        f"You now start again from {onto[:10]}, where that work is merged already. Do the task again "
        "on top of it: keep what is there now and add your change to it. "
        f"Your earlier attempt is the commit {code(r.head[:10])} (`git diff {onto[:10]}...{r.head[:10]}`).",
    ]
    for name in files[:10]:
        shown = git.git(repo, "cat-file", "-p", f"{tree}:{name}", check=False).stdout
        what = f"Merging your earlier attempt into {onto[:10]} conflicts in {code(name)}"
        parts.append(f"{what}:\n\n{fence(_tail(shown))}")
    return "\n\n".join(parts) + "\n"


def _reverted(paths: PlanPaths, r: jr.Record) -> str:
    parts = [
        f"Your earlier work on this task (branch {code(r.branch)}) merged but was dropped by `boss merge`: "
        f"{r.reason}. You now start again from the base as it is now. Make the change so that your "
        "acceptance test and the project's integration test both pass."
    ]
    if r.new_failures:
        shown = "\n".join(f"- {code(t)}" for t in r.new_failures[:30])
        parts.append(f"Tests that failed after your merge and passed before it:\n\n{shown}")
    log = r.retry_log or r.test_log
    if log:
        text = runlog.read(paths.root / log) if (paths.root / log).is_file() else ""
        if text.strip():
            parts.append(f"The end of that test run's output ({code(log)}):\n\n{fence(_tail(text))}")
    return "\n\n".join(parts) + "\n"


def _failed(paths: PlanPaths, worker_id: str, status: st.Status) -> str:
    parts = [
        f"Your earlier run of this task failed: {status.reason or 'no reason recorded'}. You now start "
        "again from the base as it is now."
    ]
    logs = sorted(paths.attempts(worker_id).glob("*/test.log"), key=lambda p: p.stat().st_mtime)
    if logs:
        text = runlog.read(logs[-1]).strip() or "(the test printed nothing)"
        parts.append(f"The last test output ({code(paths.rel(logs[-1]))}):\n\n{fence(_tail(text))}")
    return "\n\n".join(parts) + "\n"


def check_onto(paths: PlanPaths, m: Manifest, name: str, *, integration: bool = False) -> str:
    """The commit `--onto NAME` names ("" : the base branch now); InputError when it is not in
    the base branch's history (a worker may start only from the base), or, with `integration`
    (`boss merge --redo`), in the history of the plan's integration branch."""
    base = git.rev(paths.repo, f"refs/heads/{m.base}")
    if base is None:
        msg = f"{paths.manifest}: field base: branch {m.base!r} does not exist"
        raise InputError(msg)
    commit = git.rev(paths.repo, name) if name else base
    tips = [base] + [
        git.rev(paths.repo, f"refs/heads/{integration_branch(paths.plan)}") or base
    ] * integration
    if commit is None or not any(git.is_ancestor(paths.repo, commit, tip) for tip in tips):
        what = "names no commit" if commit is None else f"is not in the history of {m.base}"
        msg = f"--onto {name}: {what}; a worker is redone only on {m.base} (no value: {m.base} as it is now)"
        raise InputError(msg)
    return commit
