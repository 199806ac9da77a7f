"""Aider: `aider --message-file F --yes-always ...`; it exits 0 whatever happened.

Aider runs no shell command from the model in scripted mode (--yes-always declines them): it
edits the files it is given. Nothing to render for the guard.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boss import git
from worker import agent_output as out
from worker.agents import AgentRun, Invocation
from worker.clis import common

ANALYTICS = "aider-analytics.jsonl"
LIMITS = (
    "Aider runs no shell command from the model in scripted mode (--yes-always declines them):"
    " it edits the files it is given and runs the configured test and lint commands. Nothing"
    " to render; its auto-commits are its checkpoints."
)

# Headless and hands-off: no prompts, no commits, no edits to .gitignore, no update checks.
HEADLESS = [
    "--yes-always", "--no-pretty", "--no-stream", "--no-auto-commits", "--no-dirty-commits",
    "--no-gitignore", "--no-suggest-shell-commands", "--no-check-update",
    "--no-show-release-notes", "--no-analytics",
]  # fmt: skip


def _exclude_aider_files(path: Path) -> None:
    # Aider keeps caches (.aider.tags.cache.v4) in the repository root; they are not work.
    git.add_exclude(path, [".aider*"])


@dataclass(frozen=True)
class AiderProfile:
    """Aider: `aider --message-file F --yes-always ...`; it exits 0 whatever happened."""

    name: str = "aider"

    def invocation(self, run: AgentRun) -> Invocation:
        cfg = run.config_dir
        cfg.mkdir(parents=True, exist_ok=True)
        analytics = cfg / ANALYTICS
        analytics.unlink(missing_ok=True)  # one run's usage per log
        _exclude_aider_files(run.repo)
        argv = ["aider", "--message-file", str(run.prompt_file), *HEADLESS]
        argv += ["--analytics-log", str(analytics)]
        argv += ["--chat-history-file", str(cfg / "aider.chat.history.md")]
        argv += ["--input-history-file", str(cfg / "aider.input.history")]
        for path in common.scope_files(run.worktree, run.scope):
            argv += ["--file", path]
        return Invocation(argv + common.extra_args(self.name))

    def planner_invocation(self, prompt_file: Path, cwd: Path) -> Invocation:
        # Ask mode answers without editing; --dry-run makes sure no file is written.
        _exclude_aider_files(cwd)
        argv = ["aider", "--message-file", str(prompt_file), "--chat-mode", "ask", "--dry-run"]
        argv += [*HEADLESS, "--chat-history-file", os.devnull]
        argv += ["--input-history-file", os.devnull, *common.extra_args(self.name)]
        return Invocation(argv)

    def usage(self, output: str) -> dict[str, Any]:
        return out.aider_usage(output)

    def final_text(self, output: str) -> str:
        return out.aider_final(output)

    def run_usage(self, run: AgentRun, output: str) -> dict[str, Any]:
        """Exact usage from this run's analytics log; the console's rounded numbers without it."""
        return out.aider_analytics_usage(run.config_dir / ANALYTICS) or self.usage(output)

    def tool_calls(self, output: str) -> int | None:  # noqa: ARG002
        """None: aider runs no commands of the model and has no hook to check against."""
        return None
