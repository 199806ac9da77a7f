"""The owner of `status.json`: its schema, atomic writer, reader and the CRASHED rule (SPEC 5)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from boss.core.errors import InputError
from boss.core.proc import pid_alive
from boss.core.yamlio import write_atomic

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
    sandbox: str = ""  # what confined its runs: `bubblewrap`, or `none: <why>` (boss.core.sandbox)
    waiting_until: str = ""  # while it waits out its provider's rate limit: when it runs the agent again
    waiting_for: str = ""  # while it waits for a slot of its provider (boss.core.limiter): the provider
    version: int = VERSION

    def to_json(self) -> str:
        """The file's text, version first."""
        # A field a line, each value by json's C encoder (indent=2 would take the pure-Python
        # one, and dataclasses.asdict deep-copies): a run writes this file a dozen times or more.
        lines = (f'  "{name}": {_ENCODE(getattr(self, name))}' for name in _ORDER)
        return "{\n" + ",\n".join(lines) + "\n}\n"

    def evolve(self, **changes: Any) -> Status:
        """A copy with changes."""
        return replace(self, **changes)


_KNOWN = {f.name for f in fields(Status)}
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode
_ORDER = ("version", *(f.name for f in fields(Status) if f.name != "version"))
_SAMPLE = Status(plan="", id="")
_KINDS: dict[str, type] = {name: type(getattr(_SAMPLE, name)) for name in _KNOWN}
_KIND_NAMES = {int: "a whole number", str: "a string", list: "a list", dict: "a mapping"}
# The worker writes a few KB; a file this large was not written by it (and is not read whole).
MAX_BYTES = 1024 * 1024


def read(path: Path) -> Status | None:
    """Read a status file; None when there is none, InputError naming it when it is not valid.

    Writes are atomic, so a file that does not parse was edited by hand: the message says so.
    """
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as e:
        msg = f"{path}: cannot read the status file: {e.strerror}"
        raise InputError(msg) from e
    if len(raw) > MAX_BYTES:
        raise _invalid(path, f"larger than {MAX_BYTES // 1024} KB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _invalid(path, f"byte {e.start}: not UTF-8 text") from e
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise _invalid(path, f"not valid JSON ({e.msg} at line {e.lineno})") from e
    except (ValueError, RecursionError) as e:  # a number too long, nesting too deep
        raise _invalid(path, f"not valid JSON ({type(e).__name__}: {str(e).split(':')[0]})") from e
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("plan"), str)
        or not isinstance(data.get("id"), str)
    ):
        raise _invalid(path, "not a status object with plan and id")
    # Unknown fields are ignored so newer writers do not break older readers.
    known = {k: v for k, v in data.items() if k in _KNOWN}
    for key, value in known.items():
        kind = _KINDS[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise _invalid(path, f"field {key}: {_show(value)} is not {_KIND_NAMES[kind]}")
    if known.get("state", PENDING) not in STATES:
        raise _invalid(path, f"field state: {_show(known['state'])} is not one of {', '.join(STATES)}")
    if not all(isinstance(v, str) for v in known.get("violations", [])):
        raise _invalid(path, "field violations: must be a list of paths")
    for name, value in known.get("usage", {}).items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _invalid(path, f"field usage.{_show(name)}: {_show(value)} is not a number")
    for key in ("pid", "child_pgid", "strategy", "iteration", "version"):
        if not 0 <= known.get(key, 0) < 2**31:
            raise _invalid(path, f"field {key}: {_show(known[key])} is out of range")
    return Status(**known)


def _show(value: Any) -> str:
    """A value for a message, cut short: the file may hold anything."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _invalid(path: Path, problem: str) -> InputError:
    return InputError(
        f"{path}: {problem}; the worker writes this file, so it was edited by hand: delete it "
        "(the worker then reads PENDING) and run the worker again"
    )


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
