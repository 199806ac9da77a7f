"""Per-agent enforcement files: rendered outside the worktree, and calling the guard for real."""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from pathlib import Path

import pytest
from conftest import git, write_files
from worker_helpers import make_plan, worker

from boss.core import approvals as ap
from worker.agents import enforce
from worker.agents.clis import claude, codex, gemini, opencode
from worker.agents.enforce import static_denies
from worker.agents.profile import AgentRun
from worker.agents.registry import LIMITS
from worker.autonomy.guard import hook_command
from worker.autonomy.policy import Policy
from worker.autonomy.policy_file import load_policy

RENDERERS = {
    "claude": claude.render,
    "codex": codex.render,
    "gemini": gemini.render,
    "opencode": opencode.render,
}


def render_enforcement(agent: str, run: AgentRun, policy: Policy) -> dict:
    """What the agent's profile renders for run (worker.agents.enforce with the CLI's own renderer)."""
    return enforce.render_enforcement(agent, run, policy, RENDERERS[agent])


@pytest.fixture(autouse=True)
def shared_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "boss-cache"))


@pytest.fixture
def run(repo: Path) -> AgentRun:
    paths, _m = make_plan(repo, [worker("W1")])
    wt = paths.worktree("W1")
    git(repo, "worktree", "add", "-q", "-b", "feat/w1", str(wt))
    folder = paths.worker_dir("W1")
    return AgentRun(
        plan="p", worker_id="W1", repo=repo, worktree=wt, context_file=paths.context("W1"),
        prompt_file=folder / "prompt.md", feedback_file=folder / "feedback.md",
        config_dir=paths.agent_config_dir("W1"), iteration=1, strategy=1, scope=("^src/",),
        test_command="ci-tests --quick src", timeout=60,
    )  # fmt: skip


def hook_env(run: AgentRun) -> dict[str, str]:
    return {**os.environ, "BOSS_REPO": str(run.repo), "BOSS_WORKTREE": str(run.worktree)}


def call(hook: str, run: AgentRun, command: str) -> subprocess.CompletedProcess[str]:
    """Run a rendered hook command line as the CLI does (a shell), with a Claude PreToolUse input."""
    payload = {"session_id": "s", "transcript_path": "/t", "cwd": str(run.worktree), "permission_mode": "dontAsk",
               "hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": command},
               "tool_use_id": "t"}  # fmt: skip
    return subprocess.run(["bash", "-c", hook], input=json.dumps(payload), capture_output=True, text=True,
                          cwd=run.worktree, env=hook_env(run))  # fmt: skip


def outside_worktree(run: AgentRun, files: list[str]) -> None:
    assert files
    for f in files:
        assert Path(f).is_file()
        assert not Path(f).resolve().is_relative_to(run.worktree.resolve())


def test_claude_settings_call_the_guard(run: AgentRun) -> None:
    out = render_enforcement("claude", run, load_policy(run.repo))
    outside_worktree(run, out["files"])
    assert out["args"] == [] and out["env"] == {}
    settings = json.loads(Path(out["settings"]).read_text())
    perms = settings["permissions"]
    assert perms["defaultMode"] == "dontAsk"
    assert {"Bash", "Read", "Edit", "Write"} <= set(perms["allow"])
    assert {"Bash(curl *)", "Bash(curl)", "Bash(sudo *)", "Bash(git push *)", "Bash(npm publish *)",
            "WebFetch", "WebSearch", "Read(~/.ssh/**)", "Read(**/.env)"} <= set(perms["deny"])  # fmt: skip
    assert "Bash(docker *)" not in perms["deny"]  # a fallback rule: `docker ps` is TIER 1
    assert not any(".env.*" in d for d in perms["deny"])  # would hide .env.example too
    groups = settings["hooks"]["PreToolUse"]
    assert [g["matcher"] for g in groups] == ["Bash", "Edit|Write|NotebookEdit"]
    hook = groups[0]["hooks"][0]
    assert hook["type"] == "command" and hook["timeout"] >= 60
    assert hook["command"] == hook_command("claude", "p", "W1", policy=run.config_dir / "policy.yaml")
    assert call(hook["command"], run, "ls").returncode == 0
    assert call(hook["command"], run, "curl https://x").returncode == 2


def test_the_workers_own_test_is_tier_1(run: AgentRun) -> None:
    out = render_enforcement("claude", run, load_policy(run.repo))
    hook = json.loads(Path(out["settings"]).read_text())["hooks"]["PreToolUse"][0]["hooks"][0]["command"]
    proc = call(hook, run, "ci-tests --quick src -x")
    assert proc.returncode == 0
    assert "worker-test-1" in proc.stdout
    assert call(hook, run, "ci-tests --slow").returncode == 2  # not the declared command


def test_an_approved_command_is_not_denied_statically(run: AgentRun) -> None:
    folder = run.repo / ".boss/plans/p/approvals"
    req = ap.request(folder, plan="p", worker="W1", command="curl https://example.com/data.json", reason="r",
                     rule="net-egress", cwd=str(run.worktree))  # fmt: skip
    policy = load_policy(run.repo)
    assert "Bash(curl *)" in json.loads(Path(render_enforcement("claude", run, policy)["settings"]).read_text())[
        "permissions"]["deny"]  # fmt: skip
    ap.decide(folder, req.id, approve=True)
    deny = json.loads(Path(render_enforcement("claude", run, policy)["settings"]).read_text())["permissions"][
        "deny"
    ]
    assert "Bash(curl *)" not in deny
    assert "Bash(sudo *)" in deny
    ap.consume(folder, "W1", req.command)
    deny = json.loads(Path(render_enforcement("claude", run, policy)["settings"]).read_text())["permissions"][
        "deny"
    ]
    assert "Bash(curl *)" in deny


def test_codex_hooks_and_rules(run: AgentRun) -> None:
    out = render_enforcement("codex", run, load_policy(run.repo))
    outside_worktree(run, out["files"])
    args = out["args"]
    assert "--dangerously-bypass-hook-trust" in args
    assert args[args.index("-c") + 1] == "features.hooks=true"
    inline = next(a for a in args if a.startswith("hooks.PreToolUse="))
    groups = tomllib.loads("v = " + inline.split("=", 1)[1])["v"]
    assert groups[0]["matcher"] == "Bash|apply_patch|shell"
    assert (
        call(
            groups[0]["hooks"][0]["command"].replace("--agent codex", "--agent claude"), run, "ls"
        ).returncode
        == 0
    )
    rules = Path(next(f for f in out["files"] if f.endswith(".rules"))).read_text()
    assert 'prefix_rule(pattern=["curl"], decision="forbidden"' in rules
    assert 'prefix_rule(pattern=["git", "push"], decision="forbidden"' in rules


def test_gemini_policy_and_settings(run: AgentRun) -> None:
    out = render_enforcement("gemini", run, load_policy(run.repo))
    outside_worktree(run, out["files"])
    rules = tomllib.loads(Path(out["policy"]).read_text())["rule"]
    allow = [r for r in rules if r["decision"] == "allow"]
    assert {"run_shell_command"} <= {r["toolName"] for r in allow if isinstance(r["toolName"], str)}
    deny = [r for r in rules if r["decision"] == "deny" and "commandPrefix" in r]
    assert all(r["priority"] > 100 and r["denyMessage"] for r in deny)
    assert not any("commandRegex" in r for r in rules)  # Gemini cannot anchor one

    def denied(command: str) -> bool:  # Gemini's match: the prefix, then a space or the end
        return any(command == p or command.startswith(p + " ") for r in deny for p in r["commandPrefix"])

    assert denied("curl https://x") and denied("git push origin main") and denied("sudo ls")
    assert not denied("ls") and not denied("git status") and not denied("curlie x")
    assert "GEMINI_CLI_SYSTEM_SETTINGS_PATH" not in out["env"]
    settings = json.loads((run.worktree / ".gemini" / "settings.json").read_text())
    group = settings["hooks"]["BeforeTool"][0]
    assert group["matcher"] == "run_shell_command|write_file|replace"
    assert "--agent gemini" in group["hooks"][0]["command"]


def test_opencode_permissions(run: AgentRun) -> None:
    out = render_enforcement("opencode", run, load_policy(run.repo))
    outside_worktree(run, out["files"])
    assert "OPENCODE_CONFIG" not in out["env"]  # the user's own (their provider) is kept
    config = json.loads(out["env"]["OPENCODE_CONFIG_CONTENT"])
    assert json.loads(Path(out["files"][-1]).read_text()) == config  # a copy, for the record
    assert config["plugin"][0].endswith("/opencode_guard.js")
    bash = config["permission"]["bash"]
    assert next(iter(bash)) == "*" and bash["*"] == "allow"  # first: the last match wins
    assert bash["curl *"] == bash["git push *"] == "deny"
    assert "ask" not in json.dumps(config)  # never ask headless
    assert config["permission"]["external_directory"] == "deny"


def test_every_cli_says_what_its_enforcement_cannot_do() -> None:
    assert set(LIMITS) == {"claude", "codex", "gemini", "opencode", "aider"}
    assert "tool.execute.before" in LIMITS["opencode"]


def test_a_project_rule_lifts_the_static_deny_of_its_command(run: AgentRun) -> None:
    write_files(run.repo, {".boss/policy.yaml": "rules:\n  - {id: local-curl, tier: 1, reason: local,"
                                                 " match: {command: [curl], operands_any: ['http://localhost*']}}\n"})  # fmt: skip
    prefixes = {p for _, ps in static_denies(load_policy(run.repo)) for p in ps}
    assert "curl" not in prefixes and "wget" in prefixes


def test_codex_hook_trust_is_always_bypassed(run: AgentRun, monkeypatch) -> None:
    # Untrusted hooks are skipped silently: the old BOSS_CODEX_TRUST_HOOKS=0 ran Codex unguarded.
    monkeypatch.setenv("BOSS_CODEX_TRUST_HOOKS", "0")
    out = render_enforcement("codex", run, load_policy(run.repo))
    assert "--dangerously-bypass-hook-trust" in out["args"]
    assert any(a.startswith("hooks.PreToolUse=") for a in out["args"])
