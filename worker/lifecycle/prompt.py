"""What the agent reads each iteration: CONTEXT.md plus feedback (BOSS_PROMPT, BOSS_FEEDBACK)."""

from __future__ import annotations

from dataclasses import dataclass, field

from boss.core.mdtext import code, fence

MAX_OUTPUT = 6000  # characters of test output fed back; the tail is where failures are


def tail(text: str, limit: int = MAX_OUTPUT) -> str:
    """The last `limit` characters of text, marked when cut."""
    if len(text) <= limit:
        return text
    return "[... earlier output cut ...]\n" + text[-limit:]


@dataclass
class Feedback:
    """What went wrong last time, for the next prompt."""

    test_output: str = ""
    test_exit: int | None = None
    out_of_scope: list[str] = field(default_factory=list)
    tampered: list[str] = field(default_factory=list)
    agent_note: str = ""
    redo: str = ""  # why the worker is redone on the base now (boss.core.redo)

    def text(self, level: int = 2) -> str:
        """The feedback's Markdown, its headings at `level` (empty before the first iteration)."""
        h = "#" * level
        parts = []
        if self.redo.strip():
            parts.append(f"{h} Why this task is done again\n\n{self.redo.strip()}")
        if self.test_exit is not None:
            output = tail(self.test_output).rstrip() or "(the test printed nothing)"
            parts.append(f"{h} The acceptance test failed (exit {self.test_exit})\n\n{fence(output)}")
        if self.out_of_scope:
            paths = "\n".join(f"- {code(p)}" for p in self.out_of_scope)
            parts.append(f"{h} Out-of-scope changes (revert them; they will block your merge)\n\n" + paths)
        if self.tampered:
            paths = "\n".join(f"- {code(p)}" for p in self.tampered)
            parts.append(
                f"{h} Your changes to the acceptance test were undone\n\nThe test's files are "
                "frozen after the red gate; make the code pass the test as it is.\n\n" + paths
            )
        if self.agent_note:
            parts.append(f"{h} Note\n\n{self.agent_note}")
        return "\n\n".join(parts) + ("\n" if parts else "")


def write_test_prompt(context: str, test_command: str) -> str:
    """The first prompt in write_test mode: write the acceptance test only."""
    return (
        f"{context.rstrip()}\n\n# This run: write the acceptance test only\n\n"
        f"Write the acceptance test that {code(test_command)} runs, inside your scope, and nothing "
        "else. It must fail now, as a test failure (import the missing feature inside the test "
        "function, not at module level), and pass once the feature exists. Do not implement "
        "the feature in this run. After this run the test's files are frozen.\n"
    )


def iteration_prompt(context: str, feedback: str, strategy: int, iteration: int, shifts: list[str]) -> str:
    """The full prompt of one work iteration."""
    parts = [context.rstrip(), f"\n# Iteration {iteration} (strategy {strategy})\n"]
    if shifts:
        parts.append(
            "## STRATEGY SHIFT\n\nEarlier strategies failed and were rolled back; the worktree is "
            "back at its clean start. Do NOT repeat them: re-analyse the problem and take a "
            "different approach (another library, another design, isolate the failing part).\n\n"
            + "\n\n".join(shifts)
        )
    if feedback.strip():
        parts.append("## Feedback from the last iteration\n\n" + feedback)
    return "\n".join(parts) + "\n"
