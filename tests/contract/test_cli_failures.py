"""An agent CLI that fails on its own (login, provider) stops the worker at once: the real Claude Code.

The scripted Anthropic server answers every request with HTTP 401, as for a revoked key. Claude
Code 2.1.197 retries a 401 ten times with backoff (about three minutes) before it gives up;
CLAUDE_CODE_MAX_RETRIES=0 makes it give up at once with the same `result` event
(`is_error: true`, "Invalid API key · Fix external API key", no tool call). The worker must
stop after that one run, name the CLI, its message and the log, commit nothing and write no
blocker report that blames the requirement.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mock_server import ModelServer, Reply
from pipeline import agent_logs, plan, project, run_workers, status

from boss.core import statelog

MESSAGE = "Invalid API key · Fix external API key"


def refuse(server: ModelServer, method: str, path: str, body: Any) -> Reply:
    """Every request: 401, as the Anthropic API answers a bad key."""
    error = {"type": "authentication_error", "message": "invalid x-api-key"}
    return Reply(401, json={"type": "error", "error": error})


@pytest.fixture
def server(tmp_path: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelServer]:
    """A model server that refuses the key, with Claude Code pointed at it."""
    with ModelServer(wire=refuse, log_path=tmp_path / "model-requests.jsonl") as s:
        for key, value in {"ANTHROPIC_BASE_URL": s.url, "ANTHROPIC_API_KEY": "sk-ant-revoked",
                           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1",
                           "DISABLE_TELEMETRY": "1", "CLAUDE_CODE_MAX_RETRIES": "0"}.items():  # fmt: skip
            monkeypatch.setenv(key, value)
        yield s


def test_a_claude_refused_by_its_provider_stops_the_worker_after_one_run(
    tmp_path: Path, server: ModelServer
) -> None:
    repo = project(tmp_path)
    paths = plan(repo, "claude", extra="- max_iterations: 5\n- max_strategies: 2\n")
    pool = run_workers(paths, timeout=300)
    s = status(paths)
    assert pool.returncode != 0, pool.stdout + pool.stderr
    assert s.state == "FAILED", s.reason + agent_logs(paths)
    log = "workers/W1/attempts/s1i1/agent.log"
    assert s.reason == (
        f"the claude CLI failed before doing any work: {MESSAGE} ({log}); fix the CLI's login or "
        "provider, then `boss retry W1 --plan p`"
    ), s.reason
    assert s.iteration == 1 and s.head_commit == s.start_commit
    events = [e for e in statelog.read(paths.log) if e.worker == "W1"]
    assert [e.action for e in events].count("agent") == 1
    assert events[-1].action == "cli-failure"
    assert sorted(p.name for p in paths.attempts("W1").iterdir()) == ["red", "s1i1"]
    assert not paths.blocker("W1").exists()
    assert server.requests and all(r.path.startswith("/v1/messages") for r in server.requests)
