"""Agent profiles: how to start an agent for one iteration, or read-only for planning (SPEC 4).

A profile turns an `AgentRun` into an `Invocation` (argv + extra environment) and reads usage
and the final message from the agent's output. The built-in profiles for the real CLIs live in
`worker.agents.registry`; a project's own `command` profiles come from `.boss/config.yaml`.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from boss.core.errors import CommandError, ConfigError
from boss.core.proc import run as run_argv
from worker.agents.ratelimit import RateLimit


@dataclass(frozen=True)
class AgentRun:
    """Everything one agent run needs to know."""

    plan: str
    worker_id: str
    repo: Path
    worktree: Path
    context_file: Path
    prompt_file: Path
    feedback_file: Path
    config_dir: Path  # per-run agent config, outside the worktree (SPEC issue 5)
    iteration: int
    strategy: int
    scope: tuple[str, ...]
    test_command: str
    timeout: int
    log_file: Path | None = None
    # The acceptance test's files, frozen at the red gate (paths or folders, repo-relative);
    # empty before it (a write_test worker's first run, which writes them).
    frozen: tuple[str, ...] = ()
    # Whether boss's sandbox confines the run (boss.core.sandbox): everything but the worktree,
    # the run's own TMPDIR and the CLI's state is read-only to it.
    confined: bool = False


@dataclass(frozen=True)
class Invocation:
    """How to start the agent: argv (run in the worktree in its own process group) and env."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


class AgentProfile(Protocol):
    """What the worker and the planner need from an agent profile."""

    @property
    def name(self) -> str:
        """The profile's name."""
        ...

    @property
    def reports_cost(self) -> bool:
        """Whether its output says what a run cost in money (so a cost cap can be held on it)."""
        ...

    def invocation(self, run: AgentRun) -> Invocation:
        """The command for one work iteration."""
        ...

    def planner_invocation(self, prompt_file: Path, cwd: Path) -> Invocation:
        """The command for a read-only planning run whose stdout holds the manifest."""
        ...

    def usage(self, output: str) -> dict[str, Any]:
        """cost_usd / input_tokens / output_tokens read from the run's output ({} if unknown)."""
        ...

    def final_text(self, output: str) -> str:
        """The agent's final message (what the planner extracts YAML from)."""
        ...

    def run_usage(self, run: AgentRun, output: str) -> dict[str, Any]:
        """Usage of one work run: from its output, or from files the run wrote (Aider's log)."""
        ...

    def tool_calls(self, output: str) -> int | None:
        """How many shell-command or file-edit tool calls the run's output reports (None: cannot tell)."""
        ...

    def failure(self, output: str) -> str | None:
        """The CLI's own error message when the run ended in an error of the CLI itself
        (authentication, provider unreachable, quota, invalid model...); None otherwise."""
        ...

    def rate_limit(self, output: str) -> RateLimit | None:
        """How the run ended on its provider's rate limit or overload (the CLI gave up, or was
        stopped while waiting to retry), with the delay asked for when known; None otherwise."""
        ...


def agent_env(run: AgentRun) -> dict[str, str]:
    """The BOSS_* environment of SPEC section 4."""
    return {
        "BOSS_PLAN": run.plan,
        "BOSS_WORKER": run.worker_id,
        "BOSS_WORKTREE": str(run.worktree),
        "BOSS_CONTEXT": str(run.context_file),
        "BOSS_PROMPT": str(run.prompt_file),
        "BOSS_FEEDBACK": str(run.feedback_file),
        "BOSS_ITERATION": str(run.iteration),
        "BOSS_STRATEGY": str(run.strategy),
        "BOSS_SCOPE": "\n".join(run.scope),
        "BOSS_REPO": str(run.repo),
        "BOSS_PYTHON": sys.executable,
    }


@dataclass(frozen=True)
class CommandProfile:
    """A project's own agent: a bash command line run in the worktree with the BOSS_* env."""

    name: str
    command: str
    read_only_command: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @property
    def reports_cost(self) -> bool:
        """Its output says what a run cost."""
        return True

    def invocation(self, run: AgentRun) -> Invocation:  # noqa: ARG002 - the env carries the run
        return Invocation(["bash", "-c", self.command], dict(self.env))

    def planner_invocation(self, prompt_file: Path, cwd: Path) -> Invocation:  # noqa: ARG002
        command = self.read_only_command or self.command
        return Invocation(["bash", "-c", command], {**self.env, "BOSS_PROMPT": str(prompt_file)})

    def usage(self, output: str) -> dict[str, Any]:
        return usage_from_json_lines(output)

    def run_usage(self, run: AgentRun, output: str) -> dict[str, Any]:  # noqa: ARG002
        return self.usage(output)

    def final_text(self, output: str) -> str:
        return output

    def tool_calls(self, output: str) -> int | None:  # noqa: ARG002 - a command reports none
        return None

    def failure(self, output: str) -> str | None:  # noqa: ARG002 - the command's own business
        return None

    def rate_limit(self, output: str) -> RateLimit | None:  # noqa: ARG002 - its own business too
        return None


@dataclass(frozen=True)
class ScriptedProfile:
    """The built-in scripted agent (`python -m worker.scripted_agent`): for the demo and for tests."""

    name: str = "scripted"

    @property
    def reports_cost(self) -> bool:
        """Its output says what a run cost."""
        return True

    def invocation(self, run: AgentRun) -> Invocation:  # noqa: ARG002
        return Invocation([sys.executable, "-P", "-m", "worker.scripted_agent"])

    def planner_invocation(self, prompt_file: Path, cwd: Path) -> Invocation:  # noqa: ARG002
        msg = "the scripted agent cannot plan; use --from FILE.md or a command profile"
        raise ConfigError(msg)

    def usage(self, output: str) -> dict[str, Any]:  # noqa: ARG002
        return {}

    def run_usage(self, run: AgentRun, output: str) -> dict[str, Any]:  # noqa: ARG002
        return {}

    def final_text(self, output: str) -> str:
        return output

    def tool_calls(self, output: str) -> int | None:
        """Its `shell:` commands put to the guard: one `scripted agent: shell: ...` line each."""
        from worker.agents.scripted import SHELL_CALL

        return sum(1 for line in output.splitlines() if line.startswith(SHELL_CALL))

    def failure(self, output: str) -> str | None:  # noqa: ARG002 - it has no provider
        return None

    def rate_limit(self, output: str) -> RateLimit | None:  # noqa: ARG002 - it has no provider
        return None


# Environment names whose values are secrets: shown as *** in an attempt's record.
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|AUTH|CREDENTIAL", re.IGNORECASE)
MASK = "***"
VERSION_TIMEOUT = 10.0
_versions: dict[str, str] = {}


def masked(env: Mapping[str, str]) -> dict[str, str]:
    """env with the value of every secret-looking name replaced by ***."""
    return {k: MASK if SECRET_NAME.search(k) else v for k, v in sorted(env.items())}


def masked_argv(argv: list[str]) -> list[str]:
    """argv with the value of every secret-looking flag replaced by ***: `--api-key V`,
    `--api-key=V`, and a `NAME=V` setting (`-c provider.api_key=V`); nothing after `--`."""
    found: list[str] = []
    secret_next = ended = False
    for arg in argv:
        name, eq, _value = arg.partition("=")
        if ended or arg == "--":
            ended = True
            found.append(arg)
        elif secret_next and not arg.startswith("-"):
            found.append(MASK)
            secret_next = False
        elif eq and SECRET_NAME.search(name) and (arg.startswith("-") or _SETTING.match(name)):
            found.append(f"{name}={MASK}")
            secret_next = False
        else:
            found.append(arg)
            secret_next = arg.startswith("-") and not eq and bool(SECRET_NAME.search(arg))
    return found


_SETTING = re.compile(r"^[\w.-]+$")


def cli_version(binary: str, env: Mapping[str, str]) -> str:
    """What `binary --version` prints (its first line), asked once per process; "unknown" on failure."""
    path = shutil.which(binary, path=env.get("PATH")) or binary
    if path not in _versions:
        try:
            result = run_argv([path, "--version"], env=env, timeout=VERSION_TIMEOUT)
            lines = (result.stdout or result.stderr).strip().splitlines()
            _versions[path] = lines[0].strip() if lines else "unknown"
        except CommandError:
            _versions[path] = "unknown"
    return _versions[path]


def attempt_record(
    profile: AgentProfile, inv: Invocation, extra: Mapping[str, str], env: Mapping[str, str]
) -> dict[str, Any]:
    """What an agent run was started with: argv, every environment name, the values boss and
    the profile set (secrets masked), and the CLI's version (None for command and scripted
    agents, whose argv[0] is bash or python)."""
    own = isinstance(profile, CommandProfile | ScriptedProfile)
    return {
        "profile": profile.name,
        "argv": masked_argv(inv.argv),
        "version": None if own or not inv.argv else cli_version(inv.argv[0], env),
        "env": masked(extra),
        "env_names": sorted(env),
    }


def usage_from_json_lines(output: str) -> dict[str, Any]:
    """Usage from a JSON line a command agent may print: {"usage": {...}} or top-level keys."""
    from worker.agents.output import json_lines

    found: dict[str, Any] = {}
    for data in json_lines(output):
        nested = data.get("usage")
        source: dict[str, Any] = nested if isinstance(nested, dict) else data
        for key in ("cost_usd", "input_tokens", "output_tokens"):
            value = source.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                found[key] = value
    return found
