"""BLOCKER_REPORT.md: why a worker gave up, and what a person should do next."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from boss.core.approvals import Request
from boss.core.mdtext import code, fence
from boss.core.yamlio import write_atomic
from worker.lifecycle.prompt import tail


@dataclass
class StrategyRecord:
    """What one strategy tried and how it ended."""

    number: int
    iterations: int
    changed: list[str] = field(default_factory=list)
    last_exit: int | None = None
    last_output: str = ""
    log: str = ""
    agent_timeouts: int = 0
    agent_stalls: int = 0
    agent_exits: list[int] = field(default_factory=list)
    agent_failures: list[str] = field(default_factory=list)  # the CLI's own errors (login, provider)
    tampered: list[str] = field(default_factory=list)


_HINTS = (
    (
        r"ModuleNotFoundError|ImportError|cannot import",
        "a module or name the test imports does "
        "not exist where the test expects it (wrong path, name or package layout)",
    ),
    (
        r"AssertionError|assert ",
        "the code runs but gives a different result than the test "
        "expects: the requirement may be ambiguous or the test may expect something else",
    ),
    (r"Timeout|timed out", "the code or the test hangs or is too slow"),
    (r"PermissionError|Permission denied", "the work needs access the worktree does not give"),
    (r"SyntaxError|IndentationError", "the agent keeps producing code that does not parse"),
)


def hypothesis(records: list[StrategyRecord], violations: list[str], pending: list[Request]) -> str:
    """A best guess at the root cause from the last test outputs."""
    if pending:
        # The guard stopped the agent before a command only a person may allow: that, not the
        # code, is what held the work back, and the test output only shows the consequence.
        return (
            "The agent was stopped before a command that needs a person's approval "
            f"({', '.join(code(r.command) for r in pending[:3])}); the work may need it to run."
        )
    runs = sum(r.iterations for r in records)
    failures = [f for r in records for f in r.agent_failures]
    if runs and len(failures) >= runs:
        # The CLI itself failed every time (after some tool calls, or the worker would have
        # stopped at once): the test output only shows what it left undone.
        return (
            f"The agent CLI reported an error of its own in every run (last: {failures[-1]}): "
            "it could not finish its work, so the test output says nothing about the requirement. "
            "Fix the CLI's login, provider or quota, then retry."
        )
    timeouts = sum(r.agent_timeouts for r in records)
    stalls = sum(r.agent_stalls for r in records)
    if runs and timeouts + stalls == runs:
        # What the agent did not finish says nothing about the code: the limits stopped it.
        which = "agent_timeout" if timeouts >= stalls else "stall_timeout (no output)"
        return (
            f"The agent was stopped by {which} in every iteration, so it never finished its work: "
            "raise the limit in the manifest, or split the worker into smaller pieces."
        )
    if any(r.tampered for r in records) and not any(r.changed for r in records):
        return (
            "The agent only changed the acceptance test, and those changes were undone: the test "
            "may expect something the instructions do not ask for, or the agent misread the task."
        )
    text = "\n".join(r.last_output for r in records)
    for pattern, guess in _HINTS:
        if re.search(pattern, text):
            return guess[0].upper() + guess[1:] + "."
    if violations:
        return (
            "The work seems to need files outside the scope: "
            + ", ".join(violations[:5])
            + ". The scope may be too narrow."
        )
    if not any(r.changed for r in records):
        return "The agent changed nothing: it may not have understood the task or lacked permission."
    return "Unknown: read the last test output below."


def write_report(
    path: Path,
    worker_id: str,
    title: str,
    test_command: str,
    records: list[StrategyRecord],
    violations: list[str],
    *,
    plan: str,
    pending: list[Request],
) -> None:
    """Write BLOCKER_REPORT.md; `pending` are the worker's approval requests nobody decided."""
    total = sum(r.iterations for r in records)
    lines = [
        f"# Blocker report: {worker_id} ({title})",
        "",
        f"The worker gave up after {counted(total, 'iteration')} in "
        f"{counted(len(records), 'strategy')}; the worktree was rolled back "
        "to its clean start. Nothing of this work will be merged.",
        "",
        "## Strategies attempted",
        "",
    ]
    for r in records:
        changed = ", ".join(code(c) for c in r.changed[:15]) or "nothing"
        lines += [
            f"### Strategy {r.number}: {counted(r.iterations, 'iteration')}",
            "",
            f"- files changed: {changed}",
            f"- last test exit code: {r.last_exit}",
            f"- agent runs: {_agent_summary(r)}",
            f"- logs: `{r.log}`",
            *(
                [f"- refused edits to the acceptance test: {', '.join(code(t) for t in r.tampered)}"]
                if r.tampered
                else []
            ),
            "",
        ]
    if pending:
        lines += ["## Waiting for approval", "", "The guard blocked these commands and asked for one:", ""]
        lines += [f"- {r.id}: {code(r.command)} ({r.reason})" for r in pending]
        lines.append("")
    last = records[-1] if records else None
    lines += [
        "## Error logs (last test output)",
        "",
        fence(tail(last.last_output if last else "", 4000).rstrip() or "(the test printed nothing)"),
        "",
        "## Hypothesis of the root cause",
        "",
        hypothesis(records, violations, pending),
        "",
        "## Recommended manual intervention",
        "",
    ]
    steps = [
        f"Read the test output above and run {code(test_command)} in the worktree yourself.",
        "Check that the acceptance test asks for what the instructions say, and that "
        "the scope covers every file the change needs.",
        "Fix the manifest (instructions, scope, test) and run "
        f"`boss render {plan}` then `boss retry {worker_id} --plan {plan} --fresh`, or finish "
        "the work by hand on the branch and commit it.",
    ]
    if pending:
        ids = " ".join(r.id for r in pending)
        steps.insert(
            0,
            f"Decide the approval requests above: `boss approve ID --plan {plan}` (or `boss deny`) "
            f"for each of {ids}, then `boss retry {worker_id} --plan {plan}`; an approved "
            "command runs once.",
        )
    lines += [f"{n}. {step}" for n, step in enumerate(steps, 1)] + [""]
    write_atomic(path, "\n".join(lines))


def counted(count: int, word: str) -> str:
    """`1 iteration`, `2 iterations`, `2 strategies`."""
    if count == 1:
        return f"1 {word}"
    return f"{count} {word[:-1]}ies" if word.endswith("y") else f"{count} {word}s"


def _agent_summary(r: StrategyRecord) -> str:
    """`3 (exit 0, 0, 1); 1 stopped by agent_timeout`."""
    exits = ", ".join(map(str, r.agent_exits)) or "none"
    notes = [
        f"{n} stopped by {what}"
        for n, what in ((r.agent_timeouts, "agent_timeout"), (r.agent_stalls, "stall_timeout"))
        if n
    ]
    if r.agent_failures:
        notes.append(f"{len(r.agent_failures)} ended in a CLI error (last: {r.agent_failures[-1]})")
    return f"{len(r.agent_exits)} (exit {exits})" + "".join(f"; {note}" for note in notes)
