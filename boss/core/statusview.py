"""One row per worker, as `boss status`, the live progress of run_workers.sh and the demo show it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from boss.core import spend
from boss.core import status as st
from boss.core.config import Config
from boss.core.errors import InputError
from boss.core.journal import Journal
from boss.core.manifest import Manifest
from boss.core.outcomes import Outcome, ceremony, latest, outcomes
from boss.core.paths import PlanPaths

COLORS = {
    "SUCCESS": "green",
    "FAILED": "red",
    "CRASHED": "red",
    "SCOPE_VIOLATION": "magenta",
    "SKIPPED": "yellow",
    "RUNNING": "cyan",
    "WAITING": "blue",
    "PENDING": "white",
    "CORRUPT": "red",
    # merge and review outcomes (boss.core.outcomes)
    "MERGED": "green",
    "REVERTED": "red",
    "CONFLICT": "red",
    "QUARANTINED": "magenta",
    "QUEUED": "cyan",
}
# The state shown for a worker whose status file cannot be read; its reason says why.
CORRUPT = "CORRUPT"


@dataclass(frozen=True)
class Row:
    """What one worker looks like now."""

    id: str
    state: str
    strategy: int
    iteration: int
    elapsed: float
    branch: str
    last_event: str
    reason: str
    usage: dict[str, float]
    sandbox: str = ""  # what confined its runs (status.json), '' before it started
    # Its latest merge or review outcome while about its current work (boss.core.outcomes).
    verdict: str = ""  # MERGED, REVERTED, CONFLICT, QUARANTINED, SKIPPED, QUEUED or ''
    verdict_reason: str = ""
    ceremony: int = 0  # the number of the ceremony that gave the verdict
    review: str = ""  # accept, reject, salvage or ''
    waiting_until: str = ""  # a RUNNING worker waiting out its provider's rate limit: until when
    waiting_for: str = ""  # a RUNNING worker waiting for a slot of its provider: the provider
    spent: dict[str, float] = field(default_factory=dict)  # its ledger, every run (boss.core.spend)

    @property
    def outcome(self) -> str:
        """The MERGE column: 'REVERTED', 'MERGED/salvage', 'rejected', '-'."""
        return Outcome(self.verdict, self.verdict_reason, self.ceremony, self.review).text

    @property
    def progress(self) -> str:
        return f"s{self.strategy}/i{self.iteration}" if self.iteration else "-"

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "outcome": self.outcome}


def _elapsed(status: st.Status | None, now: datetime) -> float:
    if status is None:
        return 0.0
    start = st.parse_iso(status.started_at)
    end = st.parse_iso(status.finished_at) if status.state in st.FINAL else None
    if start is None:
        return 0.0
    if end is None and status.state != st.RUNNING:
        end = st.parse_iso(status.heartbeat) or start
    return max(0.0, ((end or now) - start).total_seconds())


def rows(paths: PlanPaths, m: Manifest, config: Config, j: Journal | None = None) -> list[Row]:
    """The current row of every worker, in manifest order, with its latest outcome (from j, the
    latest ceremony's journal, read here when not given)."""
    now = datetime.now(UTC)
    result = []
    statuses: dict[str, st.Status | None] = {}
    for w in m.workers:
        try:
            statuses[w.id] = st.read(paths.status(w.id))
        except InputError as e:  # one unreadable file: that worker shows it, the others still read
            where = str(paths.status(w.id))
            reason = paths.rel(paths.status(w.id)) + str(e).removeprefix(where)
            result.append(Row(w.id, CORRUPT, 0, 0, 0.0, w.branch, "", reason, {}))
    found = outcomes(paths, statuses, j if j is not None else latest(paths)[0])
    for w in m.workers:
        if w.id not in statuses:
            continue
        status, o = statuses[w.id], found.get(w.id, Outcome())
        state = st.effective_state(status, config.heartbeat_stale, now)
        result.append(
            Row(
                id=w.id,
                state=state,
                strategy=status.strategy if status else 0,
                iteration=status.iteration if status else 0,
                elapsed=_elapsed(status, now),
                branch=w.branch,
                last_event=status.last_event if status else "",
                reason=status.reason if status else "",
                usage=dict(status.usage) if status else {},
                sandbox=status.sandbox if status else "",
                verdict=o.verdict,
                verdict_reason=o.reason,
                ceremony=o.ceremony,
                review=o.review,
                waiting_until=status.waiting_until if status and state == st.RUNNING else "",
                waiting_for=status.waiting_for if status and state == st.RUNNING else "",
                spent=spend.read(paths, w.id).spent(),
            )
        )
    order = {w.id: n for n, w in enumerate(m.workers)}
    return sorted(result, key=lambda r: order[r.id])


def corrupt(paths: PlanPaths, all_rows: Sequence[Row]) -> list[str]:
    """One line per worker whose status file cannot be read: the file (from the repository)
    and the problem, for an `Error:` line."""
    try:
        root = paths.root.relative_to(paths.repo).as_posix() + "/"
    except ValueError:  # pragma: no cover - a plan folder is below its repository
        root = f"{paths.root}/"
    return [root + r.reason for r in all_rows if r.state == CORRUPT]


def duration(seconds: float) -> str:
    """12s, 3m04s, 1h02m."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


@dataclass(frozen=True)
class Columns:
    """Widths of the table's id and branch columns, fitted to a plan's rows."""

    id: int = 10
    branch: int = 28
    outcome: int = 5  # the header, MERGE

    @classmethod
    def fit(cls, all_rows: Sequence[Row]) -> Columns:
        """Wide enough for every id, branch and outcome (branches cut at MAX_BRANCH, outcomes
        at MAX_OUTCOME, with an ellipsis)."""
        ids = max((len(r.id) for r in all_rows), default=0)
        branches = max((len(r.branch) for r in all_rows), default=0)
        outcomes = max((len(r.outcome) for r in all_rows), default=0)
        return cls(max(6, ids), min(MAX_BRANCH, max(6, branches)), min(MAX_OUTCOME, max(5, outcomes)))


MAX_BRANCH = 48
MAX_OUTCOME = 18
_EXPLAINED = ("REVERTED", "CONFLICT", "QUARANTINED", "SKIPPED")  # verdicts whose reason replaces the event


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def format_row(row: Row, width: int = 100, color: bool = False, cols: Columns | None = None) -> str:
    """One line: id, state, merge outcome, strategy/iteration, elapsed, branch, last event."""
    import click  # only for styling

    cols = cols or Columns()
    state = f"{row.state:<15}"
    outcome = f"{_cut(row.outcome, cols.outcome):<{cols.outcome}}"
    styled = len(state) + len(outcome)
    if color:
        state = click.style(state, fg=COLORS.get(row.state, "white"), bold=row.state == "RUNNING")
        if row.verdict:
            outcome = click.style(outcome, fg=COLORS.get(row.verdict, "white"))
    styled = len(state) + len(outcome) - styled  # the styling's invisible characters
    event = row.last_event or row.reason
    if row.verdict in _EXPLAINED and row.verdict_reason:  # why the merge did not take it: news
        event = f"merge {row.ceremony}: {row.verdict_reason}"
    branch = _cut(row.branch, cols.branch)
    line = (
        f"{row.id:<{cols.id}} {state} {outcome} {row.progress:<8} {duration(row.elapsed):>7} "
        f"{spent_text(row.spent):>8}  {branch:<{cols.branch}} "
    )
    room = max(10, width - len(line) + styled)
    return line + _cut(event, room)


def header(cols: Columns | None = None) -> str:
    """The column titles."""
    cols = cols or Columns()
    worker, branch, merge = "WORKER", "BRANCH", "MERGE"
    return (
        f"{worker:<{cols.id}} {'STATE':<15} {merge:<{cols.outcome}} {'S/I':<8} {'ELAPSED':>7} "
        f"{'SPENT':>8}  {branch:<{cols.branch}} LAST EVENT"
    )


def spent_text(spent: dict[str, float]) -> str:
    """The SPENT column: '$0.52', '41.2k tok' (a CLI that reports no cost), '-'."""
    if spent.get("cost_usd"):
        return spend.money(spent["cost_usd"])
    n = spend.tokens(spent)
    return f"{spend.kilo(n)} tok" if n else "-"


def total_spent(all_rows: Sequence[Row]) -> dict[str, float]:
    """What the plan's workers spent together (boss status --json `spent`)."""
    return spend.total([r.spent for r in all_rows])


def plan_spent(m: Manifest, all_rows: Sequence[Row]) -> str:
    """'spent: $0.52 and 41.2k tokens (budget_usd $1.00)', or '' before anything was spent."""
    t = total_spent(all_rows)
    if not (t["cost_usd"] or spend.tokens(t)):
        return ""
    budget = float(m.defaults.get("budget_usd") or 0)
    cap = f" (budget_usd {spend.money(budget)})" if budget else ""
    cost = f"{spend.money(t['cost_usd'])} and " if t["cost_usd"] else ""
    return f"spent: {cost}{spend.kilo(spend.tokens(t))} tokens{cap}"


def counts(all_rows: list[Row]) -> str:
    """'2 SUCCESS, 3 RUNNING (1 waiting for a rate limit, 1 waiting for a provider slot)', in a
    stable order."""
    order = ["SUCCESS", "RUNNING", "FAILED", "CRASHED", "CORRUPT", "SCOPE_VIOLATION", "SKIPPED", "PENDING"]
    tally = {s: sum(1 for r in all_rows if r.state == s) for s in order}
    shown = [f"{n} {s}" for s, n in tally.items() if n]
    waiting = sum(1 for r in all_rows if r.state == "RUNNING" and r.waiting_until)
    slots = sum(1 for r in all_rows if r.state == "RUNNING" and r.waiting_for)
    why = [
        f"{n} waiting for a {what}" for n, what in ((waiting, "rate limit"), (slots, "provider slot")) if n
    ]
    if why:  # RUNNING comes second, after SUCCESS when there is any
        at = 1 if tally["SUCCESS"] else 0
        shown[at] += f" ({', '.join(why)})"
    return ", ".join(shown)


def now_monotonic() -> float:
    """A clock for refresh loops."""
    return time.monotonic()


def pending_approvals(paths: PlanPaths) -> list[str]:
    """One line per worker with TIER 3 commands the guard blocked and nobody decided yet: a
    worker can succeed without them, and a person should still see what it asked for."""
    from boss.core import approvals

    waiting: dict[str, list[str]] = {}
    for req in approvals.list_requests(paths.approvals_dir, approvals.PENDING):
        waiting.setdefault(req.worker, []).append(req.id)
    return [
        f"  {worker}: {len(ids)} approval request(s) pending ({', '.join(ids)}): boss approvals, then "
        f"boss approve ID and boss retry {worker} --plan {paths.plan} if the work needs it"
        for worker, ids in sorted(waiting.items())
    ]


def unconfined(all_rows: Sequence[Row]) -> list[str]:
    """One line per worker whose runs had no sandbox (boss.core.sandbox): people must know."""
    return [
        f"  {r.id}: ran WITHOUT a sandbox ({r.sandbox}); its agent and tests could write anywhere you can"
        for r in all_rows
        if r.sandbox.startswith("none")
    ]


def summary(paths: PlanPaths, m: Manifest, config: Config, *, interrupted: bool = False) -> list[str]:
    """The lines run_workers.sh ends with: counts, each worker, what to read and do next."""
    all_rows = rows(paths, m, config)
    lines = ["", f"plan {paths.plan}: {counts(all_rows)}"]
    lines += [f"  {total}"] if (total := plan_spent(m, all_rows)) else []
    for r in all_rows:
        why = f": {r.reason}" if r.reason and r.state != "SUCCESS" else ""
        lines.append(f"  {r.id:<10} {r.state}{why}")
    for r in all_rows:
        if r.state in ("FAILED", "CRASHED", CORRUPT) and paths.blocker(r.id).is_file():
            lines.append(f"  {r.id}: read {paths.blocker(r.id).relative_to(paths.repo)}")
    lines += pending_approvals(paths)
    lines += unconfined(all_rows)
    script = paths.run_script.relative_to(paths.repo).as_posix()
    running = [r.id for r in all_rows if r.state == "RUNNING"]
    if interrupted:
        lines.append(f"Interrupted. Next: bash {script}   (resumes: successes are kept)")
    elif running:  # run elsewhere (`boss retry`, another --only run): merging now would skip them
        lines.append(
            f"Still running elsewhere: {', '.join(running)}. Watch: boss status {paths.plan} --watch"
        )
    elif any(r.state == "SUCCESS" for r in all_rows):
        lines.append(f"Next: boss merge {paths.plan}   (or inspect: boss status {paths.plan})")
    return lines


def merge_lines(paths: PlanPaths, j: Journal | None, problem: str = "") -> list[str]:
    """What `boss status` says of the latest ceremony: its number, verdicts and report."""
    if problem:
        return [f"latest merge: {problem}"]
    if j is None:
        return []
    c = ceremony(j)
    report = paths.merge_dir / "REPORT.md"
    where = report.relative_to(paths.repo).as_posix()
    number = f" {c.number}" if c.number else ""
    if c.step != "done":
        return [f"merge{number}: in progress (step {c.step}), begun {c.started_at}: boss merge {paths.plan}"]
    landed = "landed" if c.landed else "not landed"
    return [f"last merge{number} ({c.finished_at or c.started_at}): {c.counts}; {landed}; report: {where}"]


def merge_dict(j: Journal | None) -> dict[str, object] | None:
    """The latest ceremony for `boss status --json`."""
    if j is None:
        return None
    c = ceremony(j)
    return {"number": c.number, "step": c.step, "started_at": c.started_at,
            "finished_at": c.finished_at, "counts": c.counts, "landed": c.landed}  # fmt: skip
