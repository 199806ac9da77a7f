"""What each worker spent, and the caps it may not pass (issue 16: budgets).

A worker's spend is kept in `workers/<id>/spend.json`, its ledger: one entry per agent run that
ended (where: the iteration id, agent, usage, seconds, stopped), and `live`, the usage of the run
going on now (rewritten as its CLI streams usage; a run killed with -9 leaves its last `live`,
which the next run of the worker books as an entry). The ledger outlives the worker's runs: a
rerun after a crash, run_workers.sh again and `boss retry` all count what came before. Only
`boss clean` (which removes the plan's folder) starts it over.

The caps (manifest settings, 0: no cap): a worker's `max_cost_usd`, `max_tokens` (input plus
output tokens) and `max_minutes` (the wall time of its agent runs), and the plan's `budget_usd`
(the cost of every worker's ledger together). Usage is only what the agent CLIs report (their
streamed events): a CLI that reports no cost (Codex, Gemini CLI) cannot be held to a cost cap,
and a plan or worker that sets one for it is refused before its first run (no price is guessed).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boss.core.paths import PlanPaths
from boss.core.yamlio import write_atomic

FILE = "spend.json"
MAX_BYTES = 1024 * 1024  # a ledger the worker wrote stays far below this
KEYS = ("cost_usd", "input_tokens", "output_tokens", "seconds")


MAX_VALUE = 1e15  # more dollars, tokens or seconds than this was not written by a worker


def _num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    try:
        number = float(value)
    except OverflowError:
        return 0.0
    return number if math.isfinite(number) and 0 < number <= MAX_VALUE else 0.0


def total(usages: list[dict[str, Any]]) -> dict[str, float]:
    """The sum of usages, key by key (only KEYS; anything else, or not a number, counts 0)."""
    out = dict.fromkeys(KEYS, 0.0)
    for usage in usages:
        for key in KEYS:
            out[key] += _num(usage.get(key))
    return {k: round(v, 6) for k, v in out.items()}


def tokens(usage: dict[str, Any]) -> int:
    """Input plus output tokens."""
    return int(_num(usage.get("input_tokens")) + _num(usage.get("output_tokens")))


@dataclass
class Ledger:
    """One worker's spend: the runs that ended, and the one going on (`live`)."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    live: dict[str, Any] = field(default_factory=dict)

    def spent(self) -> dict[str, float]:
        """Everything: the runs that ended and the live one."""
        return total([*(r.get("usage", {}) for r in self.runs), self.live])


def path(paths: PlanPaths, worker_id: str) -> Path:
    return paths.worker_dir(worker_id) / FILE


def read(paths: PlanPaths, worker_id: str) -> Ledger:
    """The worker's ledger; empty when there is none or it cannot be read (it is boss's own
    record: a ledger that does not parse was not written by the worker, and counts nothing)."""
    return read_file(path(paths, worker_id))


def read_file(file: Path) -> Ledger:
    """A ledger file (see read)."""
    try:
        with file.open("rb") as f:
            data = json.loads(f.read(MAX_BYTES))
    except (OSError, ValueError, RecursionError):
        return Ledger()
    if not isinstance(data, dict):
        return Ledger()
    runs, live = data.get("runs"), data.get("live")
    runs = runs if isinstance(runs, list) else []
    live = live if isinstance(live, dict) else {}
    kept = [r for r in runs if isinstance(r, dict) and isinstance(r.get("usage"), dict)]
    return Ledger(kept, dict(live))


def write(paths: PlanPaths, worker_id: str, ledger: Ledger) -> None:
    """Write the ledger atomically."""
    data = {"version": 1, "runs": ledger.runs, "live": ledger.live}
    write_atomic(path(paths, worker_id), json.dumps(data, indent=1) + "\n")


def plan_spent(paths: PlanPaths, worker_ids: list[str]) -> dict[str, float]:
    """What the plan's workers spent together (live runs included)."""
    return total([read(paths, w).spent() for w in worker_ids])


@dataclass(frozen=True)
class Caps:
    """A worker's caps and its plan's budget (0: none)."""

    cost_usd: float = 0.0
    tokens: int = 0
    minutes: float = 0.0
    plan_usd: float = 0.0

    @property
    def any(self) -> bool:
        return bool(self.cost_usd or self.tokens or self.minutes or self.plan_usd)


def money(value: float) -> str:
    """$0.52, $0.0049, $12.30."""
    return f"${value:.2f}" if value >= 1 or value == 0 or round(value, 2) == value else f"${value:.4f}"


def kilo(n: float) -> str:
    """1234 -> 1.2k tokens, 980 -> 980 tokens."""
    return f"{n / 1000:.1f}k" if n >= 1000 else f"{int(n)}"


def ran(seconds: float) -> str:
    """'42s', '4.0 minutes'."""
    return f"{seconds:.0f}s" if seconds < 60 else f"{seconds / 60:.1f} minutes"


def reached(caps: Caps, worker: dict[str, float], plan: dict[str, float] | None = None) -> str | None:
    """The cap that worker's (and its plan's) spend reached, as the start of a reason; None.

    A cap is reached at its value: spending exactly max_cost_usd leaves nothing for another run.
    """
    if caps.cost_usd and worker["cost_usd"] >= caps.cost_usd:
        return f"max_cost_usd {money(caps.cost_usd)} reached: spent {money(worker['cost_usd'])}"
    if caps.tokens and tokens(worker) >= caps.tokens:
        return f"max_tokens {caps.tokens} reached: spent {tokens(worker)} tokens"
    if caps.minutes and worker["seconds"] >= caps.minutes * 60:
        return f"max_minutes {caps.minutes:g} reached: agents ran {ran(worker['seconds'])}"
    if caps.plan_usd and plan is not None and plan["cost_usd"] >= caps.plan_usd:
        return f"plan budget_usd {money(caps.plan_usd)} spent ({money(plan['cost_usd'])})"
    return None


def describe(usage: dict[str, float], runs: int) -> str:
    """'$0.52 and 41.2k tokens in 3 agent runs (4.0 minutes)'."""
    cost = f"{money(usage['cost_usd'])} and " if usage["cost_usd"] else ""
    return (
        f"{cost}{kilo(tokens(usage))} tokens in {runs} agent run{'s' if runs != 1 else ''} "
        f"({ran(usage['seconds'])})"
    )


def table(ledger: Ledger) -> list[str]:
    """Markdown rows of what was spent on what: one per agent run, then the total."""
    rows = ["| agent run | agent | input tokens | output tokens | cost | seconds | stopped |",
            "| --- | --- | ---: | ---: | ---: | ---: | --- |"]  # fmt: skip
    for r in ledger.runs:
        u = total([r.get("usage", {})])
        cost = money(u["cost_usd"]) if "cost_usd" in r.get("usage", {}) else "not reported"
        stopped = "yes" if r.get("stopped") else ""
        rows.append(
            f"| {str(r.get('where', ''))[:60]} | {str(r.get('agent', ''))[:20]} | {int(u['input_tokens'])} "
            f"| {int(u['output_tokens'])} | {cost} | {u['seconds']:.0f} | {stopped} |"
        )
    t = ledger.spent()
    rows.append(
        f"| total | | {int(t['input_tokens'])} | {int(t['output_tokens'])} | {money(t['cost_usd'])} "
        f"| {t['seconds']:.0f} | |"
    )
    return rows
