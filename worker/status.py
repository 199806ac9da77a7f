"""The owner of `status.json`: its schema, atomic writer, reader and the CRASHED rule (SPEC 5)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from boss.proc import pid_alive
from boss.yamlio import write_atomic

VERSION = 1
PENDING, WAITING, RUNNING = "PENDING", "WAITING", "RUNNING"
SUCCESS, FAILED, SCOPE_VIOLATION, SKIPPED = "SUCCESS", "FAILED", "SCOPE_VIOLATION", "SKIPPED"
CRASHED = "CRASHED"  # derived by readers, never written
STATES = (PENDING, WAITING, RUNNING, SUCCESS, FAILED, SCOPE_VIOLATION, SKIPPED)
FINAL = (SUCCESS, FAILED, SCOPE_VIOLATION, SKIPPED)


def now_iso() -> str:
    """The current UTC time as 2026-11-25T10:00:00Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime | None:
    """Parse now_iso()'s format; None when empty or malformed."""
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Status:
    """One worker's status file."""

    plan: str
    id: str
    state: str = PENDING
    branch: str = ""
    worktree: str = ""
    start_commit: str = ""
    head_commit: str = ""
    pid: int = 0
    heartbeat: str = ""
    started_at: str = ""
    finished_at: str = ""
    strategy: int = 0
    iteration: int = 0
    reason: str = ""
    violations: list[str] = field(default_factory=list)
    red: dict[str, Any] = field(default_factory=dict)
    green: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    last_event: str = ""
    child_pgid: int = 0  # process group of the agent or test running now (0: none)
    version: int = VERSION

    def to_json(self) -> str:
        """The file's text, version first."""
        data = asdict(self)
        ordered = {"version": data.pop("version"), **data}
        return json.dumps(ordered, indent=2, ensure_ascii=False) + "\n"

    def evolve(self, **changes: Any) -> Status:
        """A copy with changes."""
        return replace(self, **changes)


_KNOWN = {f.name for f in fields(Status)}


def read(path: Path) -> Status | None:
    """Read a status file; None when it does not exist or cannot be parsed (a torn file cannot
    happen with atomic writes, so unparseable means someone edited it)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or "plan" not in data or "id" not in data:
        return None
    # Unknown fields are ignored so newer writers do not break older readers.
    return Status(**{k: v for k, v in data.items() if k in _KNOWN})


def write(path: Path, status: Status) -> None:
    """Write a status file atomically."""
    write_atomic(path, status.to_json())


def effective_state(status: Status | None, stale_after: float, now: datetime | None = None) -> str:
    """The state to believe: RUNNING with a dead process or a stale heartbeat is CRASHED."""
    if status is None:
        return PENDING
    if status.state != RUNNING:
        return status.state
    if status.pid and not pid_alive(status.pid):
        return CRASHED
    beat = parse_iso(status.heartbeat)
    current = now or datetime.now(UTC)
    if beat is not None and (current - beat).total_seconds() > stale_after:
        return CRASHED
    return RUNNING
