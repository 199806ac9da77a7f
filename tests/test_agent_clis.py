"""The built-in profiles of the real agent CLIs, run against faithful fakes on PATH."""

from __future__ import annotations

import json
import os
import re
import sys
import time
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import git, make_repo

from boss.core import approvals as ap
from boss.core import git as bgit
from boss.core import statelog
from boss.core.errors import StateError
from boss.core.paths import PlanPaths
from boss.core.proc import Outcome, pid_alive, run_group
from worker.agents import registry as agent_clis
from worker.agents.clis import opencode as opencode_clis
from worker.agents.profile import AgentRun, Invocation, agent_env
from worker.agents.registry import PROFILES

FAKES = Path(__file__).parent / "fakes" / "bin"
SCRIPT = """```agent-script
- write: {src/calc/add.py: "def add(a, b):\\n    return a + b\\n"}
  print: Implemented add().
```"""
FULL = {"cost_usd": 0.0123, "input_tokens": 1000, "output_tokens": 200}
TOKENS = {"input_tokens": 1000, "output_tokens": 200}
USAGE = {
    "claude": FULL,
    "codex": TOKENS,
    "aider": {**TOKENS, "cost_usd": 0.01},  # the console rounds; run_usage() is exact
    "gemini": TOKENS,
    "opencode": FULL,
}
PLAN_YAML = "version: 1\nplan: demo\ntask: Add numbers\nworkers:\n  - id: W1\n"
HOOKED = (
    "claude",
    "codex",
    "gemini",
    "opencode",
)  # the CLIs whose hook runs the guard (worker.agents.enforce)


def make_run(
    tmp_path: Path,
    script: str = SCRIPT,
    *,
    iteration: int = 1,
    padding: int = 0,
    test: str = "python -m pytest -q",
) -> AgentRun:
    """A real repository, a worktree on its own branch, and the worker's files for one run."""
    repo = make_repo(
        tmp_path / "repo",
        {"README.md": "# calc\n", "src/calc/__init__.py": "", "docs/notes.md": "notes\n"},
    )
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "feat/w1", str(wt))
    wdir = repo / ".boss" / "plans" / "p" / "workers" / "W1"
    context = f"# W1: Calculator\n\nImplement add() in src/calc/.\n\n{script}\n"
    prompt = context + "\n# Iteration 1 (strategy 1)\n" + "x" * padding
    files = {"CONTEXT.md": context, "attempts/s1i1/prompt.md": prompt, "feedback.md": ""}
    for rel, text in files.items():
        (wdir / rel).parent.mkdir(parents=True, exist_ok=True)
        (wdir / rel).write_text(text)
    return AgentRun(
        plan="p", worker_id="W1", repo=repo, worktree=wt, context_file=wdir / "CONTEXT.md",
        prompt_file=wdir / "attempts/s1i1/prompt.md", feedback_file=wdir / "feedback.md",
        config_dir=wdir / "agent", iteration=iteration, strategy=1, scope=("^src/calc/",),
        test_command=test, timeout=60,
    )  # fmt: skip


def fake_env(tmp_path: Path, run: AgentRun | None, inv: Invocation, **extra: str) -> dict[str, str]:
    """The worker's environment for the agent, with the fakes first on PATH."""
    env = {**os.environ, **(agent_env(run) if run else {"BOSS_PYTHON": sys.executable}), **inv.env}
    env["PATH"] = f"{FAKES}{os.pathsep}{os.environ['PATH']}"
    env["FAKE_CLI_RECORD"] = str(tmp_path / "record.jsonl")
    return {**env, **extra}


def run_fake(
    tmp_path: Path,
    inv: Invocation,
    cwd: Path,
    run: AgentRun | None = None,
    *,
    env: dict[str, object] | None = None,
    timeout: float = 30,
    stall: float | None = None,
) -> tuple[Outcome, str]:
    """Run an invocation as the worker does: own process group, stdin closed, one log."""
    full = fake_env(tmp_path, run, inv, **{k: str(v) for k, v in (env or {}).items()})
    log = tmp_path / "agent.log"
    outcome = run_group(inv.argv, cwd=cwd, env=full, log_path=log, timeout=timeout, stall=stall)
    return outcome, log.read_text()


def records(tmp_path: Path) -> list[dict]:
    path = tmp_path / "record.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def run_cli(tmp_path: Path, argv: list[str], cwd: Path, **env: str) -> tuple[int, str]:
    """Run a fake directly (stdin closed), as a test of the fake itself."""
    outcome, log = run_fake(tmp_path, Invocation(argv), cwd, env=env)
    return outcome.exit_code, log


# --- every profile, end to end ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_profile_runs_its_cli_headless_and_reads_its_output(tmp_path, name):
    run = make_run(tmp_path)
    profile = PROFILES[name]
    inv = profile.invocation(run)
    assert inv.argv[0] == name
    outcome, log = run_fake(tmp_path, inv, run.worktree, run)
    assert outcome.exit_code == 0, log
    # The scripted edit happened in the worktree, and nothing else changed there.
    assert (run.worktree / "src/calc/add.py").read_text().startswith("def add(a, b):")
    assert bgit.worktree_changes(run.worktree) == ["src/calc/add.py"]
    assert profile.usage(log) == USAGE[name]
    assert profile.final_text(log).endswith("Implemented add().")
    (seen,) = records(tmp_path)
    assert run.prompt_file.read_text() in seen["input"]  # the prompt reached the model
    assert seen["stdin"] == "devnull"
    assert seen["cwd"] == str(run.worktree)
    # The guard judged the edit where the CLI has a hook (a new file in the worktree: TIER 1).
    judged = [e.result for e in statelog.read(PlanPaths.of(run.repo, "p").log) if e.action == "guard"]
    assert len(judged) == (1 if name in HOOKED else 0), judged
    assert all(r.startswith("tier1 allowed: ") and "src/calc/add.py" in r for r in judged)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_run_usage_is_the_runs_usage(tmp_path, name):
    run = make_run(tmp_path)
    profile = PROFILES[name]
    _, log = run_fake(tmp_path, profile.invocation(run), run.worktree, run)
    expected = FULL if name == "aider" else USAGE[name]  # aider's analytics log is exact
    assert profile.run_usage(run, log) == expected  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["claude", "codex", "gemini", "opencode"])
def test_a_prompt_too_long_for_argv_goes_by_file(tmp_path, name):
    run = make_run(tmp_path, padding=agent_clis.ARGV_PROMPT_LIMIT + 10)
    inv = PROFILES[name].invocation(run)
    assert all(len(a.encode()) < agent_clis.ARGV_PROMPT_LIMIT for a in inv.argv)
    assert any(str(run.prompt_file) in a for a in inv.argv)
    outcome, log = run_fake(tmp_path, inv, run.worktree, run)
    assert outcome.exit_code == 0, log[-2000:]
    assert (run.worktree / "src/calc/add.py").exists()


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_planner_runs_read_only_and_its_reply_is_the_final_text(tmp_path, name):
    run = make_run(tmp_path)
    inv = PROFILES[name].planner_invocation(run.prompt_file, run.repo)
    reply = f"Here is the plan:\n```yaml\n{PLAN_YAML}```\n"
    outcome, log = run_fake(tmp_path, inv, run.repo, env={"FAKE_PLANNER_REPLY": reply})
    assert outcome.exit_code == 0, log
    assert PLAN_YAML in PROFILES[name].final_text(log)
    # The prompt holds an agent-script that writes a file: a read-only run must not.
    assert not (run.repo / "src/calc/add.py").exists()
    assert git(run.repo, "status", "--porcelain", "--untracked-files=no") == ""


def test_claude_planner_cannot_read_credentials(tmp_path):
    run = make_run(tmp_path)
    argv = PROFILES["claude"].planner_invocation(run.prompt_file, run.repo).argv
    settings = json.loads(Path(argv[argv.index("--settings") + 1]).read_text())
    assert {"Read(~/.ssh)", "Read(~/.ssh/**)", "Read(**/.env)"} <= set(settings["permissions"]["deny"])
    assert argv[argv.index("--tools") + 1] == "Read,Grep,Glob"


def test_planner_reply_can_come_from_a_file(tmp_path):
    run = make_run(tmp_path)
    (tmp_path / "reply.md").write_text(PLAN_YAML)
    inv = PROFILES["codex"].planner_invocation(run.prompt_file, run.repo)
    _, log = run_fake(tmp_path, inv, run.repo, env={"FAKE_PLANNER_REPLY_FILE": tmp_path / "reply.md"})
    assert PROFILES["codex"].final_text(log) == PLAN_YAML


def test_missing_prompt_file_is_a_state_error(tmp_path):
    run = make_run(tmp_path)
    run.prompt_file.unlink()
    with pytest.raises(StateError, match="cannot read the agent's prompt"):
        PROFILES["codex"].invocation(run)


def test_extra_arguments_from_the_environment_and_no_bare_mode(tmp_path, monkeypatch):
    run = make_run(tmp_path)
    monkeypatch.setenv("BOSS_CLAUDE_ARGS", "--model 'claude opus'")
    monkeypatch.setenv("BOSS_CLAUDE_BARE", "1")  # gone: --bare skipped the guard's hook too
    monkeypatch.setenv("BOSS_CLAUDE_MAX_TURNS", "7")
    argv = PROFILES["claude"].invocation(run).argv
    assert argv[argv.index("--model") + 1] == "claude opus"
    assert argv[argv.index("--max-turns") + 1] == "7"
    assert "--bare" not in argv
    # The repository's settings stay out another way, and only judged tools exist (the real CLI
    # proves both: tests/contract/test_claude.py).
    assert argv[argv.index("--setting-sources") + 1] == "user"
    assert argv[argv.index("--tools") + 1] == "Bash,Edit,Write,NotebookEdit,Read,Grep,Glob"
    outcome, log = run_fake(tmp_path, Invocation(argv), run.worktree, run)
    assert outcome.exit_code == 0
    assert PROFILES["claude"].usage(log) == FULL


# --- stopping a run ---------------------------------------------------------------------------


def test_timeout_stops_the_whole_process_group(tmp_path):
    script = "```agent-script\n- run: 'sleep 60 & echo $! > child.pid; wait'\n```"
    run = make_run(tmp_path, script)
    start = time.monotonic()
    # 3 s: room for the fake CLI (Python, under coverage in CI) to start its child first.
    outcome, _ = run_fake(tmp_path, PROFILES["codex"].invocation(run), run.worktree, run, timeout=3.0)
    assert outcome.timed_out and outcome.exit_code != 0
    assert time.monotonic() - start < 10
    child = int((run.worktree / "child.pid").read_text())
    deadline = time.monotonic() + 3
    while pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(child)


def test_a_silent_agent_is_stopped_as_stalled(tmp_path):
    run = make_run(tmp_path, "```agent-script\n- sleep: 20\n```")
    start = time.monotonic()
    # The silence counts from the start: a stall of 3 s leaves a loaded machine the time to start
    # the fake CLI (its imports took over 0.5 s in a parallel run) and print its init event.
    outcome, log = run_fake(tmp_path, PROFILES["gemini"].invocation(run), run.worktree, run,
                            timeout=30, stall=3.0)  # fmt: skip
    assert outcome.stalled and not outcome.timed_out
    assert time.monotonic() - start < 15  # well before the agent's 20 s sleep would have ended
    assert '"type": "init"' in log  # it did start, then went quiet
    assert PROFILES["gemini"].usage(log) == {}  # no result event: nothing to report


# --- Claude Code ------------------------------------------------------------------------------


def test_claude_settings_allow_edits_and_the_test_and_call_the_guard(tmp_path):
    run = make_run(tmp_path)
    argv = PROFILES["claude"].invocation(run).argv
    settings_file = Path(argv[argv.index("--settings") + 1])
    assert settings_file.parent == run.config_dir  # outside the worktree: the agent cannot edit it
    settings = json.loads(settings_file.read_text())
    perms = settings["permissions"]
    assert perms["defaultMode"] == "dontAsk"
    assert {"Edit", "Bash(python -m pytest -q)", "Bash(python -m pytest -q *)"} <= set(perms["allow"])
    assert {"Bash(curl *)", "Bash(sudo *)", "WebFetch"} <= set(perms["deny"])  # the TIER 3 backstop
    hooks = [h["command"] for g in settings["hooks"]["PreToolUse"] for h in g["hooks"]]
    assert hooks and all("-m worker.autonomy.guard --agent claude --plan p --worker W1" in h for h in hooks)
    for flag in ("-p", "--verbose", "--", "--max-turns"):
        assert flag in argv
    assert argv[argv.index("--output-format") + 1] == "stream-json"
    assert argv[argv.index("--permission-mode") + 1] == "dontAsk"


# The worker's declared test: a command no rule knows (TIER 3 by default) that only the
# worker's overlay policy makes TIER 1. Each call appends its arguments to checks.log.
CHECKS = '#!/bin/sh\necho "$*" >> checks.log\n'
TIER_3 = "curl -s file:///dev/null > hacked.txt"  # network egress; harmless (and local) if it ran


def checks_env(tmp_path: Path) -> dict[str, object]:
    """PATH with a `run-checks` command first (the worker's test in these tests)."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    (folder / "run-checks").write_text(CHECKS)
    (folder / "run-checks").chmod(0o755)
    return {"PATH": os.pathsep.join([str(folder), str(FAKES), os.environ["PATH"]])}


@pytest.mark.parametrize("name", ["claude", "codex", "gemini", "opencode"])
def test_the_policy_lets_the_agent_run_its_test_and_blocks_tier_3(tmp_path, name):
    script = f"```agent-script\n- run: run-checks --quick\n- run: {TIER_3}\n- run: run-checks --all\n```"
    run = make_run(tmp_path, script, test="run-checks --quick")
    env = checks_env(tmp_path)
    for iteration in (1, 2, 3):
        step = replace(run, iteration=iteration)
        outcome, log = run_fake(tmp_path, PROFILES[name].invocation(step), run.worktree, step, env=env)
        assert outcome.exit_code == 0, log
    assert not (run.worktree / "hacked.txt").exists()  # TIER 3: blocked in every CLI
    ran = (run.worktree / "checks.log").read_text().splitlines()
    requests = [r.command for r in ap.list_requests(PlanPaths.of(run.repo, "p").approvals_dir)]
    # The guard judged each command: the declared test ran, an undeclared one is TIER 3.
    assert ran == ["--quick"]
    assert "run-checks --all" in requests
    if name in ("claude", "codex", "opencode"):  # Gemini's static policy denies curl before its hook runs
        assert TIER_3 in requests


def hook_settings(tmp_path: Path, hook: str, **perms: list[str]) -> Path:
    """A settings file whose PreToolUse hook for Bash is the given bash snippet."""
    script = tmp_path / "hook.sh"
    script.write_text(f"#!/usr/bin/env bash\ncat > {tmp_path}/hook-input.json\n{hook}\n")
    script.chmod(0o755)
    data = {"permissions": perms,
            "hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": str(script)}]}]}}  # fmt: skip
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(data))
    return path


def claude_argv(settings: Path, prompt: str) -> list[str]:
    return ["claude", "-p", "--output-format", "stream-json", "--verbose", "--permission-mode",
            "dontAsk", "--settings", str(settings), "--", prompt]  # fmt: skip


def claude_result(log: str) -> dict:
    return [e for e in map(json.loads, log.splitlines()) if e.get("type") == "result"][-1]


RUN_TOUCH = "```agent-script\n- run: touch ran.txt\n```"
DENY_JSON = '{"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "%s", "permissionDecisionReason": "policy says so"}}'


@pytest.mark.parametrize(
    ("hook", "allow", "ran", "denied"),
    [
        ("echo 'blocked: tier 3' >&2; exit 2", ["Bash(touch *)"], False, True),  # exit 2 blocks
        ("exit 1", ["Bash(touch *)"], True, False),  # other exits are non-blocking
        ("exit 1", [], False, True),  # ... and dontAsk then refuses what no rule allows
        (f"echo '{DENY_JSON % 'deny'}'", ["Bash(touch *)"], False, True),
        (f"echo '{DENY_JSON % 'allow'}'", [], True, False),  # a hook allow needs no rule
        (f"echo '{DENY_JSON % 'ask'}'", ["Bash(touch *)"], False, True),  # -p cannot ask
    ],
)
def test_claude_fake_honours_pre_tool_use_hooks(tmp_path, hook, allow, ran, denied):
    repo = make_repo(tmp_path / "repo")
    settings = hook_settings(tmp_path, hook, allow=allow)
    code, log = run_cli(tmp_path, claude_argv(settings, RUN_TOUCH), repo)
    assert code == 0, log
    assert (repo / "ran.txt").exists() is ran
    assert bool(claude_result(log)["permission_denials"]) is denied
    payload = json.loads((tmp_path / "hook-input.json").read_text())
    assert set(payload) == {"session_id", "transcript_path", "cwd", "permission_mode",
                            "hook_event_name", "tool_name", "tool_input", "tool_use_id"}  # fmt: skip
    assert payload["hook_event_name"] == "PreToolUse" and payload["tool_name"] == "Bash"
    assert payload["tool_input"]["command"] == "touch ran.txt"
    assert payload["permission_mode"] == "dontAsk" and payload["cwd"] == str(repo)


def test_claude_deny_rules_beat_a_hook_allow(tmp_path):
    repo = make_repo(tmp_path / "repo")
    settings = hook_settings(tmp_path, f"echo '{DENY_JSON % 'allow'}'", deny=["Bash(touch *)"])
    _, log = run_cli(tmp_path, claude_argv(settings, RUN_TOUCH), repo)
    assert not (repo / "ran.txt").exists()
    assert claude_result(log)["permission_denials"]


def test_claude_defer_stops_the_run_with_the_deferred_tool_use(tmp_path):
    repo = make_repo(tmp_path / "repo")
    settings = hook_settings(tmp_path, f"echo '{DENY_JSON % 'defer'}'", allow=["Bash(touch *)"])
    code, log = run_cli(tmp_path, claude_argv(settings, RUN_TOUCH), repo)
    result = claude_result(log)
    assert code == 0 and not (repo / "ran.txt").exists()
    assert result["stop_reason"] == "tool_deferred"
    assert result["deferred_tool_use"]["input"]["command"] == "touch ran.txt"


def test_claude_compound_commands_need_every_part_allowed(tmp_path):
    repo = make_repo(tmp_path / "repo")
    script = "```agent-script\n- run: touch a.txt && rm -rf b\n- run: ls && touch c.txt\n```"
    settings = tmp_path / "s.json"
    settings.write_text(json.dumps({"permissions": {"allow": ["Bash(touch *)"]}}))
    _, log = run_cli(tmp_path, claude_argv(settings, script), repo)
    assert not (repo / "a.txt").exists() and claude_result(log)["permission_denials"]
    _, log = run_cli(tmp_path, claude_argv(settings, script), repo, BOSS_ITERATION="2")
    assert (repo / "c.txt").exists()  # ls is in the built-in read-only set


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-p", "--output-format", "stream-json", "--", "hi"],
         "Error: When using --print, --output-format=stream-json requires --verbose"),
        (["-p", "--output-format", "stream-json", "--verbose"],
         "Error: Input must be provided either through stdin or as a prompt argument"),
        (["-p", "--frobnicate", "--", "hi"], "error: unknown option '--frobnicate'"),
        (["-p", "--permission-mode", "yolo", "--", "hi"], "invalid choice: 'yolo'"),
    ],
)  # fmt: skip
def test_claude_fake_fails_like_the_real_cli(tmp_path, argv, message):
    code, log = run_cli(tmp_path, ["claude", *argv], tmp_path)
    assert code == 1
    assert message in log


def test_claude_max_turns_ends_in_an_error_result(tmp_path):
    repo = make_repo(tmp_path / "repo")
    script = "```agent-script\n- write: {a.txt: a, b.txt: b, c.txt: c}\n```"
    argv = ["claude", "-p", "--output-format", "stream-json", "--verbose", "--permission-mode",
            "acceptEdits", "--max-turns", "2", "--", script]  # fmt: skip
    code, log = run_cli(tmp_path, argv, repo)
    assert code == 1 and claude_result(log)["subtype"] == "error_max_turns"
    assert (repo / "a.txt").exists() and not (repo / "b.txt").exists()


# --- Codex ------------------------------------------------------------------------------------


def test_codex_invocation_flags(tmp_path, monkeypatch):
    run = make_run(tmp_path)
    argv = PROFILES["codex"].invocation(run).argv
    assert argv[:3] == ["codex", "exec", "--json"]
    assert argv[argv.index("--sandbox") + 1] == "workspace-write"
    assert argv[argv.index("-C") + 1] == str(run.worktree)
    assert "sandbox_workspace_write.network_access=false" in argv
    assert "--full-auto" not in argv and "--skip-git-repo-check" in argv
    assert argv[-2] == "--"
    # Enforcement: the guard as a PreToolUse hook, which Codex runs only when trusted.
    overrides = [argv[i + 1] for i, a in enumerate(argv) if a == "-c"]
    inline = next(o for o in overrides if o.startswith("hooks.PreToolUse="))
    groups = tomllib.loads("v = " + inline.partition("=")[2])["v"]
    assert re.fullmatch(groups[0]["matcher"], "Bash") and re.fullmatch(groups[0]["matcher"], "apply_patch")
    assert "-m worker.autonomy.guard --agent codex" in groups[0]["hooks"][0]["command"]
    assert "--dangerously-bypass-hook-trust" in argv  # always: untrusted hooks are skipped silently
    monkeypatch.setenv("BOSS_CODEX_TRUST_HOOKS", "0")  # the old knob for running unguarded is gone
    assert "--dangerously-bypass-hook-trust" in PROFILES["codex"].invocation(run).argv
    # Inside boss's sandbox (/tmp read-only but the run's TMPDIR), Codex's own leaves /tmp out of
    # its writable roots: it could not make its mount point /tmp/.git there (tests/contract).
    assert "sandbox_workspace_write.exclude_slash_tmp=true" not in argv
    confined = PROFILES["codex"].invocation(replace(run, confined=True)).argv
    assert confined[confined.index("sandbox_workspace_write.exclude_slash_tmp=true") - 1] == "-c"
    assert "allow_login_shell=false" in argv  # the login shell's /etc/profile resets PATH


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["exec", "--json", "--skip-git-repo-check"], 1, "No prompt provided via stdin."),
        (["exec", "--json", "-a", "never", "--", "hi"], 2, "error: unexpected argument '-a' found"),
        (["exec", "--sandbox", "open", "--", "hi"], 2, "invalid choice: 'open'"),
        (["--", "hi"], 1, "Error: stdin is not a terminal"),
        (["exec", "--json", "--", "hi"], 1, "Not inside a trusted directory"),
    ],
)
def test_codex_fake_fails_like_the_real_cli(tmp_path, argv, code, message):
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    got, log = run_cli(tmp_path, ["codex", *argv], outside)
    assert got == code
    assert message in log


def hook_script(tmp_path: Path, hook: str) -> Path:
    """A hook command that saves its input to hook-input.json, then runs the bash snippet."""
    script = tmp_path / "hook.sh"
    script.write_text(f"#!/usr/bin/env bash\ncat > {tmp_path}/hook-input.json\n{hook}\n")
    script.chmod(0o755)
    return script


def codex_events(log: str) -> list[dict]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


def codex_hook_argv(script: Path, *extra: str) -> list[str]:
    hooks = f'[{{matcher = "Bash|apply_patch", hooks = [{{type = "command", command = "{script}", timeout = 30}}]}}]'
    return ["codex", "exec", "--json", "--sandbox", "workspace-write", "-c", f"hooks.PreToolUse={hooks}",
            *extra, "--"]  # fmt: skip


@pytest.mark.parametrize(
    ("hook", "extra", "ran"),
    [
        ("echo 'blocked: tier 3' >&2; exit 2", ["--dangerously-bypass-hook-trust"], False),
        ("echo 'blocked: tier 3' >&2; exit 2", [], True),  # untrusted: skipped without a word
        ("echo 'no' >&2; exit 2", ["--dangerously-bypass-hook-trust", "-c", "features.hooks=false"], True),
        ("exit 2", ["--dangerously-bypass-hook-trust"], True),  # no reason on stderr: a failure
        ("echo 'no' >&2; exit 1", ["--dangerously-bypass-hook-trust"], True),  # other exits: failures
        (f"echo '{DENY_JSON % 'deny'}'", ["--dangerously-bypass-hook-trust"], False),
        ("""echo '{"decision": "block", "reason": "no"}'""", ["--dangerously-bypass-hook-trust"], False),
        (f"echo '{DENY_JSON % 'ask'}'", ["--dangerously-bypass-hook-trust"], True),  # ask: unsupported
    ],
)
def test_codex_fake_runs_pre_tool_use_hooks_only_when_trusted(tmp_path, hook, extra, ran):
    repo = make_repo(tmp_path / "repo")
    code, log = run_cli(tmp_path, [*codex_hook_argv(hook_script(tmp_path, hook), *extra), RUN_TOUCH], repo)
    assert code == 0, log
    assert (repo / "ran.txt").exists() is ran
    items = [e["item"] for e in codex_events(log)
             if e["type"] == "item.completed" and e["item"]["type"] == "command_execution"]  # fmt: skip
    assert [i["status"] for i in items] == (["completed"] if ran else [])  # a blocked call: no item
    assert ("Command blocked by PreToolUse hook" in log) is not ran
    called = (tmp_path / "hook-input.json").exists()
    assert called is ("--dangerously-bypass-hook-trust" in extra and "features.hooks=false" not in extra)
    if called:
        payload = json.loads((tmp_path / "hook-input.json").read_text())
        assert set(payload) == {"session_id", "turn_id", "transcript_path", "cwd", "hook_event_name", "model",
                                "permission_mode", "tool_name", "tool_input", "tool_use_id"}  # fmt: skip
        assert payload["hook_event_name"] == "PreToolUse" and payload["cwd"] == str(repo)
        assert (payload["tool_name"], payload["tool_input"]) == ("Bash", {"command": "touch ran.txt"})


def test_codex_fake_sends_edits_to_the_hook_as_apply_patch(tmp_path):
    repo = make_repo(tmp_path / "repo")
    script = hook_script(tmp_path, "echo 'blocked: outside' >&2; exit 2")
    argv = [*codex_hook_argv(script, "--dangerously-bypass-hook-trust"), SCRIPT]
    code, log = run_cli(tmp_path, argv, repo)
    assert code == 0 and not (repo / "src/calc/add.py").exists()
    changes = [e["item"] for e in codex_events(log) if e.get("item", {}).get("type") == "file_change"]
    assert changes == [] and "Command blocked by PreToolUse hook: blocked: outside" in log
    payload = json.loads((tmp_path / "hook-input.json").read_text())
    assert payload["tool_name"] == "apply_patch"
    patch = payload["tool_input"]["command"]
    assert patch.startswith("*** Begin Patch\n*** Add File: src/calc/add.py\n+def add(a, b):\n")
    assert patch.endswith("*** End Patch\n")


def test_codex_cannot_write_git_metadata_and_a_failed_step_fails_the_turn(tmp_path):
    repo = make_repo(tmp_path / "repo")
    script = "```agent-script\n- write: {.git/hooks/pre-commit: 'echo pwned'}\n  exit: 1\n```"
    argv = ["codex", "exec", "--json", "--sandbox", "workspace-write", "--", script]
    code, log = run_cli(tmp_path, argv, repo)
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    changes = [e["item"] for e in events if e.get("item", {}).get("type") == "file_change"]
    assert changes[0]["status"] == "failed"
    assert not (repo / ".git/hooks/pre-commit").exists()
    assert code == 1 and events[-1]["type"] == "turn.failed"
    assert PROFILES["codex"].usage(log) == {}


# --- Aider ------------------------------------------------------------------------------------


def test_aider_invocation_keeps_aider_hands_off_git(tmp_path):
    run = make_run(tmp_path)
    argv = PROFILES["aider"].invocation(run).argv
    for flag in ("--yes-always", "--no-auto-commits", "--no-dirty-commits", "--no-gitignore",
                 "--no-pretty", "--no-stream", "--no-analytics"):  # fmt: skip
        assert flag in argv
    assert argv[argv.index("--message-file") + 1] == str(run.prompt_file)
    assert argv[argv.index("--analytics-log") + 1] == str(run.config_dir / "state" / "aider-analytics.jsonl")
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--file"] == ["src/calc/__init__.py"]
    exclude = bgit.common_dir(run.repo) / "info" / "exclude"
    assert ".aider*" in exclude.read_text().splitlines()


def test_aider_gets_no_url_scraping_no_config_commands_and_the_frozen_test_read_only(tmp_path):
    frozen = replace(make_run(tmp_path), frozen=("src/calc/__init__.py", "docs"))
    argv = PROFILES["aider"].invocation(frozen).argv
    for flag in ("--no-detect-urls", "--no-auto-lint", "--no-auto-test"):
        assert flag in argv
    read = [argv[i + 1] for i, a in enumerate(argv) if a == "--read"]
    assert read == ["docs/notes.md", "src/calc/__init__.py"]  # a frozen folder: its tracked files
    assert "--file" not in argv  # the one file in scope is the frozen test
    before_red = replace(frozen, frozen=())  # a write_test worker's first run writes the test
    argv = PROFILES["aider"].invocation(before_red).argv
    assert "--read" not in argv and argv[argv.index("--file") + 1] == "src/calc/__init__.py"
    assert PROFILES["aider"].tool_calls("Applied edit to a.py\nApplied edit to b.py\n") == 2


def test_aider_exits_0_even_when_it_failed_and_never_runs_shell_commands(tmp_path):
    script = "```agent-script\n- run: touch ran.txt\n  exit: 1\n```"
    run = make_run(tmp_path, script)
    outcome, log = run_fake(tmp_path, PROFILES["aider"].invocation(run), run.worktree, run)
    assert outcome.exit_code == 0
    assert "the model failed" in log
    assert not (run.worktree / "ran.txt").exists()
    assert bgit.worktree_changes(run.worktree) == []
    assert git(run.worktree, "rev-list", "--count", "HEAD") == "1"


def test_aider_defaults_would_touch_gitignore_and_commit(tmp_path):
    """Why the profile turns them off: the fake models aider's defaults."""
    repo = make_repo(tmp_path / "repo")
    code, _ = run_cli(tmp_path, ["aider", "--message", SCRIPT, "--yes-always"], repo)
    assert code == 0
    assert ".aider*" in (repo / ".gitignore").read_text()
    assert (repo / ".aider.chat.history.md").exists()
    assert git(repo, "log", "-1", "--format=%an %s").endswith("(aider) feat: apply the requested changes")


def test_aider_files_are_the_tracked_files_in_scope_capped(tmp_path):
    files = {f"src/m{i:02}.py": "" for i in range(60)} | {"docs/a.md": "", "src.txt": ""}
    repo = make_repo(tmp_path / "repo", files)
    found = agent_clis.scope_files(repo, ("^src/",))
    assert found == [f"src/m{i:02}.py" for i in range(50)]
    assert agent_clis.scope_files(repo, ("^docs/", r"\.txt$"), limit=5) == ["docs/a.md", "src.txt"]


def test_aider_fake_rejects_unknown_flags_and_unreadable_message_files(tmp_path):
    code, log = run_cli(tmp_path, ["aider", "--bogus"], tmp_path)
    assert code == 2 and "aider: error: unrecognized arguments: --bogus" in log
    code, log = run_cli(tmp_path, ["aider", "--message-file", str(tmp_path / "nope.md")], tmp_path)
    assert code == 1 and "Error reading message file" in log


# --- Gemini CLI -------------------------------------------------------------------------------


def test_gemini_invocation_flags_and_trust(tmp_path):
    run = make_run(tmp_path)
    inv = PROFILES["gemini"].invocation(run)
    assert inv.argv[1] == f"--prompt={run.prompt_file.read_text()}"
    assert inv.argv[inv.argv.index("--approval-mode") + 1] == "auto_edit"
    assert "--skip-trust" in inv.argv and inv.env["GEMINI_CLI_TRUST_WORKSPACE"] == "true"
    policy = Path(inv.argv[inv.argv.index("--policy") + 1])
    assert policy.parent == run.config_dir  # outside the worktree
    rules = tomllib.loads(policy.read_text())["rule"]
    assert {"commandPrefix": ["python -m pytest -q"], "decision": "allow"}.items() <= next(
        r for r in rules if "commandPrefix" in r
    ).items()
    # commandPrefix, not commandRegex: Gemini prepends `"command":"` to a regex (no ^ anchor).
    assert not any("commandRegex" in r for r in rules)
    assert any(r["decision"] == "deny" and "curl" in r.get("commandPrefix", []) for r in rules)
    assert "GEMINI_CLI_SYSTEM_SETTINGS_PATH" not in inv.env  # skipped unless root-owned
    settings = json.loads((run.worktree / ".gemini" / "settings.json").read_text())
    hook = settings["hooks"]["BeforeTool"][0]
    assert re.fullmatch(hook["matcher"], "run_shell_command") and re.fullmatch(hook["matcher"], "write_file")
    assert "-m worker.autonomy.guard --agent gemini" in hook["hooks"][0]["command"]
    assert settings["hooksConfig"]["enabled"] is True
    empty = make_run(tmp_path / "no-test", test="")
    argv = PROFILES["gemini"].invocation(empty).argv
    text = Path(argv[argv.index("--policy") + 1]).read_text()
    assert 'decision = "allow"\npriority = 500' not in text and "curl" in text  # no test; TIER 3 denied
    code, log = run_cli(tmp_path, ["gemini", "-p", "hi", "--output-format", "stream-json"], tmp_path)
    assert code == 55 and "not running in a trusted directory" in log


def test_gemini_runs_shell_commands_only_where_a_policy_allows(tmp_path):
    repo = make_repo(tmp_path / "repo")
    policy = tmp_path / "policy.toml"
    policy.write_text('[[rule]]\ntoolName = "run_shell_command"\ncommandPrefix = ["touch"]\n'
                      'decision = "allow"\npriority = 500\n'
                      '[[rule]]\ntoolName = "run_shell_command"\ncommandRegex = "touch .*evil"\n'
                      'decision = "deny"\npriority = 900\ndenyMessage = "ask a human"\n')  # fmt: skip
    script = "```agent-script\n- run: touch a.txt\n- run: touch evil.txt\n- run: ls && rm -f x\n```"
    base = ["gemini", f"--prompt={script}", "--output-format", "stream-json", "--skip-trust",
            "--approval-mode", "auto_edit"]  # fmt: skip
    for iteration, created in (("1", "a.txt"), ("2", None), ("3", None)):
        code, log = run_cli(tmp_path, [*base, "--policy", str(policy)], repo, BOSS_ITERATION=iteration)
        assert code == 0
        if created:
            assert (repo / created).exists()
    assert not (repo / "evil.txt").exists()
    assert "ask a human" in log or "denied by policy" in log
    code, log = run_cli(tmp_path, base, repo, BOSS_ITERATION="1")
    assert "denied by policy (ask_user)" in log  # no policy: headless shell is refused


@pytest.mark.parametrize(
    ("hook", "enabled", "ran"),
    [
        ("echo 'blocked: tier 3' >&2; exit 2", True, False),
        ("""echo '{"decision": "deny", "reason": "blocked: tier 3"}'""", True, False),
        ("echo '{}'", True, True),
        ("echo 'broken' >&2; exit 1", True, True),  # other exits: a warning, the call goes on
        ("echo 'blocked: tier 3' >&2; exit 2", False, True),  # hooksConfig.enabled false
    ],
)
def test_gemini_fake_runs_before_tool_hooks_from_the_project_settings(tmp_path, hook, enabled, ran):
    repo = make_repo(tmp_path / "repo")
    settings = repo / ".gemini" / "settings.json"
    settings.parent.mkdir()
    group = {"matcher": "run_shell_command|write_file", "hooks": [
        {"type": "command", "command": str(hook_script(tmp_path, hook)), "timeout": 30000}]}  # fmt: skip
    settings.write_text(json.dumps({"hooksConfig": {"enabled": enabled}, "hooks": {"BeforeTool": [group]}}))
    policy = tmp_path / "policy.toml"
    policy.write_text('[[rule]]\ntoolName = "run_shell_command"\ncommandPrefix = ["touch"]\n'
                      'decision = "allow"\npriority = 500\n')  # fmt: skip
    argv = ["gemini", f"--prompt={RUN_TOUCH}", "--output-format", "stream-json", "--skip-trust",
            "--approval-mode", "auto_edit"]  # fmt: skip
    env: dict[str, str] = {}
    code, log = run_cli(tmp_path, [*argv, "--policy", str(policy)], repo, **env)
    assert code == 0, log
    assert (repo / "ran.txt").exists() is ran
    if not ran:
        assert "blocked: tier 3" in log
    assert (tmp_path / "hook-input.json").exists() is enabled
    if enabled:
        payload = json.loads((tmp_path / "hook-input.json").read_text())
        assert set(payload) == {"session_id", "transcript_path", "cwd", "hook_event_name", "timestamp",
                                "tool_name", "tool_input"}  # fmt: skip
        assert (payload["hook_event_name"], payload["tool_name"]) == ("BeforeTool", "run_shell_command")
        assert payload["tool_input"]["command"] == "touch ran.txt" and payload["cwd"] == str(repo)
    (tmp_path / "hook-input.json").unlink(missing_ok=True)
    (repo / "ran.txt").unlink(missing_ok=True)
    run_cli(tmp_path, argv, repo, BOSS_ITERATION="1", **env)  # no policy: headless shell is denied
    assert (tmp_path / "hook-input.json").exists() is enabled  # ... after the hooks ran (0.61.0)
    assert not (repo / "ran.txt").exists()


def test_gemini_fake_skips_a_system_settings_file_that_is_not_root_owned(tmp_path):
    repo = make_repo(tmp_path / "repo")
    settings = tmp_path / "system-settings.json"  # under a world-writable /tmp, like 0.61.0 skips
    group = {"matcher": "run_shell_command", "hooks": [
        {"type": "command", "command": str(hook_script(tmp_path, "exit 2")), "timeout": 30000}]}  # fmt: skip
    settings.write_text(json.dumps({"hooks": {"BeforeTool": [group]}}))
    policy = tmp_path / "policy.toml"
    policy.write_text('[[rule]]\ntoolName = "run_shell_command"\ndecision = "allow"\npriority = 500\n')
    argv = ["gemini", f"--prompt={RUN_TOUCH}", "--output-format", "stream-json", "--skip-trust",
            "--approval-mode", "auto_edit", "--policy", str(policy)]  # fmt: skip
    code, log = run_cli(tmp_path, argv, repo, GEMINI_CLI_SYSTEM_SETTINGS_PATH=str(settings))
    assert code == 0 and "Skipping system settings file" in log
    assert (repo / "ran.txt").exists()  # the hook never ran


def test_gemini_fake_fails_like_the_real_cli(tmp_path):
    code, log = run_cli(tmp_path, ["gemini", "--frob", "--skip-trust", "-p", "x"], tmp_path)
    assert code == 1 and "Unknown argument: frob" in log
    code, log = run_cli(tmp_path, ["gemini", "--skip-trust"], tmp_path)
    assert code == 42 and "No input provided via stdin" in log


# --- OpenCode ---------------------------------------------------------------------------------


def test_opencode_invocation_flags(tmp_path):
    run = make_run(tmp_path)
    inv = PROFILES["opencode"].invocation(run)
    assert inv.argv[:4] == ["opencode", "run", "--format", "json"]
    assert inv.argv[inv.argv.index("--dir") + 1] == str(run.worktree)
    assert inv.env["OPENCODE_DISABLE_AUTOUPDATE"] == inv.env["OPENCODE_DISABLE_CLAUDE_CODE"] == "1"
    # Inline only: merged after the worktree's opencode.json, and the user's OPENCODE_CONFIG is kept.
    assert "OPENCODE_CONFIG" not in inv.env
    config = json.loads(inv.env["OPENCODE_CONFIG_CONTENT"])
    assert config["plugin"] == [opencode_clis.PLUGIN.as_uri()] and opencode_clis.PLUGIN.is_file()
    assert json.loads(inv.env["BOSS_OPENCODE_GUARD"])[-4:] == ["--worker", "W1", "--policy",
                                                              str(run.config_dir / "policy.yaml")]  # fmt: skip
    permission = json.loads(inv.env["OPENCODE_PERMISSION"])
    assert permission == config["permission"]
    assert next(iter(permission["bash"].items())) == ("*", "allow")  # first: the last match wins
    assert permission["bash"]["curl *"] == permission["bash"]["sudo *"] == "deny"
    assert permission["external_directory"] == permission["webfetch"] == "deny"
    assert "ask" not in json.dumps(permission)  # run rejects (or hangs on) "ask"


def test_opencode_guard_plugin_lets_opencodes_own_invalid_tool_answer(tmp_path, monkeypatch):
    """A call of a tool that does not exist reaches OpenCode's `invalid` tool, which only says so;
    the planner's plugin (no guard) refuses anything that can change a file."""
    from worker.agents.clis.opencode import PLUGIN

    monkeypatch.syspath_prepend(str(FAKES.parent))
    import fake_opencode

    monkeypatch.delenv("BOSS_OPENCODE_GUARD", raising=False)
    monkeypatch.setattr(fake_opencode, "plugins", lambda: [PLUGIN.as_uri()])
    assert fake_opencode.plugin_error("invalid", {"tool": "bash", "error": "unavailable"}, tmp_path) is None
    assert fake_opencode.plugin_error("read", {"filePath": "x"}, tmp_path) is None
    assert "read-only" in (fake_opencode.plugin_error("bash", {"command": "ls"}, tmp_path) or "")


def test_opencode_rejects_ask_headless_and_reports_it(tmp_path):
    repo = make_repo(tmp_path / "repo")
    script = "```agent-script\n- run: touch a.txt\n```"
    perms = json.dumps({"bash": {"*": "ask", "git status*": "allow"}})
    code, log = run_cli(tmp_path, ["opencode", "run", "--format", "json", "--", script], repo,
                        OPENCODE_PERMISSION=perms)  # fmt: skip
    assert code == 0 and not (repo / "a.txt").exists()
    (used,) = [e["part"]["state"] for e in map(json.loads, log.splitlines()) if e["type"] == "tool_use"]
    assert used["status"] == "error" and "rejected permission" in used["error"]
    code, log = run_cli(tmp_path, ["opencode", "run", "--format", "json", "--auto", "--", script],
                        repo, OPENCODE_PERMISSION=perms)  # fmt: skip
    assert (repo / "a.txt").exists()


def test_opencode_fake_fails_like_the_real_cli(tmp_path):
    code, log = run_cli(tmp_path, ["opencode", "run", "--format", "json"], tmp_path)
    assert code == 1 and "You must provide a message or a command" in log
    code, log = run_cli(tmp_path, ["opencode", "run", "--bogus", "x"], tmp_path)
    assert code == 1 and "Unknown argument: bogus" in log


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_worker_run_succeeds_with_each_builtin_profile(tmp_path, name):
    from conftest import worker_cmd
    from worker_helpers import make_plan, worker

    repo = make_repo(tmp_path / "repo", {"src/__init__.py": ""})
    paths, _ = make_plan(repo, [worker("W1", agent=name)])
    env = {"PATH": f"{FAKES}{os.pathsep}{os.environ['PATH']}", "BOSS_PYTHON": sys.executable}
    proc = worker_cmd("run", "p", "W1", cwd=repo, check=None, env=env)
    status = json.loads(paths.status("W1").read_text())
    assert status["state"] == "SUCCESS", (proc.stdout, proc.stderr)
    # the worker reads usage through run_usage(), exact for aider (its analytics log)
    assert status["usage"] == (FULL if name == "aider" else USAGE[name])
