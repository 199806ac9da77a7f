"""BLOCKER_REPORT.md: why a worker gave up, and what a person should do next."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from boss.yamlio import write_atomic
from worker.prompt import tail


@dataclass
class StrategyRecord:
    """What one strategy tried and how it ended."""

    number: int
    iterations: int
    changed: list[str] = field(default_factory=list)
    last_exit: int | None = None
    last_output: str = ""
    log: str = ""


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


def hypothesis(records: list[StrategyRecord], violations: list[str]) -> str:
    """A best guess at the root cause from the last test outputs."""
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
) -> None:
    """Write BLOCKER_REPORT.md."""
    total = sum(r.iterations for r in records)
    lines = [
        f"# Blocker report: {worker_id} ({title})",
        "",
        f"The worker gave up after {total} iterations in {len(records)} strategies; the worktree "
        "was rolled back to its clean start. Nothing of this work will be merged.",
        "",
        "## Strategies attempted",
        "",
    ]
    for r in records:
        changed = ", ".join(f"`{c}`" for c in r.changed[:15]) or "nothing"
        lines += [
            f"### Strategy {r.number}: {r.iterations} iterations",
            "",
            f"- files changed: {changed}",
            f"- last test exit code: {r.last_exit}",
            f"- logs: `{r.log}`",
            "",
        ]
    last = records[-1] if records else None
    lines += [
        "## Error logs (last test output)",
        "",
        "```",
        tail(last.last_output if last else "", 4000).rstrip(),
        "```",
        "",
        "## Hypothesis of the root cause",
        "",
        hypothesis(records, violations),
        "",
        "## Recommended manual intervention",
        "",
        f"1. Read the test output above and run `{test_command}` in the worktree yourself.",
        "2. Check that the acceptance test asks for what the instructions say, and that "
        "the scope covers every file the change needs.",
        "3. Fix the manifest (instructions, scope, test) and run "
        f"`boss render` then `boss retry {worker_id} --fresh`, or finish the work by hand "
        "on the branch and commit it.",
        "",
    ]
    write_atomic(path, "\n".join(lines))
