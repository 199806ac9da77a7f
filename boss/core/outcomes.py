"""Each worker's latest merge or review outcome, for `boss status` and the live progress view.

The latest ceremony's journal (`merge/journal.json`, kept after it ends) holds every worker's
verdict with the branch head it judged and the worker run it saw; a review decision
(boss.core.decisions) is a person's accept, reject or salvage. An outcome is shown only while it
is about the worker's current work: a worker that ran again, or whose branch moved since the
ceremony judged it, shows no old verdict (its new work is judged at the next `boss merge`).
"""

from __future__ import annotations

from dataclasses import dataclass

from boss.core import git
from boss.core import journal as jr
from boss.core import status as st
from boss.core.decisions import read_decision
from boss.core.errors import BossError
from boss.core.paths import PlanPaths

# Verdicts that say what a merge did; the others (FAILED, CRASHED, PENDING) repeat the run's state.
SHOWN = (jr.MERGED, jr.REVERTED, jr.CONFLICT, jr.QUARANTINED, jr.SKIPPED)
QUEUED = "QUEUED"  # queued in a ceremony still in progress, not yet judged
_REVIEWED = {"accept": "accepted", "reject": "rejected", "salvage": "salvaged"}


@dataclass(frozen=True)
class Outcome:
    """A worker's latest verdict (its ceremony's number and reason) and review decision."""

    verdict: str = ""
    reason: str = ""
    ceremony: int = 0
    review: str = ""  # accept | reject | salvage, while it is about the current work

    @property
    def text(self) -> str:
        """'MERGED', 'MERGED/salvage', 'accepted' (reviewed, not merged yet), or '-'."""
        if self.verdict and self.review:
            return f"{self.verdict}/{self.review}"
        return self.verdict or _REVIEWED.get(self.review, "") or "-"


@dataclass(frozen=True)
class Ceremony:
    """The latest ceremony, as its journal says."""

    number: int
    step: str
    started_at: str
    finished_at: str
    counts: str
    landed: bool
    message: str


def latest(paths: PlanPaths) -> tuple[jr.Journal | None, str]:
    """The latest ceremony's journal (None when there is none) and, when it cannot be read, why."""
    try:
        return jr.load(paths.journal), ""
    except BossError as e:
        return None, str(e).splitlines()[0]


def ceremony(j: jr.Journal) -> Ceremony:
    """What `boss status` says of the latest ceremony."""
    tally = {v: sum(1 for r in j.records if r.verdict == v) for v in jr.VERDICTS}
    counts = ", ".join(f"{n} {v}" for v, n in tally.items() if n) or "no workers"
    return Ceremony(j.number, j.step, j.started_at, j.finished_at, counts, j.landed, j.message)


def outcomes(
    paths: PlanPaths, statuses: dict[str, st.Status | None], j: jr.Journal | None
) -> dict[str, Outcome]:
    """Each worker's outcome (workers with none are left out)."""
    heads: dict[str, str] = {}
    if j is not None:
        try:
            heads = git.branch_heads(paths.repo)
        except BossError:
            heads = {}
    found = {}
    for worker_id, status in statuses.items():
        try:
            decision = read_decision(paths, worker_id)
        except BossError:  # `boss quarantine` and `boss merge` name the broken file
            decision = None
        verdict, reason, number = "", "", 0
        record = _record(j, worker_id)
        if j is not None and record is not None and _current(record, status, heads):
            if record.verdict in SHOWN:
                verdict, reason, number = record.verdict, record.reason, j.number
            elif not record.verdict and record.queued and j.step != jr.DONE:
                verdict, number = QUEUED, j.number
        review = decision.decision if decision is not None else ""
        if verdict or review:
            found[worker_id] = Outcome(verdict, reason, number, review)
    return found


def _record(j: jr.Journal | None, worker_id: str) -> jr.Record | None:
    if j is None:
        return None
    try:
        return j.record(worker_id)
    except KeyError:
        return None


def _current(r: jr.Record, status: st.Status | None, heads: dict[str, str]) -> bool:
    """True when the ceremony judged the worker's current work: the same run of the worker
    (its status's start time) and the head its branch still has (a branch `boss clean` removed
    after landing keeps its verdict)."""
    if status is not None and r.worker_started and status.started_at != r.worker_started:
        return False
    head = heads.get(r.branch)
    return head is None or head == r.head
