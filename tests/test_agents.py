"""Agent profiles: the SPEC section 4 environment, project command profiles, the registry."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from conftest import make_repo

from boss.core.config import Config, load_config
from boss.core.errors import ConfigError
from boss.core.proc import run_group
from worker.agents.profile import (
    AgentRun,
    CommandProfile,
    ScriptedProfile,
    agent_env,
    usage_from_json_lines,
)
from worker.agents.registry import builtin_names, get_profile

SPEC_VARS = ("BOSS_PLAN", "BOSS_WORKER", "BOSS_WORKTREE", "BOSS_CONTEXT", "BOSS_PROMPT",
             "BOSS_FEEDBACK", "BOSS_ITERATION", "BOSS_STRATEGY", "BOSS_SCOPE")  # fmt: skip


def make_run(root: Path, context: str = "# W1\n") -> AgentRun:
    repo = make_repo(root / "repo")
    wdir = root / "worker"
    wdir.mkdir()
    (wdir / "CONTEXT.md").write_text(context)
    (wdir / "prompt.md").write_text(context + "\n# Iteration 2\n")
    (wdir / "feedback.md").write_text("")
    return AgentRun(
        plan="demo", worker_id="W1", repo=repo, worktree=repo, context_file=wdir / "CONTEXT.md",
        prompt_file=wdir / "prompt.md", feedback_file=wdir / "feedback.md",
        config_dir=wdir / "agent", iteration=2, strategy=1, scope=("^src/a/", "^tests/a/"),
        test_command="pytest -q", timeout=60,
    )  # fmt: skip


def test_agent_env_is_the_spec_table(tmp_path):
    run = make_run(tmp_path)
    env = agent_env(run)
    assert env["BOSS_PLAN"] == "demo" and env["BOSS_WORKER"] == "W1"
    assert env["BOSS_WORKTREE"] == str(run.worktree)
    assert env["BOSS_CONTEXT"] == str(run.context_file)
    assert env["BOSS_PROMPT"] == str(run.prompt_file)
    assert env["BOSS_FEEDBACK"] == str(run.feedback_file)
    assert (env["BOSS_ITERATION"], env["BOSS_STRATEGY"]) == ("2", "1")
    assert env["BOSS_SCOPE"] == "^src/a/\n^tests/a/"
    assert env["BOSS_PYTHON"] == sys.executable
    assert all(isinstance(v, str) for v in env.values())


def test_a_command_profile_runs_in_the_worktree_with_the_spec_environment(tmp_path):
    run = make_run(tmp_path)
    config_dir = run.repo / ".boss"
    config_dir.mkdir()
    dump = " ".join(f'echo "{v}=${v}";' for v in SPEC_VARS)
    (config_dir / "config.yaml").write_text(
        "agents:\n  mybot:\n"
        f'    command: \'{dump} echo "PWD=$PWD"; echo "STDIN=$(cat)"; echo "TOKEN=$MY_TOKEN"\'\n'
        "    env: {MY_TOKEN: 42}\n"
    )
    profile = get_profile("mybot", load_config(run.repo))
    assert isinstance(profile, CommandProfile)
    inv = profile.invocation(run)
    env = {**os.environ, **agent_env(run), **inv.env}
    log = tmp_path / "agent.log"
    outcome = run_group(inv.argv, cwd=run.worktree, env=env, log_path=log, timeout=10)
    assert outcome.exit_code == 0
    seen = dict(line.split("=", 1) for line in log.read_text().splitlines() if "=" in line)
    for var in SPEC_VARS:
        if var != "BOSS_SCOPE":  # two lines; its first line is checked below
            assert seen[var] == agent_env(run)[var], var
    assert seen["BOSS_SCOPE"] == "^src/a/"
    assert seen["PWD"] == str(run.worktree)
    assert seen["STDIN"] == ""  # stdin is closed: cat returns at once
    assert seen["TOKEN"] == "42"


def test_command_profile_usage_and_final_text():
    profile = CommandProfile("mybot", "true")
    output = 'working\n{"usage": {"cost_usd": 0.5, "input_tokens": 10}}\n{"output_tokens": 3}\n'
    assert profile.usage(output) == {"cost_usd": 0.5, "input_tokens": 10, "output_tokens": 3}
    assert profile.final_text(output) == output


def test_command_profile_planner_uses_the_read_only_command(tmp_path):
    prompt = tmp_path / "plan-prompt.md"
    own = CommandProfile("mybot", "edit-things", read_only_command="plan-things", env={"A": "1"})
    inv = own.planner_invocation(prompt, tmp_path)
    assert inv.argv == ["bash", "-c", "plan-things"]
    assert inv.env == {"A": "1", "BOSS_PROMPT": str(prompt)}
    fallback = CommandProfile("mybot", "edit-things").planner_invocation(prompt, tmp_path)
    assert fallback.argv == ["bash", "-c", "edit-things"]


def test_usage_from_json_lines():
    assert usage_from_json_lines("") == {}
    assert usage_from_json_lines('no json\n{broken\n[1]\n"text"\n') == {}
    text = '{"cost_usd": 1, "input_tokens": "many"}\n  {"usage": {"cost_usd": 2.5}}  \n'
    assert usage_from_json_lines(text) == {"cost_usd": 2.5}  # the last report wins
    assert usage_from_json_lines('{"usage": "n/a", "output_tokens": 9}') == {"output_tokens": 9}


def test_the_builtin_profiles():
    assert set(builtin_names()) >= {"scripted", "claude", "codex", "aider", "gemini", "opencode"}
    for name in ("claude", "codex", "aider", "gemini", "opencode"):
        assert get_profile(name, Config()).name == name


def test_a_project_profile_overrides_a_builtin_one(tmp_path):
    repo = make_repo(tmp_path / "repo")
    (repo / ".boss").mkdir()
    (repo / ".boss" / "config.yaml").write_text("agents:\n  claude: my-claude-wrapper\n")
    profile = get_profile("claude", load_config(repo))
    assert isinstance(profile, CommandProfile) and profile.command == "my-claude-wrapper"


def test_an_unknown_profile_names_the_known_ones(tmp_path):
    repo = make_repo(tmp_path / "repo")
    (repo / ".boss").mkdir()
    (repo / ".boss" / "config.yaml").write_text("agents:\n  mybot: run-it\n")
    with pytest.raises(ConfigError) as e:
        get_profile("nobody", load_config(repo))
    message = str(e.value)
    assert "'nobody'" in message and ".boss/config.yaml" in message
    assert "mybot" in message and "claude" in message and "scripted" in message
    assert e.value.exit_code == 2


def test_the_scripted_profile_edits_as_its_script_says(tmp_path):
    script = '```agent-script\n- write: {a.txt: "one\\n"}\n- write: {b.txt: "two\\n"}\n  print: second\n```'
    run = make_run(tmp_path, context=f"# W1\n\n{script}\n")
    profile = ScriptedProfile()
    inv = profile.invocation(run)
    log = tmp_path / "agent.log"
    env = {**os.environ, **agent_env(run), **inv.env}
    outcome = run_group(inv.argv, cwd=run.worktree, env=env, log_path=log, timeout=30)
    assert outcome.exit_code == 0
    assert (run.worktree / "b.txt").read_text() == "two\n"  # iteration 2: the second step
    assert not (run.worktree / "a.txt").exists()
    assert "second" in profile.final_text(log.read_text())
    assert profile.usage(log.read_text()) == {}
    with pytest.raises(ConfigError, match="cannot plan"):
        profile.planner_invocation(run.prompt_file, run.repo)
