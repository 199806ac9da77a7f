"""A worker's budget held while its agent runs (boss.core.spend keeps the ledger and the caps).

Before each agent run (`before_run`) the worker's spend and its plan's are checked against the
caps: a cap already reached starts no agent run (BudgetReached). While the agent runs, a
`Follower` sees its output as it comes (boss.core.proc.run_group's `follow`, from the log's pump
thread): on every line that may carry usage it reads the usage so far with the profile's own
reader, writes it to the ledger's `live` (at most every LIVE_EVERY seconds, and always when a cap
is crossed) and, when the worker's spend (earlier runs plus this one) or the plan's reaches a
cap, halts the run: run_group stops the agent's process group at once, the way agent_timeout
does. `max_minutes` cuts the run at what is left of it (its timeout). After the run, `book`
moves it from `live` to the ledger's runs. A halted run ends the worker FAILED (action
`budget`) with a reason naming the cap, a blocker report of what was spent on what
(`write_report`); nothing of the run is committed, the worktree keeps what it had.

Usage is what the CLI's own events say: an agent that lies in its own output cannot lower it,
because the readers only read the CLI's machine format (see the notes on trust in the README).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from boss.core import spend
from boss.core import status as st
from boss.core.errors import BossError, InputError
from boss.core.manifest import Manifest, Settings, Worker
from boss.core.paths import PlanPaths
from boss.core.proc import Outcome
from boss.core.yamlio import write_atomic
from worker.agents.profile import AgentProfile, AgentRun
from worker.agents.registry import PROFILES
from worker.lifecycle.recorder import Recorder
from worker.lifecycle.session import Run

LIVE_EVERY = 0.5  # seconds between writes of the live spend
PLAN_EVERY = 1.0  # seconds between reads of the other workers' ledgers
FINAL_EVENTS = ("result", "turn.completed")  # the last event of a run, in the CLIs' JSON streams
MAX_LINE = 4 * 1024 * 1024  # bytes: a longer line is no usage event boss reads
SECONDS_EVERY = 5.0  # seconds between writes of the live seconds when no usage comes
# Lines that may carry usage, in any CLI's output (cheap to test; the profile's reader judges).
_MARKS = (b"usage", b"cost", b"tokens", b"stats", b"step_finish", b"turn.completed")


class BudgetReached(BossError):
    """A worker's cap, or its plan's budget, was reached."""


def caps(settings: Settings) -> spend.Caps:
    """The caps of a worker's settings."""
    return spend.Caps(settings.max_cost_usd, settings.max_tokens, settings.max_minutes, settings.budget_usd)


def check_costs(paths: PlanPaths, m: Manifest, ids: list[str]) -> None:
    """Refuse a cost cap on a worker whose CLI reports no cost: one line naming file and field."""
    for w in m.workers:
        s = m.settings(w)
        profile = PROFILES.get(s.agent)
        if (ids and w.id not in ids) or profile is None or profile.reports_cost:
            continue
        field = "max_cost_usd" if s.max_cost_usd else "budget_usd" if s.budget_usd else ""
        if field:
            msg = (
                f"{paths.manifest}: worker {w.id} field {field}: the {s.agent} CLI reports tokens, "
                "not money, so boss cannot hold a cost cap on it (it guesses no price): use max_tokens"
            )
            raise InputError(msg)


def settle(paths: PlanPaths, worker_id: str) -> spend.Ledger:
    """The worker's ledger, with what a killed run left `live` booked as a run of its own."""
    ledger = spend.read(paths, worker_id)
    if ledger.live:
        ledger.runs.append({"where": "a run killed before it was booked", "agent": "", "usage": ledger.live})
        ledger.live = {}
        spend.write(paths, worker_id, ledger)
    return ledger


def refuse_spent(paths: PlanPaths, m: Manifest, w: Worker) -> str | None:
    """Why no agent run of w may start now (a cap reached), as a whole reason; None."""
    c = caps(m.settings(w))
    if not c.any:
        return None
    ledger = settle(paths, w.id)
    plan = spend.plan_spent(paths, [x.id for x in m.workers]) if c.plan_usd else None
    why = spend.reached(c, ledger.spent(), plan)
    if why is None:
        return None
    return f"{why}: no new agent run started"


def seconds_left(settings: Settings, ledger: spend.Ledger) -> float | None:
    """What max_minutes leaves of agent time; None without that cap."""
    if not settings.max_minutes:
        return None
    return max(settings.max_minutes * 60 - ledger.spent()["seconds"], 0.0)


def cost_left(settings: Settings, ledger: spend.Ledger, plan: dict[str, float] | None) -> float | None:
    """What the cost caps leave (worker's and plan's, the smaller); None without either."""
    left = []
    if settings.max_cost_usd:
        left.append(settings.max_cost_usd - ledger.spent()["cost_usd"])
    if settings.budget_usd and plan is not None:
        left.append(settings.budget_usd - plan["cost_usd"])
    return max(min(left), 0.0) if left else None


def at_least(before: dict[str, Any], read: dict[str, Any]) -> dict[str, Any]:
    """read, never below what was seen before, key by key: a later line (forged, or a CLI's
    total that leaves a stopped message out) cannot take spend back."""
    out = {**before, **read}
    for key, value in before.items():
        if isinstance(value, int | float) and isinstance(out[key], int | float):
            out[key] = max(value, out[key])
    return out


class Follower:
    """Follows one agent run's streamed usage; `__call__` is run_group's `follow`."""

    def __init__(
        self, paths: PlanPaths, m: Manifest, w: Worker, profile: AgentProfile, agent_run: AgentRun
    ) -> None:
        self.paths, self.w, self.profile, self.agent_run = paths, w, profile, agent_run
        self.caps = caps(m.settings(w))
        self.others = [x.id for x in m.workers if x.id != w.id]
        self.ledger = settle(paths, w.id)
        self.before = self.ledger.spent()
        self.started = time.monotonic()
        self.usage: dict[str, Any] = {}
        self.reason: str | None = None
        self.events = 0  # lines that carried usage
        self._parts: list[bytes] = []  # the line going on, in pieces
        self._size = 0
        self._lines: list[str] = []
        self._written = 0.0
        self._plan: dict[str, float] | None = None
        self._plan_at = 0.0
        self._lock = threading.Lock()

    def __call__(self, data: bytes) -> bool:
        """See a chunk of output; True when a cap is reached (the run is to be stopped).

        Cheap on a flood: a chunk is searched whole for the marks (in C) before any line is
        split; a line longer than MAX_LINE carries no usage boss reads, and is dropped unjoined.
        """
        end = data.rfind(b"\n")
        if end < 0:
            if self._size <= MAX_LINE:
                self._parts.append(data)
            self._size += len(data)
            return self._tick()
        head, rest = data[:end], data[end + 1 :]
        if self._size > MAX_LINE:  # the end of an overlong line: dropped
            cut = head.find(b"\n")
            head = b"" if cut < 0 else head[cut + 1 :]
        elif self._parts:
            head = b"".join([*self._parts, head])
        self._parts, self._size = ([rest], len(rest)) if rest else ([], 0)
        low = head.lower()
        if not any(mark in low for mark in _MARKS):
            return self._tick()
        marked = (
            x.decode("utf-8", "replace") for x in head.split(b"\n") if any(m in x.lower() for m in _MARKS)
        )
        fresh = [x for x in marked if self.profile.usage(x)]  # only what carries usage is kept
        if not fresh:
            return self._tick()
        self._lines += fresh
        usage = at_least(self.usage, self.profile.run_usage(self.agent_run, "\n".join(self._lines)))
        if usage == self.usage:
            return False
        self.events += 1
        self.usage = usage
        return self.check()

    def ended(self) -> bool:
        """True when the last usage the CLI printed was its final event (Claude Code's and Gemini
        CLI's `result`, Codex's `turn.completed`): the run was over, stopped or not."""
        try:
            last = json.loads(self._lines[-1]) if self._lines else None
        except ValueError:
            return False
        return isinstance(last, dict) and last.get("type") in FINAL_EVENTS

    def _tick(self) -> bool:
        # Output without usage still moves the clock: a run killed with -9 leaves its seconds.
        return time.monotonic() - self._written >= SECONDS_EVERY and self.check()

    def live(self) -> dict[str, float]:
        """This run's usage so far, its seconds included."""
        return spend.total([{**self.usage, "seconds": time.monotonic() - self.started}])

    def check(self) -> bool:
        """Write the live spend (throttled) and judge the caps; True when one is reached."""
        live = self.live()
        spent = spend.total([self.before, live])
        plan = None
        if self.caps.plan_usd:
            now = time.monotonic()
            if self._plan is None or now - self._plan_at >= PLAN_EVERY:
                self._plan, self._plan_at = spend.plan_spent(self.paths, self.others), now
            plan = spend.total([self._plan, spent])
        why = spend.reached(self.caps, spent, plan)
        with self._lock:
            if why is not None:
                self.reason = why
            if why is not None or time.monotonic() - self._written >= LIVE_EVERY:
                self.ledger.live = live
                spend.write(self.paths, self.w.id, self.ledger)
                self._written = time.monotonic()
        return why is not None

    def book(self, where: str, usage: dict[str, Any], seconds: float, stopped: bool) -> spend.Ledger:
        """Move the run from `live` to the ledger's runs, with its usage as read at its end."""
        with self._lock:
            entry = {
                "where": where,
                "agent": self.profile.name,
                "usage": {**at_least(self.usage, usage), "seconds": round(seconds, 3)},
            }
            self.ledger.runs.append({**entry, "stopped": stopped})
            self.ledger.live = {}
            spend.write(self.paths, self.w.id, self.ledger)
            return self.ledger


def stopped_reason(why: str, ledger: spend.Ledger, agent: str, iteration: int) -> str:
    """The reason a worker ends with when its run was halted at a cap."""
    spent = spend.describe(ledger.spent(), len(ledger.runs))
    return (
        f"{why}; the worker's spend: {spent}; stopped the {agent} run of iteration {iteration}; "
        "nothing of it was committed"
    )


def write_report(
    path: Path, worker_id: str, title: str, reason: str, ledger: spend.Ledger, plan: str
) -> None:
    """BLOCKER_REPORT.md of a worker stopped by a cap: what was spent, on what, and what to do."""
    text = "\n".join([
        f"# Blocker report: {worker_id} ({title})", "",
        "The worker was stopped by its budget, not by its code.", "",
        f"**Why:** {reason}", "",
        "## What was spent, on what", "",
        *spend.table(ledger), "",
        "## What to do", "",
        "The worktree keeps what the agent did; nothing of the stopped run is committed. To let the",
        f"worker spend more, raise its cap in the manifest (`max_cost_usd`, `max_tokens`, `max_minutes`,"
        f" or the plan's `budget_usd`), then `boss retry {worker_id} --plan {plan}`: what it spent so"
        " far still counts.", "",
    ])  # fmt: skip
    write_atomic(path, text)


def timeout(settings: Settings, ledger: spend.Ledger) -> tuple[float | None, bool]:
    """The agent run's timeout (agent_timeout, or what max_minutes leaves when that is less),
    and whether max_minutes set it."""
    agent = float(settings.agent_timeout) or None
    left = seconds_left(settings, ledger)
    if left is not None and (agent is None or left < agent):
        return max(left, 0.001), True
    return agent, False


def claude_cap(run: Run, ledger: spend.Ledger, argv: list[str]) -> float | None:
    """Claude Code's own cap: `--max-budget-usd` with what the cost caps leave (put into argv)."""
    if run.profile.name != "claude":
        return None
    s = run.settings
    plan = spend.plan_spent(run.paths, [w.id for w in run.m.workers]) if s.budget_usd else None
    left = cost_left(s, ledger, plan)
    if left is None:
        return None
    argv[1:1] = ["--max-budget-usd", f"{max(left, 0.0001):.4f}"]
    return left


def stop_reason(
    follower: Follower, outcome: Outcome, cut: bool, claude: float | None, output: str
) -> str | None:
    """Why the run was stopped at a cap (the follower halted it, max_minutes cut it, or Claude
    stopped at its --max-budget-usd); None when it was not (it ended by itself)."""
    if follower.reason is not None and outcome.halted and not follower.ended():
        return follower.reason
    # A run that ended by itself at the event that reached a cap (its last) did its work: the
    # test judges it, and the next agent run is the one refused.
    spent = spend.total([follower.before, {**follower.usage, "seconds": outcome.elapsed}])
    if cut and outcome.timed_out:
        return spend.reached(follower.caps, spent) or f"max_minutes {follower.caps.minutes:g} reached"
    if claude is not None and '"error_max_budget_usd"' in output:
        own = f"the claude CLI stopped at its --max-budget-usd {claude:.4f}"
        return follower.reason or spend.reached(follower.caps, spent) or own
    return None


def plan_refusal(paths: PlanPaths, m: Manifest) -> str | None:
    """Why the plan starts no new worker (its budget_usd spent), as a whole reason; None."""
    cap = float(m.defaults.get("budget_usd") or 0)
    if not cap:
        return None
    plan = spend.plan_spent(paths, [w.id for w in m.workers])
    why = spend.reached(spend.Caps(plan_usd=cap), spend.total([]), plan)
    return f"{why}: no new agent run started" if why else None


def refuse_start(paths: PlanPaths, m: Manifest, worker_id: str, why: str) -> None:
    """Record a worker the pool does not start because the plan's budget is spent: FAILED (action
    `budget`), with a report of what it spent before (worker.lifecycle.pool)."""
    w = m.worker(worker_id)
    write_report(paths.blocker(w.id), w.id, w.title, why, settle(paths, w.id), paths.plan)
    rec = Recorder(paths, w.id, st.Status(plan=paths.plan, id=w.id, branch=w.branch))
    rec.end(st.FAILED, f"{why}; see {paths.rel(paths.blocker(w.id))}", action="budget")
