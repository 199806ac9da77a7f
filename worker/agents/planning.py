"""An agent CLI asked to plan (`boss plan --agent NAME "TASK"`): read-only, in the sandbox.

The planner (boss.plan.planner) writes each prompt and checks each answer; this runs the agent
once per attempt in the planner's throwaway worktree, with stdin closed and a timeout, and
reads its final text. Without a sandbox the repository's git directory is recorded first and
put back after, and any change there fails the attempt.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from boss.core import git, gitdir, runlog, yamlio
from boss.core.config import Config
from boss.core.errors import AgentError
from boss.core.proc import run_group
from worker.agents.profile import AgentProfile
from worker.agents.registry import PROFILES, agent_sandbox, get_profile, state_paths


@dataclass(frozen=True)
class PlanningAgent:
    """One agent profile, ready to plan in a repository."""

    profile: AgentProfile
    config: Config
    repo: Path

    @property
    def name(self) -> str:
        return self.profile.name

    def check(self) -> None:
        """ConfigError, before any planning starts, when the profile cannot plan (the scripted
        agent). The invocation is built against a throwaway prompt: the real one is per attempt."""
        with tempfile.TemporaryDirectory(prefix="boss-plan-check-") as scratch:
            prompt = Path(scratch) / "prompt.md"
            prompt.write_text("Plan the task.\n", encoding="utf-8")
            self.profile.planner_invocation(prompt, self.repo)

    def ask(self, worktree: Path, prompt_file: Path, log: Path, last_output: Path, attempt: int) -> str:
        """Run the planner once; its final text, or AgentError when it fails or times out."""
        profile, config = self.profile, self.config
        inv = profile.planner_invocation(prompt_file, worktree)
        env = {
            **git.git_env(),
            **inv.env,
            "BOSS_PROMPT": str(prompt_file),
            "BOSS_WORKTREE": str(worktree),
            "BOSS_PLANNER_ATTEMPT": str(attempt),
            "BOSS_PYTHON": sys.executable,  # as a worker's agent gets it: the Python boss runs on
        }
        jail = agent_sandbox(config, [profile.name])
        builtin = PROFILES.get(profile.name) is profile
        state = state_paths(profile.name, {**os.environ, **env}) if builtin else []
        # The planner reads the repository; it writes only its throwaway worktree and its CLI's state
        # (without a sandbox, the git directory is put back after it and any change refused).
        before = None if jail.active else gitdir.snapshot(self.repo, worktree=worktree)
        try:
            with jail.confine(
                worktree, writable=[worktree], ephemeral=state, network=True, prefix="boss-plan-"
            ) as c:
                outcome = run_group(
                    inv.argv,
                    cwd=worktree,
                    env=env,
                    log_path=log,
                    timeout=config.planner_timeout,
                    confine=c,
                    log_cap=config.log_cap,
                )
        finally:
            changes = gitdir.restore(before) if before is not None else []
        if changes:
            shown = "; ".join(changes[:10]) + (f"; and {len(changes) - 10} more" if len(changes) > 10 else "")
            msg = (
                f"planner {profile.name!r} changed the repository's git directory, which boss put back: "
                f"{shown}"
            )
            raise AgentError(msg)
        output = runlog.read(log)
        if outcome.timed_out or outcome.exit_code != 0:
            yamlio.write_atomic(last_output, output)
            why = (
                f"timed out after {config.planner_timeout}s (planner_timeout in .boss/config.yaml)"
                if outcome.timed_out
                else f"exited with code {outcome.exit_code}"
            )
            msg = f"planner {profile.name!r} {why}; its output is kept in {_rel(self.repo, last_output)}"
            raise AgentError(msg)
        return profile.final_text(output)


def planning_agent(name: str, config: Config, repo: Path) -> PlanningAgent:
    """The agent profile `name` (the project's own first, then the built-ins) as a planner."""
    return PlanningAgent(get_profile(name, config), config, repo)


def _rel(repo: Path, path: Path) -> str:
    try:
        return path.relative_to(repo).as_posix()
    except ValueError:  # pragma: no cover - every planner file is below the repo
        return str(path)
