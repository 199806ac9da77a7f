"""Built-in agent profiles for the real CLIs: Claude Code, Codex, Aider, Gemini CLI, OpenCode.

Each profile starts its CLI headless in the worker's worktree (the worker closes stdin, puts
stdout and stderr in one log, and judges the run by its own test, never by the exit code),
passes the prompt the way that CLI takes it without stdin, and asks for its machine-readable
output so `usage()` and `final_text()` can read it (see `worker.agent_output`). The flags follow
`reference/agent-clis.md`; the fakes in `tests/fakes/bin` parse them as the real CLIs do.

- The prompt file already holds CONTEXT.md plus the feedback, so it is passed once, as the
  prompt: no second copy as a system prompt or read-only file. A prompt too long for one
  argument (over 100 kB) goes by file instead: Claude `--append-system-prompt-file`, OpenCode
  `--file`, Codex and Gemini are told to read it (Gemini gets its folder included).
- The worker commits, never the agent: Codex cannot commit from a linked worktree under
  `workspace-write`, and Aider runs with `--no-auto-commits --no-dirty-commits`.
- Tiered-autonomy enforcement (`worker.enforce.render_enforcement`) is applied when that module
  exists: Claude `--settings`, Gemini `--policy`, extra arguments and environment for all.
  Without it each CLI gets a minimum of its own: reads, edits and the worker's test command
  (Claude settings, a Gemini policy, OpenCode permissions; Codex stays in its sandbox).

Environment knobs, read when the invocation is built:
`BOSS_<AGENT>_ARGS` extra arguments as shell words (e.g. `BOSS_CLAUDE_ARGS="--model opus"`),
`BOSS_CLAUDE_BARE=1` adds `--bare` (skips the repo's hooks, MCP servers and CLAUDE.md; needs
`ANTHROPIC_API_KEY`), `BOSS_CLAUDE_MAX_TURNS` (default 60).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boss import git
from boss.errors import StateError
from worker import agent_output as out
from worker.agents import AgentProfile, AgentRun, Invocation

# Linux refuses a single argument over 128 KiB (MAX_ARG_STRLEN); stay well below it.
ARGV_PROMPT_LIMIT = 100_000
SCOPE_FILE_LIMIT = 50
AIDER_ANALYTICS = "aider-analytics.jsonl"
CLAUDE_SETTINGS = "claude-settings.json"
DEFAULT_MAX_TURNS = 60
_READ_IT = "Your instructions are in the file {path}: read all of it, then do exactly what it says."


def _prompt(path: Path) -> str | None:
    """The prompt text when it fits in one argument, None when it must go by file."""
    try:
        text = path.read_text()
    except OSError as e:
        msg = f"{path}: cannot read the agent's prompt ({e})"
        raise StateError(msg) from e
    return text if len(text.encode()) <= ARGV_PROMPT_LIMIT else None


def _extra(agent: str) -> list[str]:
    return shlex.split(os.environ.get(f"BOSS_{agent.upper()}_ARGS", ""))


@dataclass(frozen=True)
class Enforced:
    """What tiered-autonomy enforcement asks a CLI to be started with."""

    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    settings: str | None = None
    policy: str | None = None
    active: bool = False  # False: no enforcement module; the profile's own minimum applies


def enforcement(agent: str, run: AgentRun) -> Enforced:
    """The per-run enforcement for agent, rendered into run.config_dir (none while absent)."""
    try:
        enforce = importlib.import_module("worker.enforce")
        policies = importlib.import_module("worker.policy")
    except ModuleNotFoundError as e:
        if e.name in ("worker.enforce", "worker.policy"):
            return Enforced()
        raise
    rendered = enforce.render_enforcement(agent, run, policies.load_policy(run.repo))
    if not isinstance(rendered, dict):
        return Enforced(active=True)
    settings, policy = rendered.get("settings"), rendered.get("policy")
    return Enforced(
        args=[str(a) for a in rendered.get("args") or []],
        env={str(k): str(v) for k, v in (rendered.get("env") or {}).items()},
        settings=str(settings) if settings else None,
        policy=str(policy) if policy else None,
        active=True,
    )


def scope_files(worktree: Path, scope: tuple[str, ...], limit: int = SCOPE_FILE_LIMIT) -> list[str]:
    """Tracked files of the worktree inside the scope (the first `limit`, sorted)."""
    patterns = [re.compile(p) for p in scope]
    tracked = git.zsplit(git.git(worktree, "ls-files", "-z").stdout)
    return sorted(p for p in tracked if any(r.search(p) for r in patterns))[:limit]


# --- Claude Code -----------------------------------------------------------------------------


def _claude_prompt(path: Path) -> list[str]:
    text = _prompt(path)
    if text is not None:
        return ["--", text]
    short = "Your complete instructions are in your system prompt; do exactly what they say."
    return ["--append-system-prompt-file", str(path), "--", short]


def claude_fallback_settings(run: AgentRun) -> Path:
    """A settings file allowing reads, edits and the worker's test, for runs without a policy."""
    allow = ["Read", "Glob", "Grep", "Edit"]
    test = run.test_command.strip()
    if test:
        allow += [f"Bash({test})", f"Bash({test} *)"]
    path = run.config_dir / CLAUDE_SETTINGS
    path.parent.mkdir(parents=True, exist_ok=True)
    settings = {"permissions": {"defaultMode": "dontAsk", "allow": allow}}
    path.write_text(json.dumps(settings, indent=2))
    return path


@dataclass(frozen=True)
class ClaudeProfile:
    """Claude Code: `claude -p ... --output-format stream-json --verbose` (NDJSON)."""

    name: str = "claude"

    def _base(self) -> list[str]:
        turns = os.environ.get("BOSS_CLAUDE_MAX_TURNS") or str(DEFAULT_MAX_TURNS)
        argv = ["claude", "-p", "--output-format", "stream-json", "--verbose"]
        argv += ["--permission-mode", "dontAsk", "--max-turns", turns]
        return argv + (["--bare"] if os.environ.get("BOSS_CLAUDE_BARE") == "1" else [])

    def invocation(self, run: AgentRun) -> Invocation:
        enforced = enforcement(self.name, run)
        settings = enforced.settings or str(claude_fallback_settings(run))
        argv = [*self._base(), "--settings", settings, *enforced.args, *_extra(self.name)]
        return Invocation(argv + _claude_prompt(run.prompt_file), enforced.env)

    def planner_invocation(self, prompt_file: Path, cwd: Path) -> Invocation:  # noqa: ARG002
        # Only read-only tools exist in this run; dontAsk refuses anything else.
        argv = [*self._base(), "--tools", "Read,Grep,Glob", *_extra(self.name)]
        return Invocation(argv + _claude_prompt(prompt_file))

    def usage(self, output: str) -> dict[str, Any]:
        return out.claude_usage(output)

    def final_text(self, output: str) -> str:
        return out.claude_final(output)

    def run_usage(self, run: AgentRun, output: str) -> dict[str, Any]:  # noqa: ARG002
        """Usage of one run (the same as usage(): everything is in the output)."""
        return self.usage(output)


# --- Codex -----------------------------------------------------------------------------------


def _read_it(path: Path) -> str:
    text = _prompt(path)
    return text if text is not None else _READ_IT.format(path=path)


def _codex(sandbox: str, cwd: Path) -> list[str]:
    return ["codex", "exec", "--json", "--sandbox", sandbox, "--skip-git-repo-check",
            "--ephemeral", "-C", str(cwd)]  # fmt: skip


@dataclass(frozen=True)
class CodexProfile:
    """Codex: `codex exec --json --sandbox workspace-write` (JSONL events, tokens only)."""

    name: str = "codex"

    def invocation(self, run: AgentRun) -> Invocation:
        enforced = enforcement(self.name, run)
        argv = [*_codex("workspace-write", run.worktree)]
        argv += ["-c", "sandbox_workspace_write.network_access=false"]
        argv += [*enforced.args, *_extra(self.name), "--", _read_it(run.prompt_file)]
        return Invocation(argv, enforced.env)

    def planner_invocation(self, prompt_file: Path, cwd: Path) -> Invocation:
        argv = [*_codex("read-only", cwd), *_extra(self.name), "--", _read_it(prompt_file)]
        return Invocation(argv)

    def usage(self, output: str) -> dict[str, Any]:
        return out.codex_usage(output)

    def final_text(self, output: str) -> str:
        return out.codex_final(output)

    def run_usage(self, run: AgentRun, output: str) -> dict[str, Any]:  # noqa: ARG002
        """Usage of one run (the same as usage(): everything is in the output)."""
        return self.usage(output)


# --- Aider -----------------------------------------------------------------------------------

# Headless and hands-off: no prompts, no commits, no edits to .gitignore, no update checks.
AIDER_HEADLESS = [
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
        analytics = cfg / AIDER_ANALYTICS
        analytics.unlink(missing_ok=True)  # one run's usage per log
        _exclude_aider_files(run.repo)
        argv = ["aider", "--message-file", str(run.prompt_file), *AIDER_HEADLESS]
        argv += ["--analytics-log", str(analytics)]
        argv += ["--chat-history-file", str(cfg / "aider.chat.history.md")]
        argv += ["--input-history-file", str(cfg / "aider.input.history")]
        for path in scope_files(run.worktree, run.scope):
            argv += ["--file", path]
        return Invocation(argv + _extra(self.name))

    def planner_invocation(self, prompt_file: Path, cwd: Path) -> Invocation:
        # Ask mode answers without editing; --dry-run makes sure no file is written.
        _exclude_aider_files(cwd)
        argv = ["aider", "--message-file", str(prompt_file), "--chat-mode", "ask", "--dry-run"]
        argv += [*AIDER_HEADLESS, "--chat-history-file", os.devnull]
        argv += ["--input-history-file", os.devnull, *_extra(self.name)]
        return Invocation(argv)

    def usage(self, output: str) -> dict[str, Any]:
        return out.aider_usage(output)

    def final_text(self, output: str) -> str:
        return out.aider_final(output)

    def run_usage(self, run: AgentRun, output: str) -> dict[str, Any]:
        """Exact usage from this run's analytics log; the console's rounded numbers without it."""
        return out.aider_analytics_usage(run.config_dir / AIDER_ANALYTICS) or self.usage(output)


# --- Gemini CLI ------------------------------------------------------------------------------


def _gemini_prompt(path: Path) -> list[str]:
    # --prompt=TEXT: a value starting with "-" cannot be taken for a flag.
    text = _prompt(path)
    if text is not None:
        return [f"--prompt={text}"]
    return ["--include-directories", str(path.parent), f"--prompt={_READ_IT.format(path=path)}"]


_GEMINI_ENV = {"GEMINI_CLI_TRUST_WORKSPACE": "true"}
GEMINI_POLICY = "gemini-policy.toml"


def gemini_fallback_policy(run: AgentRun) -> Path:
    """A user-tier policy allowing the worker's test, for runs without a policy.

    Headless Gemini already denies every other shell command and allows edits in auto_edit.
    """
    path = run.config_dir / GEMINI_POLICY
    path.parent.mkdir(parents=True, exist_ok=True)
    test = run.test_command.strip()
    rule = ('[[rule]]\ntoolName = "run_shell_command"\n'
            f"commandPrefix = [{json.dumps(test)}]\n"
            'decision = "allow"\npriority = 500\n')  # fmt: skip
    path.write_text(rule if test else "")
    return path


@dataclass(frozen=True)
class GeminiProfile:
    """Gemini CLI: `gemini --prompt=... --output-format stream-json` (JSONL, tokens only)."""

    name: str = "gemini"

    def invocation(self, run: AgentRun) -> Invocation:
        enforced = enforcement(self.name, run)
        argv = ["gemini", *_gemini_prompt(run.prompt_file), "--output-format", "stream-json"]
        argv += ["--approval-mode", "auto_edit", "--skip-trust"]
        policy = enforced.policy or (None if enforced.active else gemini_fallback_policy(run))
        if policy:
            argv += ["--policy", str(policy)]
        argv += [*enforced.args, *_extra(self.name)]
        return Invocation(argv, {**_GEMINI_ENV, **enforced.env})

    def planner_invocation(self, prompt_file: Path, cwd: Path) -> Invocation:  # noqa: ARG002
        argv = ["gemini", *_gemini_prompt(prompt_file), "--output-format", "stream-json"]
        argv += ["--approval-mode", "plan", "--skip-trust", *_extra(self.name)]
        return Invocation(argv, dict(_GEMINI_ENV))

    def usage(self, output: str) -> dict[str, Any]:
        return out.gemini_usage(output)

    def final_text(self, output: str) -> str:
        return out.gemini_final(output)

    def run_usage(self, run: AgentRun, output: str) -> dict[str, Any]:  # noqa: ARG002
        """Usage of one run (the same as usage(): everything is in the output)."""
        return self.usage(output)


# --- OpenCode --------------------------------------------------------------------------------


def _opencode_prompt(path: Path) -> list[str]:
    text = _prompt(path)
    if text is not None:
        return ["--", text]
    return ["--file", str(path), "--", "Do exactly what the attached instructions say."]


_OPENCODE_ENV = {"OPENCODE_DISABLE_AUTOUPDATE": "1", "OPENCODE_DISABLE_CLAUDE_CODE": "1"}


def opencode_fallback_permission(test_command: str) -> str:
    """OPENCODE_PERMISSION for runs without a policy: edits, the worker's test, nothing else.

    Never "ask": `run` rejects it (older versions hang on it). The last matching rule wins.
    """
    bash = {"*": "deny"}
    test = test_command.strip()
    if test:
        bash.update({test: "allow", f"{test} *": "allow"})
    rules = {"bash": bash, "external_directory": "deny", "webfetch": "deny", "websearch": "deny"}
    return json.dumps(rules)


@dataclass(frozen=True)
class OpenCodeProfile:
    """OpenCode: `opencode run --format json --dir <worktree>` (JSONL with cost and tokens)."""

    name: str = "opencode"

    def invocation(self, run: AgentRun) -> Invocation:
        enforced = enforcement(self.name, run)
        argv = ["opencode", "run", "--format", "json", "--dir", str(run.worktree)]
        argv += [*enforced.args, *_extra(self.name), *_opencode_prompt(run.prompt_file)]
        env = dict(_OPENCODE_ENV)
        if not enforced.active:
            env["OPENCODE_PERMISSION"] = opencode_fallback_permission(run.test_command)
        return Invocation(argv, {**env, **enforced.env})

    def planner_invocation(self, prompt_file: Path, cwd: Path) -> Invocation:
        argv = ["opencode", "run", "--format", "json", "--dir", str(cwd), "--agent", "plan"]
        argv += [*_extra(self.name), *_opencode_prompt(prompt_file)]
        return Invocation(argv, dict(_OPENCODE_ENV))

    def usage(self, output: str) -> dict[str, Any]:
        return out.opencode_usage(output)

    def final_text(self, output: str) -> str:
        return out.opencode_final(output)

    def run_usage(self, run: AgentRun, output: str) -> dict[str, Any]:  # noqa: ARG002
        """Usage of one run (the same as usage(): everything is in the output)."""
        return self.usage(output)


PROFILES: dict[str, AgentProfile] = {
    "claude": ClaudeProfile(),
    "codex": CodexProfile(),
    "aider": AiderProfile(),
    "gemini": GeminiProfile(),
    "opencode": OpenCodeProfile(),
}
