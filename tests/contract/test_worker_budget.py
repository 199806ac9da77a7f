"""Contract: budgets held on a real agent CLI's streamed usage (issue 16).

Claude Code against the scripted Messages server: every reply reports its usage, and Claude
prints one `assistant` event per API message as it comes. A worker with `max_tokens` is stopped
at the event that crosses the cap, before Claude's next request: the server sees no request
after the one whose reply crossed, the spend recorded is at most the cap plus that one event,
the worker ends FAILED naming the cap, with a blocker report of the spend. A plan whose
`budget_usd` is spent starts no new agent run: the next worker never reaches the server.
`boss status` shows the spend per worker and the plan's; run_workers.sh's summary the total.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import wire_anthropic
import wire_chat
import wire_responses
from direct import point
from mock_server import DONE, ModelServer, shell, usage_for
from pipeline import agent_logs, boss, git, plan, project, run_workers, status

from boss.core import spend, statelog
from boss.core.paths import PlanPaths

CAP = 3000  # tokens: the third reply (1201 + 1238 + 1275 streamed) crosses it


@pytest.fixture
def server(
    scratch: Path, cli_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModelServer]:
    """The scripted Messages server with Claude Code pointed at it."""
    with ModelServer(wire=wire_anthropic.handle, log_path=tmp_path / "model-requests.jsonl") as s:
        for key, value in point("claude", s.url, scratch, cli_bin).items():
            monkeypatch.setenv(key, value)
        yield s


STEPS = [shell(f"echo step-{i} >> src/steps.txt") for i in range(6)]


def test_claude_is_stopped_at_the_streamed_event_that_crosses_max_tokens(
    server: ModelServer, tmp_path: Path
) -> None:
    repo = project(tmp_path)
    paths = plan(
        repo,
        "claude",
        scope="^src/",
        extra=f"- max_tokens: {CAP}\n- max_iterations: 1\n- max_strategies: 1\n",
    )
    server.script([*STEPS, DONE])
    proc = run_workers(paths, timeout=300)
    st = status(paths)
    assert proc.returncode == 1 and st.state == "FAILED", (proc.stdout, proc.stderr, agent_logs(paths))
    # the server saw the turns up to the one whose reply crossed the cap, none after it
    turns = [r.turn for r in server.main_requests()]
    assert turns == [0, 1, 2], (turns, agent_logs(paths))
    crossing = usage_for(2)
    # what the provider billed: at most the cap plus that one event
    reported = server.reported()
    billed = reported.input_tokens + reported.output_tokens
    assert billed <= CAP + crossing.input_tokens + crossing.output_tokens, billed
    # what the ledger holds: Claude's streamed events (no `result` event: it was stopped), whose
    # input is exact and whose output is the first token of each message (the stream's own figure)
    ledger = spend.read(paths, "W1")
    spent = spend.tokens(ledger.spent())
    assert ledger.spent()["input_tokens"] == reported.input_tokens and CAP <= spent <= billed, (
        spent,
        reported,
    )
    assert ledger.runs[-1]["stopped"] is True and ledger.live == {}
    assert st.reason.startswith(f"max_tokens {CAP} reached: spent "), st.reason
    assert "stopped the claude run of iteration 1; nothing of it was committed" in st.reason
    end = statelog.read(paths.log)[-1]
    assert (end.action, end.state) == ("budget", "FAILED")
    report = paths.blocker("W1").read_text()
    assert "stopped by its budget" in report and "| W1.s1.i1 | claude |" in report
    # the worktree keeps what the agent did (the crossing reply's own command ran or not: the
    # stop and its hook race), nothing is committed
    steps = (Path(st.worktree) / "src" / "steps.txt").read_text().splitlines()
    assert steps in (["step-0", "step-1"], ["step-0", "step-1", "step-2"]), steps
    assert git(repo, "rev-parse", f"refs/heads/{st.branch}") == st.start_commit
    # boss status: the worker's spend, and the plan's; its cost too when Claude, stopping, had the
    # time to print its `result` event (where alone it reports money: a race a loaded machine shows)
    cost = ledger.spent().get("cost_usd") or 0
    said, column = (
        (f"{spend.money(cost)} and ", spend.money(cost)) if cost else ("", f"{spend.kilo(spent)} tok")
    )
    table = boss(repo, "status").stdout
    assert f"spent: {said}{spend.kilo(spent)} tokens" in table and column in table.split("W1", 1)[1], table
    shown = json.loads(boss(repo, "status", "--json").stdout)
    assert spend.tokens(shown["spent"]) == spent and spend.tokens(shown["workers"][0]["spent"]) == spent
    assert "spent: " in proc.stdout  # run_workers.sh's summary: the total


def test_a_plan_whose_budget_is_spent_starts_no_new_agent(server: ModelServer, tmp_path: Path) -> None:
    # Claude prints its cost only in its `result` event: the worker gives it what is left of the
    # plan's budget as its own cap (--max-budget-usd), and Claude stops there by itself
    # (`error_max_budget_usd`, read as the cap reached, not as a failure of the CLI). W2's agent
    # never starts.
    repo = project(tmp_path)
    worker = "- scope: ^src/\n- test: python -m pytest -q tests/test_calc.py\n- agent: claude\n"
    text = (
        "# Fix the calculator\n\n- budget_usd: 0.01\n- max_iterations: 1\n- max_strategies: 1\n\n"
        f"## W1: First\n\n{worker}\nFix add() in src/calc.py.\n\n## W2: Second\n\n{worker}\nCheck it.\n"
    )
    (repo.parent / "PLAN.md").write_text(text)
    boss(repo, "plan", "--from", str(repo.parent / "PLAN.md"), "--plan", "p")
    paths = PlanPaths.of(repo, "p")
    server.script([*STEPS, DONE], [DONE])
    proc = run_workers(paths, "-j", "1", timeout=300)
    st1, st2 = status(paths, "W1"), status(paths, "W2")
    assert proc.returncode == 1 and st1.state == "FAILED", (proc.stdout, proc.stderr, agent_logs(paths))
    agent = json.loads((paths.attempts("W1") / "s1i1" / "agent.json").read_text())
    assert agent["argv"][1:3] == ["--max-budget-usd", "0.0100"], agent["argv"]
    assert '"subtype":"error_max_budget_usd"' in (paths.attempts("W1") / "s1i1" / "agent.log").read_text()
    cost = spend.read(paths, "W1").spent()["cost_usd"]
    one = usage_for(1).input_tokens * 5e-6 + usage_for(1).output_tokens * 25e-6  # one reply's cost
    assert 0.01 <= cost <= 0.01 + one, cost
    assert st1.reason.startswith(f"plan budget_usd $0.01 spent ({spend.money(cost)}); the worker's spend: ")
    assert [e.state for e in statelog.read(paths.log) if e.action == "budget" and e.worker == "W1"] == [
        "FAILED"
    ]
    # W2 never reached the server: one conversation only; its status says why
    assert {r.conversation for r in server.main_requests()} == {0}, agent_logs(paths)
    assert st2.state == "FAILED" and st2.reason == (
        f"plan budget_usd $0.01 spent ({spend.money(cost)}): no new agent run started; "
        "see workers/W2/BLOCKER_REPORT.md"
    ), st2.reason
    assert not paths.attempts("W2").exists() and not st2.worktree
    assert f"W2: not started: plan budget_usd $0.01 spent ({spend.money(cost)})" in proc.stdout, proc.stdout
    assert f"spent: {spend.money(cost)} and " in proc.stdout and "(budget_usd $0.01)" in proc.stdout, (
        proc.stdout
    )
    table = boss(repo, "status").stdout
    assert f"spent: {spend.money(cost)} and " in table and spend.money(cost) in table.split("W1", 1)[1], table


PRICE_IN, PRICE_OUT = 3.0, 15.0  # USD per million tokens, in OpenCode's model config


@pytest.fixture
def opencode_server(scratch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelServer]:
    """The scripted Chat Completions server, named in the scratch user's OpenCode config with a price."""
    with ModelServer(wire=wire_chat.handle, log_path=tmp_path / "model-requests.jsonl") as s:
        model = {"name": "m", "tool_call": True, "cost": {"input": PRICE_IN, "output": PRICE_OUT}}
        provider = {"npm": "@ai-sdk/openai-compatible", "name": "Mock",
                    "options": {"baseURL": f"{s.url}/v1", "apiKey": "x"}, "models": {"m": model}}  # fmt: skip
        folder = scratch / ".config" / "opencode"
        folder.mkdir(parents=True, exist_ok=True)
        config = {"provider": {"mock": provider}, "model": "mock/m", "small_model": "mock/m"}
        (folder / "opencode.json").write_text(json.dumps(config))
        monkeypatch.setenv("OPENCODE_DISABLE_MODELS_FETCH", "1")
        yield s


def _cost(turn: int) -> float:
    u = usage_for(turn)
    return (u.input_tokens * PRICE_IN + u.output_tokens * PRICE_OUT) / 1e6


def test_opencode_is_stopped_at_the_step_whose_cost_crosses_max_cost_usd(
    opencode_server: ModelServer, tmp_path: Path
) -> None:
    # OpenCode prints each step's cost as it ends (`step_finish`): the cost cap is held live.
    server = opencode_server
    cap = round(_cost(0) + _cost(1) + _cost(2) / 2, 6)  # the third step crosses it
    repo = project(tmp_path)
    extra = f"- max_cost_usd: {cap}\n- max_iterations: 1\n- max_strategies: 1\n"
    paths = plan(repo, "opencode", scope="^src/", extra=extra)
    server.script([*STEPS, DONE])
    proc = run_workers(paths, timeout=300)
    st = status(paths)
    assert proc.returncode == 1 and st.state == "FAILED", (proc.stdout, proc.stderr, agent_logs(paths))
    turns = [r.turn for r in server.main_requests()]
    assert turns == [0, 1, 2], (turns, agent_logs(paths))
    cost = spend.read(paths, "W1").spent()["cost_usd"]
    assert cost == pytest.approx(_cost(0) + _cost(1) + _cost(2)) and cost <= cap + _cost(2), cost
    assert st.reason.startswith(f"max_cost_usd {spend.money(cap)} reached: spent {spend.money(cost)}; "), (
        st.reason
    )
    assert "stopped the opencode run of iteration 1" in st.reason
    assert "| W1.s1.i1 | opencode | " in paths.blocker("W1").read_text()


@pytest.fixture
def codex_server(
    scratch: Path, cli_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModelServer]:
    """The scripted Responses server with Codex pointed at it."""
    with ModelServer(wire=wire_responses.handle, log_path=tmp_path / "model-requests.jsonl") as s:
        for key, value in point("codex", s.url, scratch, cli_bin).items():
            monkeypatch.setenv(key, value)
        yield s


def test_codex_reports_tokens_at_the_end_of_its_run_and_the_next_run_is_refused(
    codex_server: ModelServer, tmp_path: Path
) -> None:
    # Codex prints its usage once, in `turn.completed` as its run ends: a run cannot be stopped
    # mid-way on it. It is booked, the test judges the work, and the next agent run is refused.
    server = codex_server
    repo = project(tmp_path)
    extra = "- max_tokens: 2000\n- max_iterations: 3\n- max_strategies: 1\n"
    paths = plan(repo, "codex", scope="^src/", extra=extra)
    server.script([shell("echo one >> src/steps.txt"), DONE], [DONE], [DONE])
    proc = run_workers(paths, timeout=300)
    st = status(paths)
    assert proc.returncode == 1 and st.state == "FAILED", (proc.stdout, proc.stderr, agent_logs(paths))
    assert {r.conversation for r in server.main_requests()} == {0}  # the second run never started
    ledger = spend.read(paths, "W1")
    spent = spend.tokens(ledger.spent())
    reported = server.reported()
    assert spent == reported.input_tokens + reported.output_tokens > 2000, (spent, reported)
    assert [r["stopped"] for r in ledger.runs] == [False] and "cost_usd" not in ledger.runs[0]["usage"]
    assert st.reason.startswith(f"max_tokens 2000 reached: spent {spent} tokens: no new agent run started")
    tests = [e.result for e in statelog.read(paths.log) if e.action == "test"]
    assert len(tests) == 1 and tests[0].startswith("fail"), tests  # the test judged the one run
    assert f"{spend.kilo(spent)} tok" in boss(repo, "status").stdout
