"""Aider 0.86.2 under boss, against the real binary and a scripted model server (wire_aider).

Aider has no tool hook and offers the model no tools: edits arrive as SEARCH/REPLACE blocks in
the reply text and aider applies them; it runs no shell command the model writes
(--no-suggest-shell-commands). So the guard never sees an aider run, and the tier proofs of the
other CLIs (a TIER 1 command runs, a TIER 2 one is checkpointed, a TIER 3 one becomes an
approval request that `boss retry` runs once) have no aider equivalent: nothing of the model
ever runs, so nothing is checkpointed or approved. What is proven instead: the model's shell
commands (a recursive delete, a push, reading ~/.ssh) do not run at all; what aider does with a
write outside the worktree; the frozen test and the scope check; agent_timeout and a crashed
worker's rerun stop aider and what it started.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import wire_aider
from mock_server import ModelServer, raw
from pipeline import (
    BUGGY,
    FIXED,
    NEW_LINE,
    OLD_LINE,
    PLAN,
    TEST,
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

from boss.core import manifest as mf
from boss.core import statelog
from boss.core import status as st

MODEL = "openai/gpt-4o"
URL = "https://example.com/calc-spec"
SECRET = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n"


def _litellm_prices(cli_bin: Path) -> Path:
    """The price list litellm ships inside aider's own virtual environment."""
    venv = (cli_bin / "aider").resolve().parent.parent
    found = sorted(venv.glob("lib/python*/site-packages/litellm/model_prices_and_context_window_backup.json"))
    assert found, f"no litellm price list under {venv}"
    return found[0]


@pytest.fixture
def prices(scratch: Path, cli_bin: Path) -> dict[str, dict[str, float]]:
    """Seed aider's price cache, or it fetches the list from GitHub (egress); the list."""
    cache = scratch / ".aider" / "caches" / "model_prices_and_context_window.json"
    cache.parent.mkdir(parents=True)
    text = _litellm_prices(cli_bin).read_text()
    cache.write_text(text)
    return dict(json.loads(text))


@pytest.fixture
def server(
    scratch: Path, prices: dict[str, dict[str, float]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModelServer]:
    """The scripted model, and aider pointed at it as a user would (env + BOSS_AIDER_ARGS)."""
    with ModelServer(wire=wire_aider.handle, log_path=tmp_path / "model-requests.jsonl") as s:
        monkeypatch.setenv("OPENAI_API_BASE", s.url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "x")
        monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        monkeypatch.setenv("BOSS_AIDER_ARGS", f"--model {MODEL}")
        yield s


def _events(paths: object, action: str) -> list[statelog.Event]:
    return [e for e in statelog.read(paths.log) if e.action == action]  # type: ignore[attr-defined]


def _cost(server: ModelServer, prices: dict[str, dict[str, float]]) -> float:
    """What the server's reported tokens cost at the price list aider reads (gpt-4o)."""
    price = prices["gpt-4o"]
    used = server.reported()
    return (
        used.input_tokens * price["input_cost_per_token"]
        + used.output_tokens * price["output_cost_per_token"]
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_fix_merges_while_shell_test_edits_and_urls_do_nothing(tmp_path, scratch, server, prices, sink):
    """(1) flags and edit through aider's own format, red, green, SUCCESS, MERGED; (2)-(4) the
    model's shell commands never run, a write outside the worktree, the frozen test; (5) usage;
    (9) no egress, with a URL in the instructions (--no-detect-urls)."""
    (scratch / ".ssh").mkdir()
    (scratch / ".ssh" / "id_rsa").write_text(SECRET)
    repo = project(tmp_path)
    marker = tmp_path / "shell-ran"
    paths = plan(
        repo,
        "aider",
        instructions=f"Fix add() in src/calc.py so that tests/test_calc.py passes; the spec is at {URL}.",
    )
    worktree = paths.worktree("W1")
    escape = (worktree / "../../../escape.txt").resolve()
    assert escape == repo / "escape.txt"
    commands = f"touch {marker}\nrm -rf build\ngit push origin HEAD\ncat ~/.ssh/id_rsa > src/leak.txt"
    server.script(
        # Iteration 1: shell commands (aider's ```bash block) and a write outside the worktree.
        [
            raw(
                "reply",
                text=f"```bash\n{commands}\n```\n\n" + wire_aider.block("../../../escape.txt", "", "x\n"),
            )
        ],
        # Iteration 2: an edit of the frozen test, then the fix.
        [
            raw(
                "reply",
                text=wire_aider.block(
                    "tests/test_calc.py", "    assert add(2, 3) == 5\n", "    assert True\n"
                )
                + "\n"
                + wire_aider.block("src/calc.py", OLD_LINE, NEW_LINE),
            )
        ],
    )
    proc = run_workers(paths)
    s = status(paths)
    assert s is not None
    logs = agent_logs(paths)
    assert s.state == st.SUCCESS, (s.reason, proc.stdout, proc.stderr, logs)

    # (1) aider accepted every flag boss passes, and made the edit itself (its own console line).
    record = json.loads((paths.attempts("W1") / "s1i2" / "agent.json").read_text())
    argv = record["argv"]
    assert argv[0] == "aider" and "--no-detect-urls" in argv and argv[-2:] == ["--model", MODEL]
    assert record["version"] == "aider 0.86.2"
    assert "Applied edit to src/calc.py" in logs and "unrecognized arguments" not in logs
    assert [e.result.split(":")[0] for e in _events(paths, "red")] == ["ok"]
    assert "MERGED" in boss(repo, "merge", PLAN).stdout
    assert (repo / "src/calc.py").read_text() == FIXED

    # (2)-(4) the shell block was shown, never run: no marker, build/ intact, nothing pushed,
    # no key copied; no guard call and no approval request (nothing to judge or approve).
    assert not marker.exists() and (worktree / "build" / "out.txt").exists()
    assert not (worktree / "src" / "leak.txt").exists() and "not-a-real-key" not in logs
    assert guard_events(paths) == [] and approvals(repo) == []
    # A write outside the worktree: the sandbox refuses it (without one, aider creates the
    # file EMPTY before its `git add` fails); the error drops every edit of the reply (README).
    assert not escape.exists()
    assert "escape.txt" in logs
    # The frozen test: passed with --read (read-only, not --file), but aider still applied the
    # model's block for it under --yes-always; the worker restored it and said so.
    assert "tests/test_calc.py" in [argv[i + 1] for i, a in enumerate(argv) if a == "--read"]
    assert "tests/test_calc.py" not in [argv[i + 1] for i, a in enumerate(argv) if a == "--file"]
    tampered = _events(paths, "tamper")
    assert [e.iteration_id for e in tampered] == ["W1.s1.i2"] and "tests/test_calc.py" in tampered[0].result
    assert (repo / "tests/test_calc.py").read_text() == TEST
    main = [r for r in server.requests if r.main]
    assert "Do not edit these files!" in wire_aider.context(main[-1].body)

    # (5) usage: aider's analytics log (message_send: prompt_tokens, completion_tokens, cost)
    # summed over both runs equals what the server reported; the cost is aider's, from the
    # seeded litellm price list (gpt-4o per-token prices).
    assert all(r.main for r in server.requests), [r.path for r in server.requests]
    used = server.reported()
    assert s.usage["input_tokens"] == used.input_tokens and s.usage["output_tokens"] == used.output_tokens
    assert s.usage["cost_usd"] == pytest.approx(_cost(server, prices), abs=2e-6)

    # (9) the URL in the prompt was not fetched, no pip install tried: nothing left the machine.
    assert URL in wire_aider.user_message(main[0].body)
    assert sink.attempts == [] and "playwright" not in logs


def test_planner_writes_nothing_and_answers_a_manifest(tmp_path, server, sink):
    """(6) `boss plan --agent aider` (ask mode, --dry-run): a valid manifest, the edit refused."""
    repo = project(tmp_path)
    manifest = (
        "version: 1\nplan: calc\ntask: Fix the calculator\nintegration_test: python -m pytest -q\n"
        "workers:\n  - id: W1\n    title: Fix add\n    scope: ^src/\n"
        "    test: python -m pytest -q tests/test_calc.py\n"
        "    instructions: Make add() return the sum.\n"
    )
    reply = (
        wire_aider.block("src/planted.py", "", "x = 1\n")
        + wire_aider.block("src/calc.py", OLD_LINE, NEW_LINE)
        + f"\n```yaml\n{manifest}```\n"
    )
    server.script([raw("reply", text=reply)])
    proc = boss(repo, "plan", "--agent", "aider", "Fix the calculator", check=None)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    written = mf.load(repo / ".boss" / "plans" / "calc" / "manifest.yaml")
    assert [w.id for w in written.workers] == ["W1"]
    assert not (repo / "src/planted.py").exists() and (repo / "src/calc.py").read_text() == BUGGY
    assert git(repo, "status", "--porcelain", "--", "src") == ""
    # The planner prompt holds the schema's URL: not scraped (--no-detect-urls).
    assert "https://" in wire_aider.user_message(server.main_requests()[0].body)
    assert sink.attempts == []


def test_agent_timeout_stops_aider_and_what_it_started_in_a_new_session(tmp_path, server, monkeypatch):
    """(7) a user's --test-cmd that hangs in a new session: agent_timeout stops all of it."""
    monkeypatch.setenv(
        "BOSS_AIDER_ARGS", f"--model {MODEL} --auto-test --test-cmd 'setsid sleep 300 && true'"
    )
    repo = project(tmp_path)
    paths = plan(repo, "aider", extra="- agent_timeout: 15\n- max_iterations: 1\n- max_strategies: 1\n")
    server.script([raw("reply", text=wire_aider.block("src/calc.py", OLD_LINE, NEW_LINE))])
    started = time.monotonic()
    proc = run_workers(paths, timeout=120)
    elapsed = time.monotonic() - started
    s = status(paths)
    # The fix was applied before aider hung on its test command; the worker's own test decides.
    assert s.state == st.SUCCESS, (s.reason, proc.stdout, agent_logs(paths))
    assert elapsed < 50, elapsed
    assert [_stopped(e.result, agent_logs(paths)) for e in _events(paths, "agent")] == [True]
    assert "Applied edit to src/calc.py" in agent_logs(paths)
    # no_leftover_processes (tests/conftest.py) fails the test if the setsid sleep survived.


def test_kill_9_then_rerun_stops_what_aider_left_and_unreachable_model_times_out(
    tmp_path, server, monkeypatch
):
    """(8) kill -9 of the worker mid-run; the rerun stops the aider it left. With the model
    unreachable aider retries for a minute and exits 0: agent_timeout bounds it."""
    monkeypatch.setenv("OPENAI_API_BASE", f"http://127.0.0.1:{_closed_port()}/v1")
    repo = project(tmp_path)
    paths = plan(repo, "aider", extra="- agent_timeout: 20\n- max_iterations: 1\n- max_strategies: 1\n")
    pool = subprocess.Popen(["bash", str(paths.run_script)], cwd=repo, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            s = status(paths)
            if s is not None and s.child_pgid and _aider_pids(s.child_pgid):
                break  # aider is running (starting, or retrying the unreachable model)
            time.sleep(0.2)
        else:
            pytest.fail(f"aider never started: {agent_logs(paths)}")
        left = _aider_pids(s.child_pgid)
        os.kill(s.pid, signal.SIGKILL)
        pool.wait(timeout=30)
    finally:
        if pool.poll() is None:
            pool.kill()
            pool.wait()
    assert all(_alive(pid) for pid in left), "aider should outlive its killed worker"
    started = time.monotonic()
    run_workers(paths, timeout=120)
    elapsed = time.monotonic() - started
    assert not any(_alive(pid) for pid in left)
    reaps = _events(paths, "reap")
    assert reaps and any(str(pid) in reaps[-1].result for pid in left), reaps
    # The rerun's aider could not reach the model either: stopped at agent_timeout (20 s), not
    # after aider's own minute of retries; no request reached any server, no usage recorded.
    s = status(paths)
    assert s.state == st.FAILED and elapsed < 55, (elapsed, s.reason)
    log = (paths.attempts("W1") / "s1i1" / "agent.log").read_text(errors="replace")
    assert "OpenAIException - Connection" in log and "Retrying in" in log
    assert [_stopped(e.result, log) for e in _events(paths, "agent")] == [True]
    assert not s.usage.get("input_tokens")
    assert server.requests == []


def _aider_pids(pgid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(stat[2]) == pgid and "aider" in cmd:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _stopped(result: str, log: str) -> bool:
    """An agent event of a run stopped at its timeout by a stop's interrupt or terminate: the
    reaper reports the signal (-2, -15); from inside the sandbox, bubblewrap reports 128 + it.
    aider may catch the interrupt itself (base_coder.keyboard_interrupt: "^C again to exit", and
    sys.exit() on a second one), then exits 0 (seen under load): stopped all the same, and its
    log says so."""
    codes = (-2, -15, 130, 143, 0) if "\n^C " in log else (-2, -15, 130, 143)
    return result in {f"exit={code} (timed out)" for code in codes}
