"""Aider: `aider --message-file F --yes-always ...`; it exits 0 whatever happened.

Aider has no tool hook and offers the model no tools: the model's edits arrive as SEARCH/REPLACE
blocks in its reply, and aider applies them itself. With --no-suggest-shell-commands it runs
no shell command the model writes. Nothing to render for the guard; what holds is said in
LIMITS, and the worker's gates (frozen test, scope) apply as to every agent.

Measured on aider 0.86.2 (tests/contract/test_aider.py):
- a URL anywhere in the prompt is scraped, and aider then tries `pip install
  aider-chat[playwright]`: --no-detect-urls stops both;
- under --yes-always a file named in the prompt is added to the chat as editable:
  the frozen test files go in with --read (read-only, never auto-added), and out of --file.
  The model is told not to edit them, but aider still applies a SEARCH/REPLACE block for one
  ("Allow edits to file that has not been added to the chat?" is answered yes): the
  worker's frozen-test restore is what undoes it;
- with the model unreachable it retries for about 60-100 s and exits 0: agent_timeout stops it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boss.core import git
from worker.agents import output as out
from worker.agents import ratelimit as rl
from worker.agents.clis import common
from worker.agents.profile import AgentRun, Invocation

ANALYTICS = "aider-analytics.jsonl"
LIMITS = (
    "Aider has no tool hook: nothing is judged per edit and nothing is checkpointed (its"
    " auto-commits are off: the worker commits). It runs no shell command the model writes"
    " (--no-suggest-shell-commands), nor a lint or test command (--no-auto-lint, --no-auto-test)."
    " It edits the files it is given (--file: the tracked files in scope), creates the new files the model"
    " names, and also applies an edit to any other file of the repository (--yes-always"
    " allows it): the frozen acceptance test is restored and the scope check still applies."
)

# Headless and hands-off: no prompts, no commits, no edits to .gitignore, no update checks.
# No lint or test commands either: aider reads `.aider.conf.yml` from the repository (and an
# agent can write one), where `lint-cmd`/`test-cmd` would run unjudged commands; a flag on the
# command line wins over the file. BOSS_AIDER_ARGS comes last and can turn them back on.
HEADLESS = [
    "--yes-always", "--no-pretty", "--no-stream", "--no-auto-commits", "--no-dirty-commits",
    "--no-gitignore", "--no-suggest-shell-commands", "--no-check-update",
    "--no-show-release-notes", "--no-analytics", "--no-detect-urls", "--no-auto-lint",
    "--no-auto-test",
]  # fmt: skip
# aider prints one line per file it changed (base_coder.apply_updates).
APPLIED = re.compile(r"^Applied edit to (.+)$", re.MULTILINE)
# What aider prints when the model cannot be reached or refuses it: litellm's exception
# (`litellm.APIConnectionError: ... Connection error.`), whose message can wrap onto the next line.
FAILED = re.compile(r"^litellm\.\w+Error: .*(?:\n(?!\n).*)?$", re.MULTILINE)
# The same exception with its whole message (up to aider's "Retrying in N seconds...", a blank
# line or the next exception), and the line aider prints after each reply it got.
ERROR_BLOCK = re.compile(r"^litellm\.\w+Error: (?:(?!^Retrying in |^litellm\.|^$).*\n?)*", re.MULTILINE)
RETRYING = re.compile(r"^Retrying in [\d.]+ seconds\.\.\.$", re.MULTILINE)
REPLIED = re.compile(r"^Tokens: ", re.MULTILINE)
# aider's hint after the exception (aider/exceptions.py): the same words for a refused connection as
# for an overload ("The API provider's servers are down or overloaded."), so the kind is judged
# from litellm's exception alone.
HINT = re.compile(r"^The API provider.*$", re.MULTILINE)


def _exclude_aider_files(path: Path) -> None:
    # Aider keeps caches (.aider.tags.cache.v4) in the repository root; they are not work.
    git.add_exclude(path, [".aider*"])


@dataclass(frozen=True)
class AiderProfile:
    """Aider: `aider --message-file F --yes-always ...`; it exits 0 whatever happened."""

    name: str = "aider"

    @property
    def reports_cost(self) -> bool:
        """Its output says what a run cost."""
        return True

    def invocation(self, run: AgentRun) -> Invocation:
        cfg = run.config_dir / common.STATE_DIR
        cfg.mkdir(parents=True, exist_ok=True)
        analytics = cfg / ANALYTICS
        analytics.unlink(missing_ok=True)  # one run's usage per log
        _exclude_aider_files(run.repo)
        argv = ["aider", "--message-file", str(run.prompt_file), *HEADLESS]
        argv += ["--analytics-log", str(analytics)]
        argv += ["--chat-history-file", str(cfg / "aider.chat.history.md")]
        argv += ["--input-history-file", str(cfg / "aider.input.history")]
        frozen = frozen_files(run)
        for path in common.scope_files(run.worktree, run.scope):
            if path not in frozen:
                argv += ["--file", path]
        for path in frozen:
            argv += ["--read", path]
        return Invocation(argv + common.extra_args(self.name), git.identity_config_env(run.worktree))

    def planner_invocation(self, prompt_file: Path, cwd: Path) -> Invocation:
        # Ask mode answers without editing; --dry-run makes sure no file is written.
        _exclude_aider_files(cwd)
        argv = ["aider", "--message-file", str(prompt_file), "--chat-mode", "ask", "--dry-run"]
        argv += [*HEADLESS, "--chat-history-file", os.devnull]
        argv += ["--input-history-file", os.devnull, *common.extra_args(self.name)]
        return Invocation(argv, git.identity_config_env(cwd))

    def usage(self, output: str) -> dict[str, Any]:
        return out.aider_usage(output)

    def final_text(self, output: str) -> str:
        return out.aider_final(output)

    def run_usage(self, run: AgentRun, output: str) -> dict[str, Any]:
        """Exact usage from this run's analytics log; the console's rounded numbers without it."""
        return out.aider_analytics_usage(run.config_dir / common.STATE_DIR / ANALYTICS) or self.usage(output)

    def tool_calls(self, output: str) -> int | None:
        """The edits aider applied (`Applied edit to F`); it runs no command of the model."""
        return len(APPLIED.findall(output))

    def failure(self, output: str) -> str | None:
        """The last `litellm.<Kind>Error: ...` line (authentication, connection, quota, model), in a
        run that applied no edit (aider exits 0 whatever happened)."""
        if APPLIED.search(output):
            return None
        found = FAILED.findall(output)
        return " ".join(found[-1].split()) if found else None

    def rate_limit(self, output: str) -> rl.RateLimit | None:
        """A rate limit or overload aider gave up on, or was stopped waiting to retry.

        aider 0.86.2 (litellm) retries twice inside the OpenAI client first, honouring retry-after
        and printing nothing; then it prints the exception ("litellm.RateLimitError:
        RateLimitError: OpenAIException - <the provider's message>", wrapped, then "The API
        provider has rate limited you. Try again later or check your quotas.") and "Retrying in
        0.2 seconds...", doubling to 32 s, and gives up after about 90 s, exiting 0. The run
        ended on it when no reply (`Tokens: ...`) came after the last exception. A model that
        cannot be reached ("InternalServerError: ... Connection error.") is no limit, though aider's
        hint under it says "down or overloaded": that run is the CLI's failure.
        """
        blocks = list(ERROR_BLOCK.finditer(output))
        if not blocks or REPLIED.search(output, blocks[-1].end()):
            return None
        text = blocks[-1].group(0)
        kind = rl.kind_of(rl.status_in(text), HINT.sub("", text))
        if kind is None:
            return None
        limited = [b for b in blocks if rl.kind_of(None, HINT.sub("", b.group(0)))]
        retries = sum(1 for b in limited if RETRYING.match(output, b.end()))
        return rl.RateLimit(kind, rl.one_line(text), rl.delay_in(text), rl.status_in(text), retries)


def frozen_files(run: AgentRun, limit: int = common.SCOPE_FILE_LIMIT) -> list[str]:
    """The tracked files of the acceptance test the worker froze (none before the red gate)."""
    if not run.frozen:
        return []
    tracked = git.zsplit(git.git(run.worktree, "ls-files", "-z", "--", *run.frozen).stdout)
    return sorted(tracked)[:limit]
