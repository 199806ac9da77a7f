"""Review decisions: a person's accept, reject or salvage of a quarantined worker, and drops.

One JSON file per worker in `.boss/plans/<plan>/quarantine/<ID>.json`, written by
`boss quarantine accept|reject|salvage` (boss.ceremony.quarantine), read by the ceremony's triage
and removed when the worker's definition changes (boss.plan.definitions).

A drop (`boss drop ID --reason TEXT`) dismisses a worker for good, whatever its state or branch:
`.boss/plans/<plan>/dropped/<ID>.json`, kept apart from the review decision (which it does not
replace) and removed only by `boss drop ID --undo`. Triage gives a dropped worker the verdict
DROPPED and never merges it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from boss.core import status as st
from boss.core.errors import StateError
from boss.core.paths import PlanPaths
from boss.core.yamlio import write_atomic

ACCEPT, REJECT, SALVAGE = "accept", "reject", "salvage"
Record = TypeVar("Record")


def _load(path: Path, make: type[Record], what: str, again: str) -> Record | None:
    """The record a JSON file holds; None when there is none; StateError naming the file when
    it is not one (`again`: what to do about it)."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        return make(**data)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as e:
        msg = f"{path}: not a {what} ({e}); delete it and {again}"
        raise StateError(msg) from e


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
    decision = _load(path, Decision, "review decision", f"review worker {worker_id} again")
    if decision is None:
        return None
    if decision.decision not in (ACCEPT, REJECT, SALVAGE):
        msg = f"{path}: field decision: must be accept, reject or salvage, not {decision.decision!r}"
        raise StateError(msg)
    status = st.read(paths.status(worker_id))
    if status is not None and decision.status_head and status.head_commit != decision.status_head:
        return None  # it ran again after the review: its new work is judged afresh
    return decision


DROP = "drop"


@dataclass(frozen=True)
class Drop:
    """A person's dismissal of a worker: never merged again, until undone."""

    id: str
    reason: str
    time: str
    state: str = ""  # the worker's state when it was dropped
    head: str = ""  # its branch head then ("" when it had none)
    decision: str = DROP

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def drop_path(paths: PlanPaths, worker_id: str) -> Path:
    """Where a worker's drop is kept."""
    return paths.root / "dropped" / f"{worker_id}.json"


def read_drop(paths: PlanPaths, worker_id: str) -> Drop | None:
    """A worker's drop, None when it is not dropped."""
    path = drop_path(paths, worker_id)
    drop = _load(path, Drop, "drop record", f"drop worker {worker_id} again")
    if drop is None:
        return None
    if drop.decision != DROP or not isinstance(drop.reason, str):
        msg = f"{path}: field decision: must be drop, not {drop.decision!r:.40}"
        raise StateError(msg)
    return drop


def write_drop(paths: PlanPaths, drop: Drop) -> Path:
    """Record a drop atomically; its path."""
    path = drop_path(paths, drop.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, drop.to_json())
    return path


def undo_drop(paths: PlanPaths, worker_id: str) -> Drop | None:
    """Take a drop back; the drop that was undone, None when the worker was not dropped."""
    drop = read_drop(paths, worker_id)
    if drop is not None:
        drop_path(paths, worker_id).unlink(missing_ok=True)
    return drop
