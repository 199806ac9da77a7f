"""What the pages show, read from the plan's files as the CLI reads them (nothing is written)."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boss.core import approvals as ap
from boss.core import journal as jr
from boss.core import statelog
from boss.core import status as st
from boss.core.config import Config
from boss.core.decisions import read_decision, read_drop
from boss.core.errors import BossError
from boss.core.manifest import Manifest
from boss.core.outcomes import Ceremony, ceremony, latest
from boss.core.paths import PlanPaths
from boss.core.spend import money
from boss.core.statusview import Row, counts, duration, plan_spent, rows

TAIL_BYTES = 64 * 1024  # of an agent's log: its last part is what a person watches
MAX_SHOWN = 256 * 1024  # of a test log, a report, a diff: more is cut, with a note


def read_text(path: Path, limit: int = MAX_SHOWN, tail: bool = False) -> str:
    """A file's text for a page (its end when tail), cut at limit bytes; '' when absent."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - limit) if tail else 0)
            data = f.read(limit)
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    if size > limit:
        cut = f"[… {size - limit} bytes not shown …]"
        return f"{cut}\n{text.split(chr(10), 1)[-1]}" if tail else f"{text}\n{cut}"
    return text


def spend(r: Row) -> str:
    """'$0.42, 12,300 tokens': the worker's ledger (every agent run, as boss status's SPENT)."""
    spent = r.spent or r.usage
    parts = []
    if cost := float(spent.get("cost_usd") or 0):
        parts.append(money(cost))
    if tokens := int(float(spent.get("input_tokens") or 0) + float(spent.get("output_tokens") or 0)):
        parts.append(f"{tokens:,} tokens")
    return ", ".join(parts) or "-"


def event_text(r: Row) -> str:
    """The last-event column: a rate-limit wait says until when."""
    if r.waiting_until:
        return f"waiting for the provider's rate limit until {r.waiting_until}"
    return r.last_event or r.reason


@dataclass
class PlanView:
    """The plan page: counts, workers, graph layers, pending approvals, the latest ceremony."""

    paths: PlanPaths
    m: Manifest
    rows: list[Row]
    counts: str
    approvals: list[ap.Request]
    ceremony: Ceremony | None
    ceremony_problem: str
    dropped: dict[str, str]
    layers: list[list[str]] = field(default_factory=list)
    spent: str = ""  # the plan's spend against its budget_usd (boss status's line)


def layers(m: Manifest) -> list[list[str]]:
    """Workers by depth: a worker sits one layer below its deepest dependency."""
    depth: dict[str, int] = {}
    for w in m.order():
        depth[w.id] = 1 + max((depth.get(d, 0) for d in w.depends_on), default=-1)
    out: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for w in m.workers:
        out[depth[w.id]].append(w.id)
    return out


def pending(paths: PlanPaths) -> list[ap.Request]:
    """Every approval request nobody decided yet, oldest first."""
    return ap.list_requests(paths.approvals_dir, ap.PENDING)


def plan_view(paths: PlanPaths, m: Manifest, config: Config) -> PlanView:
    j, problem = latest(paths)
    current = rows(paths, m, config, j)
    dropped = {}
    for w in m.workers:
        with contextlib.suppress(BossError):
            if (d := read_drop(paths, w.id)) is not None:
                dropped[w.id] = d.reason
    return PlanView(
        paths, m, current, counts(current), pending(paths), ceremony(j) if j else None, problem, dropped,
        layers(m), plan_spent(m, current),
    )  # fmt: skip


@dataclass(frozen=True)
class Iteration:
    """One iteration of a worker, from its state-log lines."""

    id: str
    start: str
    end: str
    outcome: str  # pass, fail, blocked, ... (the last test or end result)
    events: list[statelog.Event]


def iterations(events: list[statelog.Event]) -> list[Iteration]:
    """The worker's events grouped by iteration (`W1.s1.i2`), in order."""
    groups: dict[str, list[statelog.Event]] = {}
    for e in events:
        if e.iteration_id.count(".") == 2 and ".s" in e.iteration_id:
            groups.setdefault(e.iteration_id, []).append(e)
    found = []
    for iid, evs in groups.items():
        tests = [e.result.split(" ", 1)[0] for e in evs if e.action == "test"]
        found.append(Iteration(iid, evs[0].time, evs[-1].time, tests[-1] if tests else evs[-1].action, evs))
    return found


@dataclass
class WorkerView:
    """The worker page."""

    paths: PlanPaths
    id: str
    title: str
    scope: list[str]
    row: Row | None
    status: st.Status | None
    status_problem: str
    events: list[statelog.Event]
    iterations: list[Iteration]
    agent_log: str
    agent_log_name: str
    tests: list[tuple[str, str]]  # (attempt folder, test output)
    diff: list[tuple[str, str]]  # (kind, line): kind is head, file, out, in-diff, out-diff
    diff_problem: str
    blocker: str
    quarantined: bool
    decision: str
    dropped: str
    approvals: list[ap.Request]
    requests: list[ap.Request]  # every approval request of the worker, decided or not


def latest_agent_log(paths: PlanPaths, worker_id: str) -> Path | None:
    """The agent log written last (the running attempt's, while it runs)."""
    logs = list(paths.attempts(worker_id).glob("*/agent.log"))
    return max(logs, key=_mtime) if logs else None


def _mtime(path: Path) -> int:
    """Its modification time; -1 when it is gone (a `boss retry --fresh` removing attempts while
    the page renders)."""
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1


def _diff(paths: PlanPaths, m: Manifest, worker_id: str) -> tuple[list[tuple[str, str]], str]:
    from boss.core import changes

    try:
        c = changes.of_worker(paths, m, worker_id)
    except BossError as e:
        return [], str(e)
    lines: list[tuple[str, str]] = [("head", changes.summary(c))]
    lines += [("out" if "OUT OF SCOPE" in s else "file", s) for s in changes.stat_lines(c)]
    for kind, names in (("in-diff", c.in_scope), ("out-diff", c.out_of_scope)):
        text = changes.patch(paths, c, names)
        if len(text) > MAX_SHOWN:
            text = (
                text[:MAX_SHOWN] + f"\n[… cut at {MAX_SHOWN // 1024} KB: boss diff {worker_id} shows all …]"
            )
        if text:
            title = "in scope" if kind == "in-diff" else "OUT OF SCOPE (merged only if accepted at review)"
            lines.append(("head", f"=== {title}: {len(names)} file(s) ==="))
            lines += [(kind, s) for s in text.rstrip("\n").split("\n")]
    return lines, ""


def worker_view(paths: PlanPaths, m: Manifest, config: Config, worker_id: str) -> WorkerView:
    w = m.worker(worker_id)  # an unknown id: InputError naming the plan's workers
    problem, status = "", None
    try:
        status = st.read(paths.status(w.id))
    except BossError as e:
        problem = str(e)
    row = next((r for r in rows(paths, m, config) if r.id == w.id), None)
    events = [e for e in statelog.read(paths.log) if e.worker == w.id]
    log = latest_agent_log(paths, w.id)
    tests = [
        (p.parent.name, read_text(p, 32 * 1024, tail=True))
        for p in sorted(paths.attempts(w.id).glob("*/test.log"), key=_mtime)
    ]
    diff, diff_problem = _diff(paths, m, w.id)
    decision, dropped = "", ""
    with contextlib.suppress(BossError):
        d = read_decision(paths, w.id)
        decision = f"{d.decision} ({d.reason})" if d else ""
    with contextlib.suppress(BossError):
        dr = read_drop(paths, w.id)
        dropped = dr.reason if dr else ""
    return WorkerView(
        paths, w.id, w.title, list(w.scope), row, status, problem, events, iterations(events),
        read_text(log, TAIL_BYTES, tail=True) if log else "", paths.rel(log) if log else "",
        tests, diff, diff_problem, read_text(paths.blocker(w.id)),
        bool(row and row.verdict == "QUARANTINED"), decision, dropped,
        [r for r in pending(paths) if r.worker == w.id],
        [r for r in ap.list_requests(paths.approvals_dir) if r.worker == w.id],
    )  # fmt: skip


@dataclass
class CeremonyView:
    """The ceremony page: the latest (or running) ceremony, and every report in the history."""

    paths: PlanPaths
    journal: jr.Journal | None
    problem: str
    summary: Ceremony | None
    history: list[int]  # the numbers of the ceremonies with a report, newest first
    quarantined: list[Any]
    approvals: list[ap.Request]


def ceremony_view(paths: PlanPaths, m: Manifest, config: Config) -> CeremonyView:
    from boss.ceremony import quarantine

    j, problem = latest(paths)
    history = [
        n for n in reversed(paths.ceremony_numbers()) if (paths.ceremony_dir(n) / "REPORT.md").is_file()
    ]
    try:
        found = quarantine.items(paths, m, config)
    except BossError:
        found = []
    return CeremonyView(paths, j, problem, ceremony(j) if j else None, history, found, pending(paths))


def report_text(paths: PlanPaths, number: int) -> str:
    """Ceremony number's REPORT.md ('' when there is none); 0: the latest's."""
    where = paths.ceremony_dir(number) if number else paths.merge_dir
    return read_text(where / "REPORT.md")


def elapsed(r: Row) -> str:
    return duration(r.elapsed) if r.elapsed or r.state not in (st.PENDING, "CORRUPT") else "-"
