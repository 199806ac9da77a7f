"""Review decisions: a person's accept, reject or salvage of a quarantined worker.

One JSON file per worker in `.boss/plans/<plan>/quarantine/<ID>.json`, written by
`boss quarantine accept|reject|salvage` (boss.ceremony.quarantine), read by the ceremony's triage
and removed when the worker's definition changes (boss.plan.definitions).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from boss.core import status as st
from boss.core.errors import StateError
from boss.core.paths import PlanPaths

ACCEPT, REJECT, SALVAGE = "accept", "reject", "salvage"


@dataclass(frozen=True)
class Decision:
    """A person's review of a quarantined worker."""

    id: str
    decision: str  # accept | reject | salvage
    reason: str
    time: str
    start: str  # the commit its scope is judged from
    head: str  # the branch head the decision is about (for salvage: the new commit)
    previous_head: str = ""  # salvage: the head before the out-of-scope changes were dropped
    out_of_scope: list[str] = field(default_factory=list)
    status_head: str = ""  # the head the worker's status named at review; another one makes it stale

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def decision_path(paths: PlanPaths, worker_id: str) -> Path:
    """Where a worker's review decision is kept."""
    return paths.root / "quarantine" / f"{worker_id}.json"


def read_decision(paths: PlanPaths, worker_id: str) -> Decision | None:
    """A worker's review decision, None when there is none (or when the worker ran again since)."""
    path = decision_path(paths, worker_id)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        decision = Decision(**data)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as e:
        msg = f"{path}: not a review decision ({e}); delete it and review worker {worker_id} again"
        raise StateError(msg) from e
    if decision.decision not in (ACCEPT, REJECT, SALVAGE):
        msg = f"{path}: field decision: must be accept, reject or salvage, not {decision.decision!r}"
        raise StateError(msg)
    status = st.read(paths.status(worker_id))
    if status is not None and decision.status_head and status.head_commit != decision.status_head:
        return None  # it ran again after the review: its new work is judged afresh
    return decision
