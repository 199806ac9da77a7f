"""Budgets (issue 16): the cap arithmetic, the ledger, the live follower, and a worker held to them.

A project's own command agent (`.boss/config.yaml` `agents:`) prints a running usage total as
JSON lines, one a step, with a pause between steps: the worker must stop it at the line that
crosses a cap, before its next step, and end FAILED naming the cap, with a report of the spend.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import git, make_repo
from worker_helpers import make_plan, worker

from boss.core import spend, statelog
from boss.core import status as st
from boss.core.config import load_config
from boss.core.errors import InputError
from boss.core.proc import run_group
from boss.core.statusview import plan_spent, rows, summary
from boss.plan.markdown_plan import parse
from worker.agents.profile import AgentRun, CommandProfile
from worker.agents.registry import PROFILES
from worker.lifecycle import budget
from worker.lifecycle.run import check_runnable, run_worker

# --- the arithmetic ---------------------------------------------------------------------------


def used(cost: float = 0, inp: int = 0, out: int = 0, seconds: float = 0) -> dict[str, float]:
    return spend.total([{"cost_usd": cost, "input_tokens": inp, "output_tokens": out, "seconds": seconds}])


def test_a_cap_is_reached_at_its_value_and_named_in_the_reason():
    caps = spend.Caps(cost_usd=0.5, tokens=10_000, minutes=2, plan_usd=3)
    assert spend.reached(caps, used(0.49, 4000, 5999, 119)) is None
    assert spend.reached(caps, used(0.5)) == "max_cost_usd $0.50 reached: spent $0.50"
    assert spend.reached(caps, used(0.1, 9000, 1000)) == "max_tokens 10000 reached: spent 10000 tokens"
    assert spend.reached(caps, used(seconds=120)) == "max_minutes 2 reached: agents ran 2.0 minutes"
    assert spend.reached(caps, used(0.1), used(3.2)) == "plan budget_usd $3.00 spent ($3.20)"
    assert spend.reached(spend.Caps(), used(99, 10**9, 10**9, 10**6), used(99)) is None  # 0: no cap


def test_totals_ignore_what_is_not_a_number():
    t = spend.total([{"cost_usd": 0.1, "input_tokens": 10}, {"cost_usd": "0.2", "output_tokens": True},
                     {"cost_usd": -5, "seconds": float("nan")}, {"cost_usd": 0.25}])  # fmt: skip
    assert t == {"cost_usd": 0.35, "input_tokens": 10.0, "output_tokens": 0.0, "seconds": 0.0}
    assert (
        spend.describe(used(0.52, 40_000, 1_200, 240), 3)
        == "$0.52 and 41.2k tokens in 3 agent runs (4.0 minutes)"
    )
    assert spend.describe(used(0, 900, 0, 30), 1) == "900 tokens in 1 agent run (30s)"


def test_the_ledger_outlives_a_killed_run_and_a_corrupt_one_counts_nothing(tmp_path):
    repo = make_repo(tmp_path / "r", {"a.txt": "a\n"})
    paths, _ = make_plan(repo, [worker("W1")])
    paths.worker_dir("W1").mkdir(parents=True, exist_ok=True)
    spend.write(
        paths, "W1", spend.Ledger([{"where": "W1.s1.i1", "usage": {"cost_usd": 0.2}}], {"cost_usd": 0.1})
    )
    # a run killed with -9 left its live usage: the next run books it
    ledger = budget.settle(paths, "W1")
    assert ledger.live == {} and ledger.runs[-1]["usage"] == {"cost_usd": 0.1}
    assert spend.read(paths, "W1").spent()["cost_usd"] == pytest.approx(0.3)
    spend.path(paths, "W1").write_text("{not json")
    assert spend.read(paths, "W1").spent()["cost_usd"] == 0


def test_a_markdown_plan_takes_the_budget_fields():
    raw = parse("# A\n- budget_usd: $5\n## W1: x\n- scope: ^a/\n- test: t\n- max_cost_usd: 0.50\n"
                "- max_tokens: 200000\n- max_minutes: 1.5\n", "plan.md")  # fmt: skip
    assert raw["defaults"] == {"budget_usd": 5.0}
    assert (raw["workers"][0]["max_cost_usd"], raw["workers"][0]["max_tokens"]) == (0.5, 200000)
    assert raw["workers"][0]["max_minutes"] == 1.5


# --- the live follower ------------------------------------------------------------------------


def claude_lines(n: int) -> list[bytes]:
    """Claude Code's stream: one assistant event per API message, 1200 input tokens each."""
    return [json.dumps({"type": "assistant", "message": {"id": f"msg_{i}", "usage": {
        "input_tokens": 1200, "output_tokens": 1}}}).encode() + b"\n" for i in range(n)]  # fmt: skip


def follower(tmp_path: Path, agent: str, **caps: float) -> tuple[budget.Follower, object]:
    repo = make_repo(tmp_path / "r", {"a.txt": "a\n"})
    paths, m = make_plan(repo, [worker("W1", **caps)])
    paths.worker_dir("W1").mkdir(parents=True, exist_ok=True)
    run = AgentRun(plan="p", worker_id="W1", repo=repo, worktree=repo, context_file=repo / "a.txt",
                   prompt_file=repo / "a.txt", feedback_file=repo / "f.md", config_dir=repo / "c",
                   iteration=1, strategy=1, scope=("^a",), test_command="true", timeout=0)  # fmt: skip
    return budget.Follower(paths, m, m.workers[0], PROFILES[agent], run), paths


def test_the_follower_halts_at_the_event_that_crosses_the_cap_lines_split_anywhere(tmp_path):
    f, paths = follower(tmp_path, "claude", max_tokens=3000)
    stream = b"not json at all\n" + b"".join(claude_lines(5))
    halted_at = None
    for i in range(0, len(stream), 7):  # chunks cut through lines
        if f(stream[i : i + 7]):
            halted_at = i + 7
            break
    assert halted_at is not None and f.reason == "max_tokens 3000 reached: spent 3603 tokens"
    # it halted in the chunk that completed the third event (1201 tokens each): not before, not after
    third = len(b"not json at all\n" + b"".join(claude_lines(3)))
    assert halted_at - 7 < third <= halted_at
    live = spend.read(paths, "W1").live
    assert live["input_tokens"] == 3600 and live["output_tokens"] == 3  # written at the crossing


def test_run_group_stops_the_command_at_the_halt_before_its_next_line(tmp_path):
    lines = [json.dumps({"usage": {"cost_usd": round(0.1 * i, 2)}}) for i in range(1, 8)]
    program = f"import time\nfor line in {lines!r}:\n    print(line, flush=True)\n    time.sleep(0.4)\n"
    f, _ = follower(tmp_path, "claude", max_cost_usd=0.25)
    f.profile = CommandProfile("spender", "")  # reads a running total from JSON lines
    started = time.monotonic()
    outcome = run_group([sys.executable, "-c", program], cwd=tmp_path, env={"PATH": "/usr/bin:/bin"},
                        log_path=tmp_path / "agent.log", follow=f)  # fmt: skip
    assert outcome.halted and not outcome.timed_out and time.monotonic() - started < 3
    log = (tmp_path / "agent.log").read_text()
    # 0.3 crossed 0.25; 0.4 was never printed (SIGINT: the command's KeyboardInterrupt follows)
    assert [x for x in log.splitlines() if x.startswith("{")] == lines[:3]
    assert f.reason == "max_cost_usd $0.25 reached: spent $0.30"


# --- a worker held to its caps ----------------------------------------------------------------

# Prints a running total after each step, writes a file per step, pauses: a CLI streaming usage.
SPENDER = (
    'for i in 1 2 3 4 5 6; do touch "src/step-$i"; '
    'echo "{\\"usage\\": {\\"cost_usd\\": 0.$i, \\"input_tokens\\": ${i}000, \\"output_tokens\\": ${i}00}}"; '
    "sleep 0.5; done"
)


@pytest.fixture
def spender(tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "repo", {"src/calc.py": "x = 0\n", ".boss/config.yaml": (
        "agents:\n  spender:\n    command: " + json.dumps(SPENDER) + "\n")})  # fmt: skip
    monkeypatch.chdir(repo)
    return repo


def run(paths, m, wid):
    return run_worker(paths, m, load_config(paths.repo), wid)


def test_a_worker_whose_streamed_cost_passes_its_cap_is_stopped_within_one_event(spender):
    paths, m = make_plan(
        spender, [worker("W1", test="test -f src/never", agent="spender", max_cost_usd=0.25)]
    )
    assert run(paths, m, "W1") == st.FAILED
    s = st.read(paths.status("W1"))
    wt = Path(s.worktree)
    # stopped at the event that crossed (0.3), before its next step
    assert sorted(p.name for p in (wt / "src").glob("step-*")) == ["step-1", "step-2", "step-3"]
    ledger = spend.read(paths, "W1")
    cost = ledger.spent()["cost_usd"]
    assert cost == pytest.approx(0.3) and cost <= 0.25 + 0.1  # the cap + one event
    assert ledger.runs[-1]["stopped"] is True and ledger.live == {}
    assert s.reason.startswith(
        "max_cost_usd $0.25 reached: spent $0.30; the worker's spend: $0.30 and 3.3k tokens in 1 agent run ("
    )
    assert "stopped the spender run of iteration 1; nothing of it was committed" in s.reason
    assert s.reason.endswith("; see workers/W1/BLOCKER_REPORT.md")
    end = statelog.read(paths.log)[-1]
    assert (end.action, end.state) == ("budget", "FAILED")
    report = paths.blocker("W1").read_text()
    assert "stopped by its budget" in report and "| W1.s1.i1 | spender | 3000 | 300 | $0.30 |" in report
    # nothing committed; the worktree keeps what the agent did
    assert git(spender, "rev-parse", f"refs/heads/{s.branch}") == s.start_commit
    assert (wt / "src" / "step-3").exists()
    # the next run starts no agent: the cap is spent across runs
    assert run(paths, m, "W1") == st.FAILED
    again = st.read(paths.status("W1"))
    assert again.reason.startswith("max_cost_usd $0.25 reached: spent $0.30: no new agent run started")
    assert not [e for e in statelog.read(paths.log) if e.action == "agent"][1:]


def test_max_tokens_and_max_minutes_stop_it_too(spender):
    paths, m = make_plan(spender, [worker("W1", test="test -f src/never", agent="spender", max_tokens=2500),
                                   worker("W2", test="test -f src/never", agent="spender", max_minutes=0.02)])  # fmt: skip
    assert run(paths, m, "W1") == st.FAILED
    s = st.read(paths.status("W1"))
    assert s.reason.startswith("max_tokens 2500 reached: spent 3300 tokens")
    started = time.monotonic()
    assert run(paths, m, "W2") == st.FAILED
    assert time.monotonic() - started < 30
    s2 = st.read(paths.status("W2"))
    assert s2.reason.startswith("max_minutes 0.02 reached: agents ran 1s"), s2.reason
    assert 1.2 <= spend.read(paths, "W2").spent()["seconds"] < 3


def test_a_plan_whose_budget_is_spent_starts_no_new_agent_run_and_says_so(spender):
    steps = {"test": "test -f src/never", "agent": "spender"}
    paths, m = make_plan(spender, [worker("W1", **steps), worker("W2", **steps)],
                         defaults={"agent": "scripted", "max_iterations": 1, "max_strategies": 1,
                                   "budget_usd": 0.45})  # fmt: skip
    assert run(paths, m, "W1") == st.FAILED  # the plan's budget stops W1 itself at 0.5
    s1 = st.read(paths.status("W1"))
    assert s1.reason.startswith("plan budget_usd $0.45 spent ($0.50); the worker's spend: $0.50 and "), (
        s1.reason
    )
    assert run(paths, m, "W2") == st.FAILED
    s2 = st.read(paths.status("W2"))
    assert s2.reason.startswith("plan budget_usd $0.45 spent ($0.50): no new agent run started"), s2.reason
    assert not paths.attempts("W2").exists() and not s2.worktree  # not even a worktree
    config = load_config(spender)
    shown = rows(paths, m, config)
    assert [r.spent["cost_usd"] for r in shown] == [0.5, 0]
    assert plan_spent(m, shown) == "spent: $0.50 and 5.5k tokens (budget_usd $0.45)"
    assert "  spent: $0.50 and 5.5k tokens (budget_usd $0.45)" in summary(paths, m, config)


def test_a_cost_cap_on_a_cli_that_reports_no_cost_is_refused_naming_the_field(spender):
    paths, m = make_plan(spender, [worker("W1", agent="codex", max_cost_usd=1)])
    with pytest.raises(InputError) as e:
        budget.check_costs(paths, m, [])
    assert str(e.value) == (
        f"{paths.manifest}: worker W1 field max_cost_usd: the codex CLI reports tokens, not money, so boss "
        "cannot hold a cost cap on it (it guesses no price): use max_tokens"
    )
    with pytest.raises(InputError):
        check_runnable(paths, m, load_config(spender), ["W1"])


def test_a_later_lower_total_cannot_take_spend_back(tmp_path):
    f, paths = follower(tmp_path, "claude", max_cost_usd=1)
    f.profile = CommandProfile("spender", "")
    assert not f(b'{"usage": {"cost_usd": 0.6, "input_tokens": 500}}\n')
    assert not f(b'{"usage": {"cost_usd": 0.0, "input_tokens": 0}}\n')  # forged, or a CLI's own reset
    assert f.usage == {"cost_usd": 0.6, "input_tokens": 500}
    assert f(b'{"usage": {"cost_usd": 1.1}}\n') and f.reason == "max_cost_usd $1.00 reached: spent $1.10"
    ledger = f.book("W1.s1.i1", {"cost_usd": 0.2}, 3.0, stopped=True)
    assert ledger.runs[-1]["usage"] == {"cost_usd": 1.1, "input_tokens": 500, "seconds": 3.0}
    assert spend.read(paths, "W1").runs == ledger.runs and spend.read(paths, "W1").live == {}


def test_max_minutes_counts_earlier_runs_a_killed_one_too(spender):
    paths, m = make_plan(spender, [worker("W1", test="test -f src/never", agent="spender", max_minutes=1)])
    paths.worker_dir("W1").mkdir(parents=True, exist_ok=True)
    # an earlier run of 40 s, and one killed with -9 after 21 s (its last live write)
    spend.write(paths, "W1", spend.Ledger([{"where": "W1.s1.i1", "usage": {"seconds": 40}}], {"seconds": 21}))
    assert run(paths, m, "W1") == st.FAILED
    s = st.read(paths.status("W1"))
    assert s.reason.startswith("max_minutes 1 reached: agents ran 1.0 minutes: no new agent run started"), (
        s.reason
    )
    assert [r["where"] for r in spend.read(paths, "W1").runs] == [
        "W1.s1.i1",
        "a run killed before it was booked",
    ]
    assert not paths.attempts("W1").exists()


def test_the_pool_starts_no_new_worker_once_the_plan_budget_is_spent_and_says_so(spender):
    steps = {"test": "test -f src/never", "agent": "spender"}
    defaults = {"agent": "scripted", "max_iterations": 1, "max_strategies": 1, "budget_usd": 0.45}
    paths, _ = make_plan(spender, [worker("W1", **steps), worker("W2", **steps)], defaults=defaults)
    proc = subprocess.run(["bash", str(paths.run_script), "-j", "1"], cwd=spender, capture_output=True,
                          text=True, timeout=300, check=False)  # fmt: skip
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "W2: not started: plan budget_usd $0.45 spent ($0.50): no new agent run started\n" in proc.stdout
    s2 = st.read(paths.status("W2"))
    assert s2.state == "FAILED" and s2.reason.startswith("plan budget_usd $0.45 spent ($0.50): no new agent")
    assert not paths.attempts("W2").exists() and not s2.worktree and not s2.pid  # never forked
    assert "  spent: $0.50 and 5.5k tokens (budget_usd $0.45)\n" in proc.stdout


def test_the_follower_stays_cheap_on_a_flood_and_drops_an_overlong_line(tmp_path):
    f, _ = follower(tmp_path, "claude", max_tokens=3000)
    chunk = b"y\n" * 32768  # what `yes` prints, 64 KB at a time
    noisy = b"the tokens cost stats of nothing\n" * 2000  # marks, but no usage event
    started = time.monotonic()
    for _ in range(800):  # 50 MB
        assert not f(chunk)
    for _ in range(200):
        assert not f(noisy)
    assert time.monotonic() - started < 10 and f._lines == []
    big = b"x" * (budget.MAX_LINE + 10)
    for i in range(0, len(big), 65536):
        assert not f(big[i : i + 65536])
    stream = b"".join(claude_lines(3))
    assert f(b"tail of the long line\n" + stream) and f.reason == "max_tokens 3000 reached: spent 3603 tokens"
