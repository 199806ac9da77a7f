"""A TIER 3 request put to the person at the terminal (`boss do --watch`).

The article's protocol: "Explain the risk. Wait for explicit Y." The request is shown whole (its
tier, the rule that matched, why, where, and the exact command, its control characters made
visible so an agent cannot hide part of a command from the person approving it); only `y` or
`yes` approves, any other answer denies. While it waits, the request may be decided elsewhere
(`boss approve` in another terminal) or the worker may end: the question is then withdrawn.
"""

from __future__ import annotations

import select
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from boss.core import approvals
from boss.core.errors import InputError
from boss.core.scope import shown as visible

POLL = 0.25
YES = ("y", "yes")


def describe(req: approvals.Request) -> list[str]:
    """The request as the lines shown before the question."""
    lines = [
        f"TIER {req.tier} request {req.id} from worker {req.worker}: the agent wants to run",
        f"    {visible(req.command)}",
        f"  why it needs you: {visible(req.reason)} (rule {visible(req.rule)})",
    ]
    if req.cwd:
        lines.append(f"  in: {visible(req.cwd)}")
    return lines


def ask(
    folder: Path,
    req: approvals.Request,
    alive: Callable[[], bool],
    *,
    out: TextIO,
    inp: TextIO,
    wait: float,
    poll: float = POLL,
) -> str:
    """Put req to the person; the request's status afterwards (pending when nobody decided)."""
    for line in describe(req):
        out.write(line + "\n")
    out.write(
        f"  The agent waits up to {wait:g}s for your answer; after that the command is refused for this "
        "run (an approval given later counts for the next one).\n"
        f"Approve exactly this command, once? Type y to approve, n to deny [y/N]: "
    )
    out.flush()
    while True:
        current = approvals.load(folder, req.id)
        if current.status != approvals.PENDING:
            out.write(f"\n{req.id} was decided elsewhere: {current.status}\n")
            return current.status
        if not alive():
            out.write(f"\nthe worker ended; {req.id} is pending: boss approve {req.id} --plan {req.plan}\n")
            return approvals.PENDING
        ready, _, _ = select.select([inp], [], [], poll)
        if not ready:
            continue
        line = inp.readline()
        if not line:  # end of input: nobody can answer here
            out.write(f"\nno answer; {req.id} stays pending (boss approve {req.id} --plan {req.plan})\n")
            return approvals.PENDING
        approve = line.strip().lower() in YES
        why = f"{'approved' if approve else 'denied'} at the terminal (boss do --watch)"
        try:
            decided = approvals.decide(folder, req.id, approve=approve, reason=why)
        except InputError as e:  # used meanwhile: decided elsewhere and run
            out.write(f"{e}\n")
            return approvals.USED
        what = "approved: the command runs once" if approve else "denied: the agent is told not to retry it"
        out.write(f"{req.id} {what}\n")
        out.flush()
        return decided.status
