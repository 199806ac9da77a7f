"""What every real-CLI profile shares: the prompt, extra arguments, scope files, enforcement.

Each profile starts its CLI headless in the worker's worktree (the worker closes stdin, puts
stdout and stderr in one log, and judges the run by its own test, never by the exit code),
passes the prompt the way that CLI takes it without stdin, and asks for its machine-readable
output so `usage()` and `final_text()` can read it (see `worker.agents.output`).

- The prompt file already holds CONTEXT.md plus the feedback, so it is passed once, as the
  prompt. A prompt too long for one argument (over 100 kB) goes by file instead.
- The worker commits, never the agent.
- Tiered autonomy (`worker.agents.enforce`) is rendered for every run: a CLI is never started
  without the enforcement its profile renders.

`BOSS_<AGENT>_ARGS` adds extra arguments as shell words (e.g. `BOSS_CLAUDE_ARGS="--model opus"`).
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boss.core import git
from boss.core.errors import StateError
from worker.agents import enforce
from worker.agents.profile import AgentRun

# Linux refuses a single argument over 128 KiB (MAX_ARG_STRLEN); stay well below it.
ARGV_PROMPT_LIMIT = 100_000
# The folder of a run's agent-config dir where a CLI writes what boss reads back (Aider's
# analytics log and histories): the one folder of .boss/ writable in the agent's sandbox.
STATE_DIR = "state"
SCOPE_FILE_LIMIT = 50
READ_IT = "Your instructions are in the file {path}: read all of it, then do exactly what it says."

Renderer = Callable[[enforce.Inputs], dict[str, Any]]


def prompt_text(path: Path) -> str | None:
    """The prompt text when it fits in one argument, None when it must go by file."""
    try:
        text = path.read_text()
    except OSError as e:
        msg = f"{path}: cannot read the agent's prompt ({e})"
        raise StateError(msg) from e
    return text if len(text.encode()) <= ARGV_PROMPT_LIMIT else None


def read_it(path: Path) -> str:
    """The prompt itself, or an instruction to read it from its file when it is too long."""
    text = prompt_text(path)
    return text if text is not None else READ_IT.format(path=path)


def extra_args(agent: str) -> list[str]:
    """The user's extra arguments for this CLI (BOSS_<AGENT>_ARGS, shell words)."""
    return shlex.split(os.environ.get(f"BOSS_{agent.upper()}_ARGS", ""))


def scope_files(worktree: Path, scope: tuple[str, ...], limit: int = SCOPE_FILE_LIMIT) -> list[str]:
    """Tracked files of the worktree inside the scope (the first `limit`, sorted)."""
    patterns = [re.compile(p) for p in scope]
    tracked = git.zsplit(git.git(worktree, "ls-files", "-z").stdout)
    return sorted(p for p in tracked if any(r.search(p) for r in patterns))[:limit]


@dataclass(frozen=True)
class Enforced:
    """What tiered-autonomy enforcement asks a CLI to be started with."""

    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    settings: str | None = None
    policy: str | None = None


def enforcement(agent: str, run: AgentRun, render: Renderer) -> Enforced:
    """The per-run enforcement for agent, rendered into run.config_dir by its renderer."""
    from worker.autonomy.policy_file import load_policy

    rendered = enforce.render_enforcement(agent, run, load_policy(run.repo), render)
    settings, policy = rendered.get("settings"), rendered.get("policy")
    return Enforced(
        args=[str(a) for a in rendered.get("args") or []],
        env={str(k): str(v) for k, v in (rendered.get("env") or {}).items()},
        settings=str(settings) if settings else None,
        policy=str(policy) if policy else None,
    )
