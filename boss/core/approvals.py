"""TIER 3 approval requests: one JSON file per request in `.boss/plans/<plan>/approvals/`.

The guard records a request when it blocks a command; a person approves or denies it with
`boss approve|deny REQ`; an approved request lets exactly that command (same worker, same
text) through once, and is then `used`. A denied command is refused again without a new
request. Every change happens under the folder's lock, so concurrent guards never share an id.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from boss.core.errors import InputError
from boss.core.lock import locked

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the guard 3 ms
if TYPE_CHECKING:
    from collections.abc import Collection
    from contextlib import AbstractContextManager

PENDING, APPROVED, DENIED, USED = "pending", "approved", "denied", "used"
STATUSES = (PENDING, APPROVED, DENIED, USED)


def now_iso() -> str:
    """The current UTC time as 2026-11-25T10:00:00Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class Request:
    """One approval request."""

    id: str
    plan: str
    worker: str
    command: str
    reason: str
    rule: str = ""
    tier: int = 3
    cwd: str = ""
    created_at: str = ""
    status: str = PENDING
    decided_at: str = ""
    decision_reason: str = ""
    used_at: str = ""

    @property
    def number(self) -> int:
        """The numeric part of the id (R12 -> 12)."""
        return int(self.id[1:]) if self.id[1:].isdigit() else 0

    def to_json(self) -> dict[str, object]:
        """The request as stored and as `boss approvals --json` prints it."""
        return asdict(self)


def _path(folder: Path, req_id: str) -> Path:
    return folder / f"{req_id}.json"


def _lock(folder: Path) -> AbstractContextManager[None]:
    busy = f"{folder}: could not lock the approvals folder for 30s (a stuck process holds .lock?)"
    return locked(folder / ".lock", 30, busy)


def _read(path: Path) -> Request | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    known = {f.name for f in fields(Request)}
    try:
        return Request(**{k: v for k, v in data.items() if k in known})
    except TypeError:
        return None


def _own(folder: Path, req_id: str) -> Request | None:
    """The request R<number> of the folder, when its file holds that id; else None."""
    if not (req_id[:1] == "R" and req_id[1:].isdigit()):
        return None
    req = _read(_path(folder, req_id))
    return req if req is not None and req.id == req_id else None


def _write(folder: Path, req: Request) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = _path(folder, req.id)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(req.to_json(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def list_requests(folder: Path, status: str | None = None) -> list[Request]:
    """Every request in the folder (of one status when given), oldest first."""
    if not folder.is_dir():
        return []
    found = [r for p in folder.glob("R*.json") if (r := _read(p)) is not None]
    return sorted((r for r in found if status is None or r.status == status), key=lambda r: r.number)


def load(folder: Path, req_id: str) -> Request:
    """The request with this id; InputError naming the folder when there is none."""
    req = _read(_path(folder, req_id)) if req_id.startswith("R") else None
    if req is None:
        pending = ", ".join(r.id for r in list_requests(folder, PENDING)) or "none"
        msg = f"{folder}: no approval request {req_id!r} (pending: {pending})"
        raise InputError(msg)
    return req


def request(
    folder: Path,
    *,
    plan: str,
    worker: str,
    command: str,
    reason: str,
    rule: str,
    tier: int = 3,
    cwd: str = "",
) -> Request:
    """Record a pending request (or return the pending one for the same worker and command)."""
    return request_new(folder, plan=plan, worker=worker, command=command, reason=reason, rule=rule,
                       tier=tier, cwd=cwd)[0]  # fmt: skip


def request_new(
    folder: Path, *, plan: str, worker: str, command: str, reason: str, rule: str, tier: int = 3,
    cwd: str = "",
) -> tuple[Request, bool]:  # fmt: skip
    """request(), and whether the request is new (False: the same one was already pending)."""
    folder.mkdir(parents=True, exist_ok=True)
    with _lock(folder):
        existing = list_requests(folder)
        for req in existing:
            if req.status == PENDING and req.worker == worker and req.command == command:
                return req, False
        number = max((r.number for r in existing), default=0) + 1
        req = Request(f"R{number}", plan, worker, command, reason, rule, tier, cwd, now_iso())
        _write(folder, req)
        return req, True


def consume(folder: Path, worker: str, command: str) -> Request | None:
    """Use up the oldest approved request for exactly this command; None when there is none."""
    if not folder.is_dir():
        return None
    with _lock(folder):
        for req in list_requests(folder, APPROVED):
            if req.worker == worker and req.command == command:
                used = replace(req, status=USED, used_at=now_iso())
                _write(folder, used)
                return used
    return None


def denied(folder: Path, worker: str, command: str) -> Request | None:
    """The latest denied request for exactly this command, if a person refused it."""
    matches = [r for r in list_requests(folder, DENIED) if r.worker == worker and r.command == command]
    return matches[-1] if matches else None


def decide(folder: Path, req_id: str, *, approve: bool, reason: str = "") -> Request:
    """Approve or deny a request that has not been used yet."""
    with _lock(folder):
        req = load(folder, req_id)
        if req.status == USED:
            msg = f"{_path(folder, req_id)}: request {req_id} was already used at {req.used_at}"
            raise InputError(msg)
        status = APPROVED if approve else DENIED
        decided = replace(req, status=status, decided_at=now_iso(), decision_reason=reason)
        _write(folder, decided)
        return decided


def adopt(folder: Path, req: Request, *, skip: Collection[str] = ()) -> Request:
    """Record a request another machine's guard made (a worker on a cluster node): pending,
    whatever it says; the one already here when it was seen before (same id, worker and command,
    whatever was decided since) or is pending for the same worker and command, unless its id is
    in skip (it stands for another of that machine's requests); else under its own id when that
    is free here, else under the next number."""
    folder.mkdir(parents=True, exist_ok=True)
    with _lock(folder):
        existing = list_requests(folder)
        for have in existing:
            same = have.worker == req.worker and have.command == req.command and have.id not in skip
            if same and (have.id == req.id or have.status == PENDING):  # seen before (maybe decided)
                return have
        taken = {r.id for r in existing} | {p.stem for p in folder.glob("R*.json")}
        number = req.number if req.id == f"R{req.number}" and req.id not in taken and req.number > 0 else 0
        number = number or max((r.number for r in existing), default=0) + 1
        fresh = Request(f"R{number}", req.plan, req.worker, req.command, req.reason, req.rule, req.tier,
                        req.cwd, req.created_at or now_iso())  # fmt: skip
        _write(folder, fresh)
        return fresh


def use(folder: Path, req_id: str, worker: str, command: str) -> Request | None:
    """Use up request req_id, approved here for exactly this worker and command, because another
    machine ran the command on it (a worker on a cluster node); None when it is not such a one."""
    with _lock(folder):
        req = _own(folder, req_id)
        if req is None or (req.status, req.worker, req.command) != (APPROVED, worker, command):
            return None
        used = replace(req, status=USED, used_at=now_iso())
        _write(folder, used)
        return used


def settle(folder: Path, decided: Request, ids: Collection[str]) -> list[Request]:
    """Take a decision made on another machine (the Boss's, for a worker running on a cluster
    node) into this folder: each request of ids for the same worker and command gets its status
    (approved or denied), its time and its reason, except one already used here. The ones changed."""
    if decided.status not in (APPROVED, DENIED) or not folder.is_dir():
        return []
    changed = []
    with _lock(folder):
        for req_id in sorted(set(ids)):
            req = _own(folder, req_id)
            if req is None or (req.worker, req.command) != (decided.worker, decided.command):
                continue  # not the request the decision is about
            if req.status in (USED, decided.status):
                continue  # a used request stays used: the decision cannot run it again
            now = replace(req, status=decided.status, decided_at=decided.decided_at,
                          decision_reason=decided.decision_reason)  # fmt: skip
            _write(folder, now)
            changed.append(now)
    return changed


def parse(data: bytes) -> Request | None:
    """A request file's bytes as a Request; None when they are not one (every field checked)."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(raw, dict):
        return None
    kinds = {f.name: (int if f.name == "tier" else str) for f in fields(Request)}
    known = {k: v for k, v in raw.items() if k in kinds}
    if not all(type(v) is kinds[k] for k, v in known.items()):
        return None
    try:
        return Request(**known)
    except TypeError:
        return None
