"""Contract: a worker whose real agent CLI meets its provider's rate limit (issue 16).

Codex against the scripted Responses server answering OpenAI's 429 without `retry-after`: Codex
does not retry that at all (tests/contract/test_cli_rate_limits.py), so its run ends on the
limit at once, and the worker is what waits. The run costs no iteration: the worker records
`rate-limit`, shows the wait in its status, waits its backoff (BOSS_RATE_LIMIT_BACKOFF, cut to
seconds here) and runs the same iteration again; a limit that outlasts `rate_limit_timeout` ends
the worker FAILED with no blocker report; a stop signal during the wait ends it at once. And
Claude Code, which retries by itself (cut to one retry here) and then ends with an "API Error"
that used to stop the worker as a CLI failure before any work: now it is a wait and a rerun too.
OpenCode prints the provider's `retry-after` when it gives up: the worker waits that, not less.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import limits
import pytest
import wire_anthropic
import wire_chat
import wire_gemini
import wire_responses
from direct import point
from mock_server import DONE, Logged, ModelServer, edit, read, say
from pipeline import FIXED, NEW_LINE, OLD_LINE, agent_logs, boss, git, plan, project, run_workers, status

from boss.core import statelog
from boss.core.paths import PlanPaths

BACKOFF = 3  # seconds: the worker's first wait (BOSS_RATE_LIMIT_BACKOFF)


@pytest.fixture
def server(
    scratch: Path, cli_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModelServer]:
    """The scripted Responses server with Codex pointed at it, and the worker's backoff cut short."""
    with ModelServer(wire=wire_responses.handle, log_path=tmp_path / "model-requests.jsonl") as s:
        for key, value in point("codex", s.url, scratch, cli_bin).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("BOSS_RATE_LIMIT_BACKOFF", str(BACKOFF))
        yield s


def limit_events(paths: PlanPaths) -> list[statelog.Event]:
    return [e for e in statelog.read(paths.log) if e.action == "rate-limit"]


def posts(server: ModelServer) -> list[float]:
    return [r.at for r in server.requests if r.method == "POST"]


def wait_until(check: Callable[[], bool], timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.2)


def test_a_429_the_cli_gives_up_on_costs_a_wait_not_an_iteration(server: ModelServer, tmp_path: Path) -> None:
    repo = project(tmp_path)
    paths = plan(repo, "codex", extra="- max_iterations: 1\n- max_strategies: 1\n")
    server.script([edit("src/calc.py", OLD_LINE.rstrip("\n"), NEW_LINE.rstrip("\n")), DONE])
    server.refuse(limits.openai_rate_limit(None), times=1)  # no retry-after: Codex gives up at once
    proc = run_workers(paths, timeout=300)
    st = status(paths)
    assert proc.returncode == 0 and st.state == "SUCCESS", (proc.stdout, proc.stderr, agent_logs(paths))
    # max_iterations 1: a counted 429 would have ended it FAILED with a blocker report
    assert (st.strategy, st.iteration, st.waiting_until) == (1, 1, "")
    assert not paths.blocker("W1").exists()
    assert git(repo, "show", f"{st.head_commit}:src/calc.py") == FIXED.rstrip("\n")
    # the CLI itself gave up after one request; the worker waited its backoff, then ran again
    refused = server.refused()
    assert len(refused) == 1
    after = [at for at in posts(server) if at > refused[0].at]
    gap = after[0] - refused[0].at
    assert BACKOFF <= gap < BACKOFF * 1.25 + 20, gap
    assert [r.turn for r in server.main_requests()] == [0, 1]
    waited = limit_events(paths)
    assert len(waited) == 1 and waited[0].iteration_id == "W1.s1.i1", waited
    assert re.match(r"waiting [34]s for the provider's 429 rate limit \(until ", waited[0].result), waited
    assert "exceeded retry limit, last status: 429 Too Many Requests" in waited[0].result
    assert waited[0].artifacts.endswith("attempts/s1i1/agent.log")
    # every run keeps its own folder; the test ran once, after the rerun
    attempts = paths.attempts("W1")
    assert (attempts / "s1i1" / "agent.log").is_file() and not (attempts / "s1i1" / "test.log").exists()
    assert (attempts / "s1i1-r1" / "test.log").is_file()
    assert "rate limit" in (attempts / "s1i1-r1" / "prompt.md").read_text()
    tests = [e for e in statelog.read(paths.log) if e.action == "test"]
    assert [e.iteration_id for e in tests] == ["W1.s1.i1"]


def test_a_limit_that_does_not_clear_ends_the_worker_without_a_blocker_report(
    server: ModelServer, tmp_path: Path
) -> None:
    repo = project(tmp_path)
    paths = plan(repo, "codex", extra="- rate_limit_timeout: 5\n")
    server.script([edit("src/calc.py", OLD_LINE.rstrip("\n"), NEW_LINE.rstrip("\n")), DONE])
    server.refuse(limits.openai_rate_limit(None))  # every request
    started = time.monotonic()
    proc = run_workers(paths, timeout=300)
    st = status(paths)
    assert proc.returncode != 0 and st.state == "FAILED", (proc.stdout, proc.stderr)
    assert time.monotonic() - started < 120
    assert st.reason.startswith(
        "the provider's 429 rate limit did not clear within rate_limit_timeout (5s): "
    )
    assert "exceeded retry limit, last status: 429 Too Many Requests" in st.reason
    assert st.iteration == 1 and not paths.blocker("W1").exists()
    ends = limit_events(paths)
    assert ends[-1].state == "FAILED" and ends[-1].result == f"FAILED: {st.reason}"
    # waited BACKOFF (then what was left of the 5 s, when Codex started fast): each wait was
    # followed by a run, refused again; the last event is the end
    assert len(ends) >= 2 and len(server.refused()) == len(ends), ends
    assert all(e.result.startswith("waiting ") for e in ends[:-1]), ends
    assert not server.main_requests()
    assert git(repo, "rev-parse", f"refs/heads/{st.branch}") == st.start_commit  # nothing committed


def test_a_stop_signal_during_the_wait_ends_the_worker_at_once(
    server: ModelServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOSS_RATE_LIMIT_BACKOFF", "300")
    repo = project(tmp_path)
    paths = plan(repo, "codex")
    server.refuse(limits.openai_rate_limit(None))
    worker = subprocess.Popen(["bash", str(paths.run_script)], cwd=repo, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        wait_until(lambda: paths.status("W1").exists() and bool(status(paths).waiting_until))
        shown = json.loads(boss(repo, "status", "--json").stdout)["workers"][0]
        assert shown["state"] == "RUNNING" and shown["waiting_until"] == status(paths).waiting_until
        assert "waiting 3" in shown["last_event"] and "rate limit" in shown["last_event"], shown
        table = boss(repo, "status").stdout
        assert "plan p: 1 RUNNING (1 waiting for a rate limit)" in table and "429 rate limit (until" in table
        stopped = time.monotonic()
        worker.send_signal(signal.SIGINT)
        out, _ = worker.communicate(timeout=60)
        assert time.monotonic() - stopped < 15, out
    finally:
        if worker.poll() is None:
            worker.kill()
    st = status(paths)
    assert st.state == "FAILED" and st.reason.startswith("interrupted during iteration 1"), st.reason
    assert len(server.refused()) == 1


@pytest.fixture
def claude_server(
    scratch: Path, cli_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModelServer]:
    """The scripted Messages server with Claude Code pointed at it (one retry of its own)."""
    with ModelServer(wire=wire_anthropic.handle, log_path=tmp_path / "model-requests.jsonl") as s:
        for key, value in point("claude", s.url, scratch, cli_bin).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("CLAUDE_CODE_MAX_RETRIES", "1")
        monkeypatch.setenv("BOSS_RATE_LIMIT_BACKOFF", str(BACKOFF))
        yield s


def test_claude_giving_up_on_a_429_is_no_cli_failure_but_a_wait(
    claude_server: ModelServer, tmp_path: Path
) -> None:
    server = claude_server
    repo = project(tmp_path)
    paths = plan(repo, "claude", extra="- max_iterations: 1\n- max_strategies: 1\n")
    server.script([read("src/calc.py"), edit("src/calc.py", OLD_LINE, NEW_LINE), DONE])
    server.refuse(limits.anthropic_rate_limit(1), times=2)  # Claude retries once (after 1 s), then gives up
    proc = run_workers(paths, timeout=300)
    st = status(paths)
    assert proc.returncode == 0 and st.state == "SUCCESS", (proc.stdout, proc.stderr, agent_logs(paths))
    assert (st.iteration, st.waiting_until) == (1, "") and not paths.blocker("W1").exists()
    refused = server.refused()
    assert len(refused) == 2 and 0.9 <= refused[1].at - refused[0].at < 5  # Claude's own retry
    gap = next(at for at in posts(server) if at > refused[1].at) - refused[1].at
    assert BACKOFF <= gap < BACKOFF * 1.25 + 20, gap  # the worker's wait
    waited = limit_events(paths)
    assert len(waited) == 1 and "the claude run ended on it after 1 retry of its own: " in waited[0].result
    assert limits.ANTHROPIC_429 in waited[0].result
    assert not [e for e in statelog.read(paths.log) if e.action == "cli-failure"]
    assert git(repo, "show", f"{st.head_commit}:src/calc.py") == FIXED.rstrip("\n")


@pytest.fixture
def opencode_server(
    scratch: Path, cli_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModelServer]:
    """The scripted Chat Completions server with OpenCode pointed at it; the worker's own backoff tiny."""
    with ModelServer(wire=wire_chat.handle, log_path=tmp_path / "model-requests.jsonl") as s:
        for key, value in point("opencode", s.url, scratch, cli_bin).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("BOSS_RATE_LIMIT_BACKOFF", "0.5")
        yield s


def _turn(r: Logged) -> bool:
    """OpenCode's turn (a request with tools), not its title request."""
    return isinstance(r.body, dict) and bool(r.body.get("tools"))


def test_the_wait_honours_the_delay_the_provider_asked_for(
    opencode_server: ModelServer, tmp_path: Path
) -> None:
    server = opencode_server
    repo = project(tmp_path)
    paths = plan(repo, "opencode", extra="- max_iterations: 1\n- max_strategies: 1\n")
    server.script([edit("src/calc.py", OLD_LINE, NEW_LINE), say("Fixed.")])
    server.refuse(limits.openai_rate_limit(2), times=6, only=_turn)  # OpenCode's 6 tries of the turn
    proc = run_workers(paths, timeout=300)
    st = status(paths)
    assert proc.returncode == 0 and st.state == "SUCCESS", (proc.stdout, proc.stderr, agent_logs(paths))
    assert st.iteration == 1 and not paths.blocker("W1").exists()
    waited = limit_events(paths)
    # retry-after 2 beats the worker's own 0.5 s (which would read "waiting 0s" or "waiting 1s")
    assert len(waited) == 1 and waited[0].result.startswith("waiting 2s for the provider's 429 rate limit"), (
        waited
    )
    refused = server.refused()
    assert len(refused) == 6
    gap = next(r.at for r in server.requests if r.at > refused[-1].at and _turn(r)) - refused[-1].at
    assert 2 <= gap < 2 * 1.25 + 20, gap


def test_a_run_stopped_by_agent_timeout_while_the_cli_waits_on_a_limit_is_no_iteration(
    claude_server: ModelServer, tmp_path: Path
) -> None:
    # Claude waits the 30 s the provider asks for; agent_timeout stops it first. Its log shows the
    # limit it was waiting on (an `api_retry` event): a limit, not an agent that was too slow.
    server = claude_server
    repo = project(tmp_path)
    paths = plan(repo, "claude", extra="- agent_timeout: 8\n- max_iterations: 1\n- max_strategies: 1\n")
    server.script([read("src/calc.py"), edit("src/calc.py", OLD_LINE, NEW_LINE), DONE])
    server.refuse(limits.anthropic_rate_limit(30), times=1)
    proc = run_workers(paths, timeout=300)
    st = status(paths)
    assert proc.returncode == 0 and st.state == "SUCCESS", (proc.stdout, proc.stderr, agent_logs(paths))
    assert st.iteration == 1 and not paths.blocker("W1").exists()
    agents = [e for e in statelog.read(paths.log) if e.action == "agent"]
    assert len(agents) == 2 and agents[0].result.endswith("(timed out)") and agents[1].result == "exit=0", (
        agents
    )
    waited = limit_events(paths)
    assert (
        len(waited) == 1 and "API request failed: rate_limit (HTTP 429), retry 1 of 1" in waited[0].result
    ), waited
    # the provider's 30 s is not in Claude's output (it never prints it): the worker's own backoff
    assert re.match(r"waiting [34]s for the provider's 429 rate limit", waited[0].result), waited


def test_codex_stopped_by_agent_timeout_while_it_waits_on_a_limit_is_no_iteration(
    server: ModelServer, tmp_path: Path
) -> None:
    # Codex waits the 30 s retry-after ("Reconnecting... 1/5"); agent_timeout stops it first.
    repo = project(tmp_path)
    paths = plan(repo, "codex", extra="- agent_timeout: 8\n- max_iterations: 1\n- max_strategies: 1\n")
    server.script([edit("src/calc.py", OLD_LINE.rstrip("\n"), NEW_LINE.rstrip("\n")), DONE])
    server.refuse(limits.openai_rate_limit(30), times=1)
    proc = run_workers(paths, timeout=300)
    st = status(paths)
    assert proc.returncode == 0 and st.state == "SUCCESS", (proc.stdout, proc.stderr, agent_logs(paths))
    assert st.iteration == 1 and not paths.blocker("W1").exists()
    waited = limit_events(paths)
    assert len(waited) == 1 and "Reconnecting... 1/5" in waited[0].result, waited


@pytest.fixture
def gemini_server(
    scratch: Path, cli_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModelServer]:
    """The scripted Gemini API server with Gemini CLI pointed at it."""
    with ModelServer(wire=wire_gemini.handle, log_path=tmp_path / "model-requests.jsonl") as s:
        for key, value in point("gemini", s.url, scratch, cli_bin).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("BOSS_RATE_LIMIT_BACKOFF", str(BACKOFF))
        yield s


def test_gemini_stopped_by_agent_timeout_while_it_waits_on_a_limit_is_no_iteration(
    gemini_server: ModelServer, tmp_path: Path
) -> None:
    # Gemini CLI waits the 20 s RetryInfo asks ("Suggested retry after 20s"); agent_timeout stops
    # it first (12 s from its start, so before any retry); the worker then waits those 20 s (the
    # provider's delay, printed), not its own 3 s.
    server = gemini_server
    repo = project(tmp_path)
    paths = plan(repo, "gemini", extra="- agent_timeout: 12\n- max_iterations: 1\n- max_strategies: 1\n")
    server.script([edit("src/calc.py", OLD_LINE, NEW_LINE), DONE])
    server.refuse(limits.gemini_exhausted(20), times=1, only="streamGenerateContent")
    proc = run_workers(paths, timeout=300)
    st = status(paths)
    assert proc.returncode == 0 and st.state == "SUCCESS", (proc.stdout, proc.stderr, agent_logs(paths))
    assert st.iteration == 1 and not paths.blocker("W1").exists()
    waited = limit_events(paths)
    assert len(waited) == 1 and re.match(r"waiting 2\ds for the provider's rate limit", waited[0].result), (
        waited
    )
