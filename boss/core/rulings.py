"""A person's rulings, as `boss approve|deny|drop` and `boss ui` make them (one code path):
each changes its record under that record's rules (and lock) and appends its state-log line."""

from __future__ import annotations

from dataclasses import dataclass

from boss.core import approvals as ap
from boss.core import decisions, git, statelog
from boss.core import status as st
from boss.core.config import Config
from boss.core.errors import InputError
from boss.core.manifest import Manifest
from boss.core.paths import PlanPaths


def decide(paths: PlanPaths, request_id: str, reason: str, *, approve: bool) -> ap.Request:
    """Approve or deny request_id (boss.core.approvals.decide) and log it against its worker."""
    req = ap.decide(paths.approvals_dir, request_id, approve=approve, reason=reason)
    verb = "approved" if approve else "denied"
    status = st.read(paths.status(req.worker))
    note = f" ({reason})" if reason else ""
    statelog.append(
        paths.log,
        statelog.Event(
            st.now_iso(), status.state if status else st.PENDING, req.worker,
            "approve" if approve else "deny", f"{verb} {req.id}: {req.command}{note}",
            f"approvals/{req.id}.json",
        ),
    )  # fmt: skip
    return req


@dataclass(frozen=True)
class Dropped:
    """What a drop did: the record and where it is kept."""

    record: decisions.Drop
    path: str


def drop(paths: PlanPaths, m: Manifest, config: Config, worker_id: str, reason: str) -> Dropped:
    """Dismiss worker_id for good (boss.core.decisions), with its state and head now."""
    w = m.worker(worker_id)  # an unknown id fails here, naming the plan's workers
    status = st.read(paths.status(w.id))
    state = st.effective_state(status, config.heartbeat_stale)
    head = git.rev(paths.repo, f"refs/heads/{w.branch}") or ""
    record = decisions.Drop(w.id, reason.strip(), st.now_iso(), state, head)
    path = paths.rel(decisions.write_drop(paths, record))
    _log(paths, w.id, "drop", record.reason, path)
    return Dropped(record, path)


def undrop(paths: PlanPaths, m: Manifest, worker_id: str) -> None:
    """Take worker_id's drop back; InputError when it is not dropped."""
    w = m.worker(worker_id)
    if decisions.undo_drop(paths, w.id) is None:
        msg = f"plan {paths.plan}: worker {w.id} is not dropped; nothing to undo"
        raise InputError(msg)
    _log(paths, w.id, "undrop", "drop taken back", "")


def _log(paths: PlanPaths, worker_id: str, action: str, result: str, artifacts: str) -> None:
    event = statelog.Event(st.now_iso(), "DROPPED", f"merge.{worker_id}", action, result, artifacts)
    statelog.append(paths.log, event)
