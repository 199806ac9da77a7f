"""`boss do` with the real Claude Code: one command lands a tested fix on the branch, `boss undo`
takes it back, and a TIER 3 request answered at the terminal (`--watch`, driven through a
pseudo-terminal) lets exactly that command run, within the same agent run.

Claude Code is pointed at the scripted Anthropic Messages server (`wire_anthropic`), with a
scratch HOME whose proxy sink records any egress, as in test_claude.py.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import wire_anthropic as wire
from mock_server import DONE, ModelServer, edit, read, shell
from pipeline import (
    BUGGY,
    FIXED,
    NEW_LINE,
    OLD_LINE,
    TEST_COMMAND,
    agent_logs,
    boss,
    git,
    guard_events,
    project,
)
from terminal import run_in_pty

from boss.core import approvals
from boss.core.paths import PlanPaths

TASK = "Fix add() in src/calc.py so that 2 + 3 == 5, and remove the stale build folder."


@pytest.fixture
def server(tmp_path: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelServer]:
    """The scripted model, with Claude Code pointed at it."""
    with ModelServer(wire=wire.handle, log_path=tmp_path / "model-requests.jsonl") as s:
        for key, value in {"ANTHROPIC_BASE_URL": s.url, "ANTHROPIC_API_KEY": "sk-ant-scratch",
                           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1",
                           "DISABLE_TELEMETRY": "1"}.items():  # fmt: skip
            monkeypatch.setenv(key, value)
        yield s


def tool_result(server: ModelServer, needle: str) -> str:
    """The tool result Claude sent back for the (first) tool call whose input contains needle."""
    calls, results = [], {}
    for r in server.main_requests():
        for m in r.body["messages"]:
            if m["role"] == "assistant" and isinstance(m["content"], list):
                calls += [
                    b["id"] for b in m["content"] if b.get("type") == "tool_use" and needle in json.dumps(b)
                ]
        for block in wire.tool_results(r.body):
            results[block["tool_use_id"]] = ("ERROR: " if block.get("is_error") else "") + wire.result_text(
                block
            )
    assert calls, f"no tool call with {needle!r}"
    return results[calls[0]]


def test_boss_do_lands_a_tested_fix_with_claude_and_boss_undo_takes_it_back(
    tmp_path: Path, server: ModelServer, sink
) -> None:
    repo = project(tmp_path)
    before = git(repo, "rev-parse", "main")
    server.script([read("src/calc.py"), edit("src/calc.py", OLD_LINE, NEW_LINE), DONE])
    proc = boss(repo, "do", "Fix add() in src/calc.py so that 2 + 3 == 5.", "--test", TEST_COMMAND,
                "--scope", "^src/", "--agent", "claude", "--plan", "fix", check=None)  # fmt: skip
    paths = PlanPaths.of(repo, "fix")
    assert proc.returncode == 0, (proc.stdout, proc.stderr, agent_logs(paths))
    assert f"rollback point: refs/boss/fix/rollback ({before[:10]})" in proc.stdout
    assert "landed: main moved from" in proc.stdout
    assert git(repo, "show", "main:src/calc.py") + "\n" == FIXED
    assert (repo / "src" / "calc.py").read_text() == FIXED  # the checkout followed
    report = json.loads((paths.merge_dir / "report.json").read_text())
    assert [(w["id"], w["verdict"]) for w in report["workers"]] == [("W1", "MERGED")]
    assert any(e.result.startswith("tier2") for e in guard_events(paths))  # the edit was checkpointed

    undone = boss(repo, "undo")
    assert "undone: main moved back" in undone.stdout
    assert git(repo, "rev-parse", "main") == before
    assert (repo / "src" / "calc.py").read_text() == BUGGY
    assert sink.attempts == []


def test_a_tier3_request_approved_at_the_terminal_runs_once_in_the_same_claude_run(
    tmp_path: Path, server: ModelServer, sink
) -> None:
    repo = project(tmp_path)
    server.script([shell("rm -rf build"), read("src/calc.py"), edit("src/calc.py", OLD_LINE, NEW_LINE), DONE])
    argv = [sys.executable, "-m", "boss", "do", TASK, "--test", TEST_COMMAND, "--scope", "^(src|build)/",
            "--agent", "claude", "--plan", "fix", "--watch"]  # fmt: skip
    code, out = run_in_pty(argv, repo, os.environ, [("[y/N]: ", "y\n")], timeout=300)
    paths = PlanPaths.of(repo, "fix")
    assert code == 0, (out, agent_logs(paths))
    # The person saw the request whole before answering.
    assert "TIER 3 request R1 from worker W1: the agent wants to run\n    rm -rf build" in out, out
    assert "R1 approved: the command runs once" in out, out
    (req,) = approvals.list_requests(paths.approvals_dir)
    assert (req.command, req.status) == ("rm -rf build", approvals.USED)
    results = [e.result for e in guard_events(paths) if "rm -rf build" in e.result]
    assert results[0].startswith("tier3 waiting"), results
    assert results[1].startswith("tier3 allowed once by approval R1"), results
    assert len(results) == 2, results
    # Claude's Bash call went through, in the one and only agent run: no error came back.
    assert not tool_result(server, "rm -rf build").startswith("ERROR"), tool_result(server, "rm -rf build")
    assert {r.conversation for r in server.main_requests()} == {0}
    assert len(list(paths.attempts("W1").glob("s*i*"))) == 1
    tree = git(repo, "ls-tree", "-r", "--name-only", "main").split()
    assert "build/out.txt" not in tree and not (repo / "build").exists()
    assert git(repo, "show", "main:src/calc.py") + "\n" == FIXED
    assert sink.attempts == []
