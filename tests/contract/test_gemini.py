"""Gemini CLI 0.61.0 under boss: the real binary, a scripted Gemini API, the real pipeline.

Gemini is pointed at the server by GOOGLE_GEMINI_BASE_URL and GEMINI_API_KEY, with the API-key
auth selected in the user's ~/.gemini/settings.json (the scratch HOME): boss's own hook lives in
the worktree's project settings, which Gemini merges with the user's, so the user's auth keeps
working. Usage: Gemini's `output_tokens` leaves thinking out, its `total_tokens` counts it; boss
reports output = total - input, which is what the server reported as candidates plus thoughts.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import wire_gemini
from mock_server import ModelServer, Usage, edit, say, shell, write
from pipeline import (
    FIXED,
    NEW_LINE,
    OLD_LINE,
    PLAN,
    agent_logs,
    approvals,
    boss,
    git,
    guard_events,
    plan,
    project,
    run_workers,
    status,
)

from worker.agents.clis.gemini import GeminiProfile, project_settings

# Gemini's usage statistics (Clearcut); off in the tests that assert no egress at all.
TELEMETRY = "CONNECT play.googleapis.com:443 HTTP/1.1"
SECRET = "-----BEGIN OPENSSH PRIVATE KEY----- not-a-real-key"


def user_settings(home: Path, telemetry: bool = False) -> None:
    """The user's own ~/.gemini/settings.json: the API-key auth (and telemetry, the user's call)."""
    settings: dict[str, Any] = {"security": {"auth": {"selectedType": "gemini-api-key"}}}
    if not telemetry:
        settings["privacy"] = {"usageStatisticsEnabled": False}
    path = home / ".gemini" / "settings.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(settings))


@pytest.fixture
def server(scratch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelServer]:
    """The scripted Gemini API, and Gemini CLI pointed at it from the scratch HOME."""
    user_settings(scratch)
    with ModelServer(wire=wire_gemini.handle, log_path=tmp_path / "model-requests.jsonl") as s:
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", s.url)
        monkeypatch.setenv("GEMINI_API_KEY", "x")
        yield s


def tool_results(server: ModelServer, conversation: int = 0) -> list[str]:
    """What each tool call of a conversation returned to the model (functionResponse), in order."""
    last = [r for r in server.main_requests() if r.conversation == conversation][-1]
    found = []
    for content in last.body["contents"]:
        for part in content.get("parts") or []:
            if "functionResponse" in part:
                found.append(json.dumps(part["functionResponse"]))
    return found


def expected_usage(reported: Usage) -> dict[str, int]:
    """What boss must report: Gemini's input, and its total less its input (thoughts are output)."""
    return {"input_tokens": reported.input_tokens,
            "output_tokens": reported.output_tokens + reported.thought_tokens}  # fmt: skip


def test_fixes_the_bug_under_the_tiers_and_an_approved_command_runs_once(tmp_path, scratch, server, sink):
    (scratch / ".ssh").mkdir()
    (scratch / ".ssh" / "id_rsa").write_text(SECRET)
    user_settings(scratch, telemetry=True)  # the default a user has
    outside, outside_sh = tmp_path / "outside.txt", tmp_path / "outside-sh.txt"
    repo = project(tmp_path)
    paths = plan(repo, "gemini", scope="^(src|build)/")
    server.script([
        edit("src/calc.py", OLD_LINE, NEW_LINE),  # TIER 2: checkpoint, then the edit
        shell("ls src"),  # TIER 1
        shell("rm -rf build"),  # TIER 3
        shell("git push origin main"),  # TIER 3
        shell("cat ~/.ssh/id_rsa"),  # TIER 3
        write(str(outside), "escaped\n"),  # Gemini refuses it itself (see below)
        shell(f"echo escaped > {outside_sh}"),  # TIER 3: a write outside the worktree
        # The agent tries to switch the hook off for the next run (TIER 3: agent-config).
        write(".gemini/settings.json", '{"hooksConfig": {"enabled": false}}'),
        say("Fixed."),
    ])  # fmt: skip

    proc = run_workers(paths)
    logs = agent_logs(paths)
    first = status(paths)
    assert first.state == "SUCCESS", (proc.stdout, proc.stderr, first.reason, logs)
    log = (paths.attempts("W1") / "s1i1" / "agent.log").read_text()
    assert first.red["exit_code"] != 0 and first.green["exit_code"] == 0
    assert git(repo, "show", f"{first.head_commit}:src/calc.py") + "\n" == FIXED
    # The edit went through Gemini's own `replace` tool.
    calls = [json.loads(line) for line in log.splitlines() if line.startswith('{"type":"tool_use"')]
    assert [c["tool_name"] for c in calls][:2] == ["replace", "run_shell_command"], log
    # Every hooked call counts but the write Gemini refused before its hooks (see below).
    assert GeminiProfile().tool_calls(log) == len(calls) - 1 == 7

    results = tool_results(server)
    events = [e.result for e in guard_events(paths)]
    assert any(r.startswith("tier2") and "checkpoint" in r for r in events), events
    assert git(repo, "for-each-ref", "--format=%(refname)", f"refs/boss/checkpoints/{PLAN}/W1/")
    assert any(r.startswith("tier1") and "ls src" in r for r in events), events
    assert "calc.py" in results[1]  # the TIER 1 command ran: its output reached the model
    for command in (
        "rm -rf build",
        "git push origin main",
        "cat ~/.ssh/id_rsa",
        f"echo escaped > {outside_sh}",
    ):
        assert any(r.startswith("tier3") and command in r for r in events), (command, events)
    # Hooks run before the policy: the guard's reason is what Gemini returned to the model.
    assert "needs a person's approval" in results[2] and "needs a person's approval" in results[3]
    assert SECRET not in "".join(results)
    assert git(repo, "show", f"{first.head_commit}:build/out.txt") == "old build"
    # write_file outside the workspace is refused by Gemini's own parameter check, before any
    # hook: nothing to approve (a shell write outside is the guard's, above).
    assert "Path not in workspace" in results[5]
    assert not outside.exists() and not outside_sh.exists()
    requested = sorted(r["command"] for r in approvals(repo))
    assert "rm -rf build" in requested and "git push origin main" in requested
    assert "cat ~/.ssh/id_rsa" in requested
    assert any(str(outside_sh) in c for c in requested), requested
    assert not any(str(outside) + "" == c for c in requested)
    # The agent's attempt to switch the hook off is TIER 3 (rule agent-config); had it gone
    # through, boss rewrites the file before the next run anyway (test below).
    assert any(r.startswith("tier3") and "agent-config" in r and ".gemini/settings.json" in r for r in events)
    # The agent's edit of .gemini/settings.json was never work: not committed, not out of scope.
    assert ".gemini/settings.json" not in git(repo, "ls-tree", "-r", "--name-only", first.head_commit)
    assert first.violations == []

    # Usage: everything the server reported, thoughts counted as output.
    assert first.usage == expected_usage(server.reported()), (first.usage, server.reported())

    # A person approves `rm -rf build`; on retry it runs once.
    request = next(r for r in approvals(repo) if r["command"] == "rm -rf build")
    boss(repo, "approve", request["id"], "--plan", PLAN, "--reason", "stale build")
    before = len(guard_events(paths))
    server.script([edit("src/calc.py", OLD_LINE, NEW_LINE), shell("rm -rf build"), say("Cleaned.")])
    retried = boss(repo, "retry", "W1", "--plan", PLAN, check=None)
    second = status(paths)
    assert second.state == "SUCCESS", (retried.stdout, retried.stderr, agent_logs(paths))
    after = [e.result for e in guard_events(paths)][before:]
    assert after, "the hook did not run on the retry: the agent's settings survived"
    assert any("allowed once by approval" in r and "rm -rf build" in r for r in after), after
    files = git(repo, "ls-tree", "-r", "--name-only", second.head_commit).split()
    assert "build/out.txt" not in files  # the approved command ran
    statuses = {r["command"]: r.get("status") for r in approvals(repo)}
    assert statuses.get("rm -rf build") != "pending"

    merged = boss(repo, "merge", PLAN)
    assert re.search(r"^W1 +MERGED ", merged.stdout, re.M), merged.stdout
    assert (repo / "src" / "calc.py").read_text() == FIXED
    assert git(repo, "show", "main:src/calc.py") + "\n" == FIXED

    # Egress: only Gemini's own usage statistics, which the user's settings leave on.
    assert set(sink.attempts) <= {TELEMETRY}, sink.attempts


MANIFEST = """```yaml
version: 1
plan: calc-fix
task: Fix add() in src/calc.py
integration_test: python -m pytest -q
workers:
  - id: W1
    title: Fix add
    scope: '^src/'
    test: python -m pytest -q tests/test_calc.py
    instructions: |
      Make add() in src/calc.py return the sum of its arguments.
```"""


def test_planner_writes_the_manifest_and_nothing_else(tmp_path, server, sink):
    repo = project(tmp_path)
    server.script([
        write("planner-write.txt", "x\n"),
        shell("touch planner-shell.txt"),
        say(MANIFEST),
    ])  # fmt: skip
    proc = boss(repo, "plan", "--agent", "gemini", "Fix add() in src/calc.py", check=None)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    manifest = repo / ".boss" / "plans" / "calc-fix" / "manifest.yaml"
    assert manifest.is_file()
    boss(repo, "validate", "calc-fix")
    # --approval-mode plan refuses the write and the shell command: nothing appears anywhere.
    assert not list(tmp_path.rglob("planner-write.txt")) and not list(tmp_path.rglob("planner-shell.txt"))
    results = tool_results(server)
    assert len(results) == 2 and all('"error"' in r for r in results), results
    assert sink.attempts == []


def procs(needle: str) -> list[int]:
    """Pids whose command line holds needle."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if needle in cmdline:
                found.append(int(entry.name))
    return found


def gone(needle: str, seconds: float = 5) -> bool:
    """True once no process holds needle in its command line (waits up to seconds)."""
    deadline = time.monotonic() + seconds
    while procs(needle) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not procs(needle)


ONE_TRY = "- max_iterations: 1\n- max_strategies: 1\n"


def test_agent_timeout_stops_the_commands_gemini_started_in_their_own_session(tmp_path, server, sink):
    repo = project(tmp_path)
    paths = plan(repo, "gemini", extra=ONE_TRY + "- agent_timeout: 4\n")
    # Gemini runs each command in a new session, outside the agent's process group.
    server.script([shell("(sleep 3101 &); sleep 3102")])
    started = time.monotonic()
    run_workers(paths)
    assert time.monotonic() - started < 60
    first = status(paths)
    assert first.state == "FAILED", first
    assert gone("sleep 310"), procs("sleep 310")
    assert sink.attempts == []


def test_a_rerun_after_kill_9_stops_what_the_dead_run_left(tmp_path, server, sink):
    repo = project(tmp_path)
    paths = plan(repo, "gemini")
    server.script([shell("sleep 3201")])
    runner = subprocess.Popen(["bash", str(paths.run_script)], cwd=repo, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not procs("sleep 3201") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert procs("sleep 3201"), agent_logs(paths)
        os.kill(status(paths).pid, signal.SIGKILL)
        runner.wait(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert procs("sleep 3201")  # the dead run's command outlived it, in its own session
    server.script([edit("src/calc.py", OLD_LINE, NEW_LINE), say("Fixed.")])
    retried = boss(repo, "retry", "W1", "--plan", PLAN, check=None)
    assert status(paths).state == "SUCCESS", (retried.stdout, retried.stderr)
    assert gone("sleep 3201"), procs("sleep 3201")
    assert sink.attempts == []


def test_project_settings_replace_what_the_agent_left_and_keep_a_tracked_file_out_of_the_work(tmp_path):
    committed = {"hooksConfig": {"enabled": False}, "mcpServers": {"docs": {"command": "docs-mcp"}}}
    repo = project(tmp_path, {".gemini/settings.json": json.dumps(committed)})
    worktree = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "w", str(worktree))
    target = tmp_path / "elsewhere.json"
    target.write_text("{}")
    (worktree / ".gemini" / "settings.json").unlink()
    (worktree / ".gemini" / "settings.json").symlink_to(target)  # a hostile leftover
    ours = {"BeforeTool": [{"matcher": "run_shell_command", "hooks": [{"type": "command", "command": "g"}]}]}
    path = project_settings(repo, worktree, ours)
    assert target.read_text() == "{}" and not path.is_symlink()
    settings = json.loads(path.read_text())
    assert settings["hooksConfig"]["enabled"] is True and settings["mcpServers"] == committed["mcpServers"]
    assert settings["hooks"]["BeforeTool"][0]["hooks"][0]["command"] == "g"
    assert git(worktree, "status", "--porcelain") == ""  # skip-worktree: the commit never takes it
