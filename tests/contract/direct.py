"""One real agent CLI run, started as the worker starts it, without the pipeline around it.

`point(cli, url, home, cli_bin)` is the environment (and the user's files in the scratch HOME)
that points a CLI at the scripted model server, as each CLI's own test module does. `run_cli`
starts the CLI with its boss profile's own invocation (argv, environment, enforcement files)
in a small git project, stdin closed, and returns what it printed (stdout and stderr in one
stream, as in the worker's agent log) and how it ended: what a
profile's readers (`failure`, `rate_limit`) see in an agent log.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline import TEST_COMMAND, project

from worker.agents.profile import AgentRun, agent_env
from worker.agents.registry import PROFILES

CODEX_MODEL = "gpt-5-codex"
AIDER_MODEL = "openai/gpt-4o"
PROMPT = "Fix add() in src/calc.py so that 2 + 3 == 5."


def point(cli: str, url: str, home: Path, cli_bin: Path) -> dict[str, str]:
    """The environment that points cli at the model server at url (user files written in home)."""
    if cli == "claude":
        return {"ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "sk-ant-scratch",
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1",
                "DISABLE_TELEMETRY": "1"}  # fmt: skip
    if cli == "codex":
        codex_home = home / ".codex"
        codex_home.mkdir(exist_ok=True)
        (codex_home / "config.toml").write_text(
            f'model = "{CODEX_MODEL}"\nmodel_provider = "mock"\n\n[model_providers.mock]\nname = "mock"\n'
            f'base_url = "{url}/v1"\nwire_api = "responses"\nenv_key = "MOCK_API_KEY"\n'
        )
        return {"CODEX_HOME": str(codex_home), "MOCK_API_KEY": "mock-key"}
    if cli == "gemini":
        settings = {"security": {"auth": {"selectedType": "gemini-api-key"}},
                    "privacy": {"usageStatisticsEnabled": False}}  # fmt: skip
        (home / ".gemini").mkdir(exist_ok=True)
        (home / ".gemini" / "settings.json").write_text(json.dumps(settings))
        return {"GOOGLE_GEMINI_BASE_URL": url, "GEMINI_API_KEY": "x"}
    if cli == "opencode":
        provider = {"$schema": "https://opencode.ai/config.json",
                    "provider": {"mock": {"npm": "@ai-sdk/openai-compatible", "name": "Mock",
                                          "options": {"baseURL": f"{url}/v1", "apiKey": "x"},
                                          "models": {"m": {"name": "m", "tool_call": True}}}},
                    "model": "mock/m", "small_model": "mock/m"}  # fmt: skip
        folder = home / ".config" / "opencode"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "opencode.json").write_text(json.dumps(provider))
        return {"OPENCODE_DISABLE_MODELS_FETCH": "1"}
    if cli == "aider":
        venv = (cli_bin / "aider").resolve().parent.parent
        (prices,) = venv.glob("lib/python*/site-packages/litellm/model_prices_and_context_window_backup.json")
        cache = home / ".aider" / "caches" / "model_prices_and_context_window.json"
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(prices.read_text())
        return {"OPENAI_API_BASE": url + "/v1", "OPENAI_API_KEY": "x", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "BOSS_AIDER_ARGS": f"--model {AIDER_MODEL}"}  # fmt: skip
    raise ValueError(cli)


@dataclass(frozen=True)
class Ran:
    """How one CLI run ended: its exit code, what it printed, how long it took."""

    exit_code: int
    output: str  # stdout and stderr as they came, in one stream: what the worker's agent log holds
    seconds: float
    timed_out: bool  # stopped (SIGKILL to its group) at the timeout


def agent_run(root: Path) -> AgentRun:
    """A run of worker W1 of plan p in a fresh project under root (the repo is its own worktree)."""
    repo = project(root)
    folder = root / "run"
    folder.mkdir()
    prompt = folder / "prompt.md"
    prompt.write_text(PROMPT + "\n")
    return AgentRun(plan="p", worker_id="W1", repo=repo, worktree=repo, context_file=prompt,
                    prompt_file=prompt, feedback_file=folder / "feedback.md", config_dir=folder / "config",
                    iteration=1, strategy=1, scope=("^src/",), test_command=TEST_COMMAND,
                    timeout=0)  # fmt: skip


def run_cli(cli: str, root: Path, env: dict[str, str] | None = None, timeout: float = 120) -> Ran:
    """Start cli once with its profile's invocation (stdin closed) in a project under root."""
    run = agent_run(root)
    profile = PROFILES[cli]
    inv = profile.invocation(run)
    full = {**os.environ, **(env or {}), **agent_env(run), **inv.env}
    started = time.monotonic()
    proc = subprocess.Popen(inv.argv, cwd=run.worktree, env=full, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        timed_out = True
    return Ran(proc.returncode, out, time.monotonic() - started, timed_out)
