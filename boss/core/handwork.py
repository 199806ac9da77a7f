"""Commits boss did not make on a worker's branch: a person's work, never discarded unasked.

Boss knows the commits it made on a worker's branch from its own records: the head the worker's
status names (its last commit), the head a review decision names (a salvage commit), and the
ref `refs/boss/<plan>/<ID>/head`, which the worker moves to the branch's start when it (re)makes
the branch and to the head it leaves at the end of every run. Every commit reachable from the
branch but from none of these is by hand: the ceremony queues it as a candidate
(boss.ceremony.triage) and the worker, `boss retry` and `boss clean` refuse to discard it
without `--discard`.

A worker whose records are all gone (its status removed, no head ref) falls back on its start
ref: everything after the start is then counted as not boss's, which asks once too often
rather than losing a person's commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from boss.core import git
from boss.core import status as st
from boss.core.decisions import read_decision
from boss.core.errors import BossError, StateError
from boss.core.paths import PlanPaths
from boss.core.worktrees import start_ref

# How many hand commits a message lists before "and N more".
SHOWN = 5


@dataclass(frozen=True)
class Commit:
    """One commit: its hash and the first line of its message."""

    sha: str
    subject: str

    def line(self) -> str:
        return f"{self.sha[:10]} {self.subject}"


def head_ref(paths: PlanPaths, worker_id: str) -> str:
    """The ref holding the last commit boss left on a worker's branch."""
    return f"refs/boss/{paths.plan}/{worker_id}/head"


def record_head(paths: PlanPaths, worker_id: str, commit: str) -> None:
    """Remember commit as boss's own on the worker's branch (with everything before it)."""
    git.update_ref(paths.repo, head_ref(paths, worker_id), commit)


def boss_heads(paths: PlanPaths, worker_id: str) -> list[str]:
    """The commits boss's records name as its own last ones on the worker's branch."""
    found: list[str] = []
    try:
        status = st.read(paths.status(worker_id))
    except BossError:
        status = None  # an unreadable status proves nothing: the refs still do
    if status is not None and status.head_commit:
        found.append(status.head_commit)
    try:
        decision = read_decision(paths, worker_id)
    except BossError:
        decision = None
    if decision is not None:
        found += [c for c in (decision.head, decision.previous_head) if c]
    refs = git.ref_commits(paths.repo, [head_ref(paths, worker_id), start_ref(paths, worker_id)])
    if head_ref(paths, worker_id) in refs:
        found.append(refs[head_ref(paths, worker_id)])
    elif not found and start_ref(paths, worker_id) in refs:
        found.append(refs[start_ref(paths, worker_id)])
    return list(dict.fromkeys(found))


def commits_beyond(repo: Path, head: str, known: list[str]) -> list[Commit]:
    """Commits reachable from head but from none of known, newest first."""
    # Names of commits git no longer has (a record older than a gc) cannot exclude anything.
    present = [c for c in known if git.rev(repo, c)]
    if not present:
        return []
    res = git.git(repo, "log", "-z", "--format=%H%x00%s", head, "--not", *present, "--")
    fields = res.stdout.split("\0")
    out = []
    for i in range(0, len(fields) - 1, 2):
        sha = fields[i].strip()
        if sha:
            out.append(Commit(sha, fields[i + 1]))
    return out


def hand_commits(paths: PlanPaths, worker_id: str, branch: str, landed: str = "") -> list[Commit]:
    """The commits on the worker's branch that boss did not make (none when there is no branch,
    or no record of the worker at all: a branch it never made is foreign, not its); with
    `landed` (the base's head), those already in it are left out: nothing of them is lost."""
    head = git.rev(paths.repo, f"refs/heads/{branch}")
    if head is None:
        return []
    known = boss_heads(paths, worker_id)
    if not known:
        return []
    return commits_beyond(paths.repo, head, [*known, landed] if landed else known)


def listed(commits: list[Commit]) -> str:
    """'abc1234567 fix the parser; def... (and 3 more)' for a message."""
    shown = "; ".join(c.line() for c in commits[:SHOWN])
    more = len(commits) - SHOWN
    return shown + (f" (and {more} more)" if more > 0 else "")


def counted(n: int) -> str:
    """'1 commit', '3 commits'."""
    return f"{n} commit{'' if n == 1 else 's'}"


def refuse_discard(paths: PlanPaths, worker_id: str, branch: str, doing: str) -> None:
    """StateError when the worker's branch holds commits boss did not make; doing is what
    would reset the branch and lose them ('the retry')."""
    commits = hand_commits(paths, worker_id, branch)
    if not commits:
        return
    msg = (
        f"worker {worker_id}: branch {branch} holds {counted(len(commits))} boss did not make "
        f"({listed(commits)}); {doing} would reset the branch to its start and lose them: land them "
        f"with `boss merge {paths.plan}`, or add --discard to drop them"
    )
    raise StateError(msg)
