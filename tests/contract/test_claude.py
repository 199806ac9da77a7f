"""Claude Code (the real `claude`, pinned in tests/contract/package.json) under boss.

Each test drives the real pipeline (`boss plan`, `run_workers.sh`, `boss retry`, `boss merge`)
with Claude Code pointed at a scripted Anthropic Messages server (`wire_anthropic`), and a
scratch HOME whose proxy sink records any egress. One scripted conversation proves several
things at once: each real-CLI run costs about a second.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import wire_anthropic as wire
from mock_server import DONE, ModelServer, edit, read, say, shell, write
from mock_server import raw as raw_call
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
    sleepers,
    status,
)

from worker.agents.clis.claude import WORKER_TOOLS, ClaudeProfile

# Opus pricing in USD per token, the default model of 2.1.197 ("claude-opus-4-8[1m]").
PRICE_IN, PRICE_OUT = 5e-6, 25e-6
SECRET = "-----BEGIN OPENSSH PRIVATE KEY-----\nscratch-key-not-real\n"
# A committed project settings file whose hook would leave a marker if Claude ran it.
PROJECT_HOOK = "touch {marker}"
# One sleep double-forked away (reparented to init), one holding the Bash tool: both in the new
# session Claude gives each Bash command. Not `sleep 300 &`: under dontAsk Claude refuses a
# backgrounded `&` command itself ("Permission to use Bash has been denied"), whatever the hook says.
HANG = "(sleep 300 &); sleep 300"


@pytest.fixture
def server(tmp_path: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelServer]:
    """The scripted model, with Claude Code pointed at it."""
    with ModelServer(wire=wire.handle, log_path=tmp_path / "model-requests.jsonl") as s:
        for key, value in {"ANTHROPIC_BASE_URL": s.url, "ANTHROPIC_API_KEY": "sk-ant-scratch",
                           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1",
                           "DISABLE_TELEMETRY": "1"}.items():  # fmt: skip
            monkeypatch.setenv(key, value)
        yield s


def bodies(server: ModelServer, conversation: int | None = None) -> list[dict]:
    """The bodies of the main turns (of one conversation)."""
    return [r.body for r in server.main_requests() if conversation is None or r.conversation == conversation]


def results(server: ModelServer) -> dict[str, str]:
    """Every tool result the CLI sent back, by tool_use id, as text (the last request has them all)."""
    found: dict[str, str] = {}
    for body in bodies(server):
        for block in wire.tool_results(body):
            found[block["tool_use_id"]] = ("ERROR: " if block.get("is_error") else "") + wire.result_text(
                block
            )
    return found


def result_of(server: ModelServer, needle: str) -> str:
    """The tool result of the (first) tool call whose input contains needle."""
    ids = [
        b["id"]
        for body in bodies(server)
        for m in body["messages"]
        if m["role"] == "assistant" and isinstance(m["content"], list)
        for b in m["content"]
        if b.get("type") == "tool_use" and needle in json.dumps(b["input"])
    ]
    assert ids, f"no tool call with {needle!r}"
    return results(server)[ids[0]]


def result_events(paths) -> list[dict]:  # type: ignore[no-untyped-def]
    """The `result` events of every Claude run of W1."""
    events = []
    for log in sorted(paths.attempts("W1").rglob("agent.log")):
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"type":"result"' in line:
                events.append(json.loads(line))
    return events


def test_fix_guard_tiers_approval_usage_and_merge(
    tmp_path: Path, scratch: Path, server: ModelServer, sink
) -> None:
    outside = tmp_path / "outside.txt"
    marker = tmp_path / "PROJECT_HOOK_RAN"
    hook = {"hooks": {"PreToolUse": [{"matcher": "*", "hooks": [
        {"type": "command", "command": PROJECT_HOOK.format(marker=marker)}]}]}}  # fmt: skip
    repo = project(tmp_path, {".claude/settings.json": json.dumps(hook)})
    (scratch / ".ssh").mkdir()
    (scratch / ".ssh" / "id_rsa").write_text(SECRET)
    paths = plan(repo, "claude", scope="^(src|build)/", extra="- max_iterations: 1\n")
    server.script([
        raw_call("EnterWorktree", name="escape"),  # not offered: "No such tool available"
        shell("cat README.md && echo tier1-ran"),  # TIER 1
        shell("rm -rf build"),  # TIER 3
        shell("git push origin main"),  # TIER 3
        shell("cat ~/.ssh/id_rsa"),  # TIER 3 (a secret)
        write(str(outside), "escaped\n"),  # TIER 3 (outside the worktree)
        shell(f"echo escaped > {outside}"),  # TIER 3 (outside the worktree)
        edit("src/calc.py", OLD_LINE, NEW_LINE),  # refused by Claude itself: not read yet (no hook call)
        read("src/calc.py"),
        edit("src/calc.py", OLD_LINE, NEW_LINE),  # TIER 2: a checkpoint first
        say("Fixed add()."),
    ])  # fmt: skip

    proc = run_workers(paths)
    logs = agent_logs(paths)
    assert proc.returncode == 0, (proc.stdout, proc.stderr, logs)
    s = status(paths)
    assert s.state == "SUCCESS", (s.reason, logs)
    assert s.red, "the red gate ran first"  # red, then green (SUCCESS needs the green test)
    first = bodies(server, 0)
    # (fix) The tools are an explicit list: EnterWorktree (and every tool nobody judged) is absent.
    assert sorted(wire.tool_names(first[0])) == sorted(WORKER_TOOLS)
    assert "No such tool available" in result_of(server, "escape")
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 2  # main + W1
    assert "escape" not in git(repo, "branch", "--list", "--all")
    assert not (repo / ".claude" / "worktrees").exists()
    # (fix) The repository's own .claude/settings.json hook never ran; boss's guard did.
    assert not marker.exists()
    events = guard_events(paths)
    results_ = [e.result for e in events]
    # The profile counts the tool calls the hook was asked about: one guard decision each.
    log = (paths.attempts("W1") / "s1i1" / "agent.log").read_text()
    assert ClaudeProfile().tool_calls(log) == len(events) == 7, results_
    # TIER 1 ran: logged tier1 and its output reached the model.
    assert any(r.startswith("tier1") and "tier1-ran" in r for r in results_), results_
    assert "tier1-ran" in result_of(server, "tier1-ran") and "# calc" in result_of(server, "tier1-ran")
    # TIER 2: the edit was checkpointed first, then made through Claude's Edit tool.
    assert any(r.startswith("tier2") and "checkpoint" in r for r in results_), results_
    assert git(repo, "for-each-ref", "--format=%(refname)", "refs/boss/checkpoints/")
    assert git(repo, "show", f"{s.head_commit}:src/calc.py") + "\n" == FIXED
    # TIER 3: blocked (the hook's stderr reached the model as an error), no effect, each recorded.
    for needle in ("rm -rf build", "git push origin main", "id_rsa", f"echo escaped > {outside}"):
        assert any(r.startswith("tier3") and needle in r for r in results_), (needle, results_)
        assert result_of(server, needle).startswith("ERROR: PreToolUse:Bash hook error"), result_of(
            server, needle
        )
    assert "scratch-key-not-real" not in json.dumps(bodies(server))
    assert result_of(server, '"content": "escaped').startswith("ERROR: PreToolUse:Write hook error")
    assert not outside.exists()
    assert git(repo, "show", f"{s.head_commit}:build/out.txt") == "old build"
    requests = {r["command"]: r for r in approvals(repo)}
    assert {"rm -rf build", "git push origin main", "cat ~/.ssh/id_rsa"} <= set(requests), requests
    assert any(str(outside) in c for c in requests), requests
    # Usage: status.json holds Claude's own `result` totals, which are the sums of what the
    # server reported on each reply (input in message_start, output in message_delta), and the
    # cost Claude computed from them at the model's price.
    reported = server.reported()
    (result,) = result_events(paths)
    assert s.usage["input_tokens"] == reported.input_tokens == result["usage"]["input_tokens"]
    assert s.usage["output_tokens"] == reported.output_tokens == result["usage"]["output_tokens"]
    assert s.usage["cost_usd"] == pytest.approx(result["total_cost_usd"])
    expected = reported.input_tokens * PRICE_IN + reported.output_tokens * PRICE_OUT
    assert s.usage["cost_usd"] == pytest.approx(expected)

    # An approved TIER 3 command runs once on `boss retry`.
    boss(repo, "approve", requests["rm -rf build"]["id"], "--plan", PLAN, "--reason", "stale build")
    # The retry starts the worker again from its base: the fix is made again.
    server.script([shell("rm -rf build"), shell("rm -rf build"), read("src/calc.py"),
                   edit("src/calc.py", OLD_LINE, NEW_LINE), DONE])  # fmt: skip
    boss(repo, "retry", "W1", "--plan", PLAN)
    s = status(paths)
    assert s.state == "SUCCESS", (s.reason, agent_logs(paths))
    assert "build/out.txt" not in git(repo, "ls-tree", "-r", "--name-only", s.head_commit).split()
    rm = [e.result for e in guard_events(paths) if "rm -rf build" in e.result]
    assert rm[1].startswith("tier3 allowed once by approval R1"), rm
    assert rm[2].startswith("tier3 blocked"), rm  # once: the same command again is blocked

    merged = json.loads(boss(repo, "merge", PLAN, "--json").stdout)
    assert {w["id"]: w["verdict"] for w in merged["workers"]} == {"W1": "MERGED"}, merged
    assert (repo / "src" / "calc.py").read_text() == FIXED
    assert git(repo, "show", "main:src/calc.py") + "\n" == FIXED
    assert sink.attempts == []


MANIFEST = """```yaml
version: 1
plan: calc-fix
task: Fix add
integration_test: python -m pytest -q tests/test_calc.py
workers:
  - id: W1
    title: Fix add
    scope: ['^src/calc\\.py$']
    test: python -m pytest -q tests/test_calc.py
    instructions: |
      Make add(a, b) return a + b in src/calc.py.
```"""


def test_planner_writes_a_valid_manifest_and_cannot_write(tmp_path: Path, server: ModelServer, sink) -> None:
    repo = project(tmp_path)
    server.script([
        write("planner-wrote.txt", "x\n"),  # no Write tool in the planner's run
        shell("touch planner-ran.txt"),  # nor Bash
        raw_call("EnterWorktree", name="plan-escape"),
        read("src/calc.py"),  # reads work
        say(f"Here is the plan.\n\n{MANIFEST}"),
    ])  # fmt: skip
    boss(repo, "plan", "--agent", "claude", "Fix add() in src/calc.py")
    manifest = repo / ".boss" / "plans" / "calc-fix" / "manifest.yaml"
    assert manifest.is_file()
    boss(repo, "validate", "calc-fix")
    (first, *_) = bodies(server)
    assert sorted(wire.tool_names(first)) == ["Glob", "Grep", "Read"]
    for needle in ("planner-wrote", "planner-ran", "plan-escape"):
        assert "No such tool available" in result_of(server, needle), result_of(server, needle)
    assert "return a - b" in result_of(server, "src/calc.py")
    assert not list(repo.parent.rglob("planner-wrote.txt")) and not list(repo.parent.rglob("planner-ran.txt"))
    assert "plan-escape" not in git(repo, "branch", "--list", "--all")
    assert sink.attempts == []


def wait_for(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


def test_agent_timeout_stops_the_commands_claude_started_in_a_new_session(
    tmp_path: Path, server: ModelServer, sink
) -> None:
    # Claude runs each Bash command with `bash -c` in a NEW SESSION, outside its process group.
    # agent_timeout 10 s: Claude starts, calls both commands and they run well within it, even on a loaded
    # machine (4 s was seen too short there: the timeout came before the second sleep started).
    repo = project(tmp_path)
    paths = plan(repo, "claude", extra="- agent_timeout: 10\n- max_iterations: 1\n- max_strategies: 1\n")
    server.script([shell(HANG)])
    tag = os.environ["BOSS_TEST_TAG"]
    started = time.monotonic()
    pool = subprocess.Popen(["bash", str(paths.run_script)], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    wait_for(lambda: len(sleepers(tag)) == 2)  # both sleeps run (they are TIER 1)
    # Outside the agent's process group, which a group kill alone would stop.
    agent_group = status(paths).child_pgid
    assert agent_group and all(os.getpgid(pid) != agent_group for pid in sleepers(tag))
    out, _ = pool.communicate(timeout=120)
    assert pool.returncode != 0 and time.monotonic() - started < 60, out
    s = status(paths)
    assert s.state == "FAILED", s.reason
    assert "agent_timeout" in paths.blocker("W1").read_text()
    # Stopped with SIGINT first, Claude still writes its `result` (error_during_execution) with
    # the run's totals; stream-json's per-message usage alone would show 1 output token a turn.
    reported = server.reported()
    assert (s.usage["input_tokens"], s.usage["output_tokens"]) == (
        reported.input_tokens,
        reported.output_tokens,
    )
    assert s.usage["cost_usd"] == pytest.approx(
        reported.input_tokens * PRICE_IN + reported.output_tokens * PRICE_OUT
    )
    wait_for(lambda: not sleepers(tag), timeout=5)
    assert sink.attempts == []


def test_a_rerun_after_kill_9_stops_what_the_dead_run_left(tmp_path: Path, server: ModelServer, sink) -> None:
    repo = project(tmp_path)
    paths = plan(repo, "claude", extra="- max_iterations: 1\n")
    server.script([shell(HANG)])
    tag = os.environ["BOSS_TEST_TAG"]
    first = subprocess.Popen(
        [sys.executable, "-m", "worker", "run", PLAN, "W1"], cwd=repo, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: len(sleepers(tag)) == 2)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        # Claude and its commands outlive the worker (the commands are in their own session).
        assert len(sleepers(tag)) == 2
        server.script([read("src/calc.py"), edit("src/calc.py", OLD_LINE, NEW_LINE), DONE])
        rerun = run_workers(paths, timeout=120)
        assert rerun.returncode == 0, (rerun.stdout, rerun.stderr, agent_logs(paths))
        assert status(paths).state == "SUCCESS"
        assert not sleepers(tag)
        assert sink.attempts == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(first.pid, signal.SIGKILL)


def test_a_run_whose_hook_never_fired_stops_the_worker(
    tmp_path: Path, server: ModelServer, sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A user's `--bare` (BOSS_CLAUDE_ARGS) makes Claude skip every hook, the guard's too.
    monkeypatch.setenv("BOSS_CLAUDE_ARGS", "--bare")
    repo = project(tmp_path)
    paths = plan(repo, "claude", extra="- max_iterations: 1\n")
    server.script(
        [shell("echo unjudged > src/note.txt"), read("src/calc.py"), edit("src/calc.py", OLD_LINE, NEW_LINE)]
    )
    run_workers(paths)
    s = status(paths)
    assert (
        s.state == "FAILED" and "guard hook never ran although the agent made 2 tool call(s)" in s.reason
    ), s.reason
    assert not guard_events(paths)
    assert git(repo, "rev-parse", "main") == git(repo, "rev-parse", s.branch)  # nothing committed
    assert sink.attempts == []
