"""OpenCode 1.18.33, the real binary, against a scripted chat-completions server, through the pipeline.

OpenCode is pointed at the server the way a user points it at their provider: a provider with
`"npm": "@ai-sdk/openai-compatible"` (bundled in the binary: nothing is downloaded for it) in
the user's own config. OPENCODE_DISABLE_MODELS_FETCH=1 keeps it from fetching the models.dev
catalogue (models.opencode.ai), as a user offline would set it. What is left on the proxy sink
is OpenCode's background `npm install @opencode-ai/plugin` into its global config folder
(~/.config/opencode), which fails harmlessly when refused: see `_egress`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import wire_chat
from mock_server import ModelServer, edit, say, shell, write
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
    run,
    run_workers,
    sleepers,
    status,
)
from sink import ProxySink

from boss.core import statelog
from boss.core.paths import PlanPaths
from worker.agents.registry import PROFILES

PRICE_IN, PRICE_OUT = 3.0, 15.0  # USD per million tokens, in the provider's model config
NPM_PLUGIN_INSTALL = "CONNECT registry.npmjs.org:443 HTTP/1.1"


def _provider(url: str) -> dict[str, object]:
    return {"$schema": "https://opencode.ai/config.json",
            "provider": {"mock": {"npm": "@ai-sdk/openai-compatible", "name": "Mock",
                                  "options": {"baseURL": f"{url}/v1", "apiKey": "x"},
                                  "models": {"m": {"name": "m", "tool_call": True,
                                                   "cost": {"input": PRICE_IN, "output": PRICE_OUT}}}}},
            "model": "mock/m", "small_model": "mock/m"}  # fmt: skip


@pytest.fixture
def server(tmp_path: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelServer]:
    """The scripted model, named in the scratch user's global OpenCode config."""
    with ModelServer(wire=wire_chat.handle, log_path=tmp_path / "model-requests.jsonl") as s:
        folder = scratch / ".config" / "opencode"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "opencode.json").write_text(json.dumps(_provider(s.url)))
        monkeypatch.setenv("OPENCODE_DISABLE_MODELS_FETCH", "1")
        yield s


def _egress(sink: ProxySink) -> None:
    """Nothing but OpenCode's refused background install of its plugin SDK (one per run at most)."""
    assert set(sink.attempts) <= {NPM_PLUGIN_INSTALL}, sink.attempts


def _tool_results(server: ModelServer) -> list[str]:
    last = [r for r in server.main_requests()]
    return wire_chat.tool_results(last[-1].body) if last else []


def _main_usage(server: ModelServer, conversations: set[int]) -> tuple[int, int]:
    used = [r.usage for r in server.main_requests() if r.conversation in conversations and r.usage]
    return sum(u.input_tokens for u in used), sum(u.output_tokens for u in used)


def test_edit_tiers_approval_usage_merge_and_the_users_own_opencode_config(
    tmp_path: Path, scratch: Path, server: ModelServer, sink: ProxySink, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The provider lives in the user's own OPENCODE_CONFIG file (not the global config): boss
    # must keep it (its enforcement goes in OPENCODE_CONFIG_CONTENT, which OpenCode merges).
    user_config = tmp_path / "my-opencode.json"
    global_config = scratch / ".config" / "opencode" / "opencode.json"
    user_config.write_text(global_config.read_text())
    global_config.write_text("{}")
    monkeypatch.setenv("OPENCODE_CONFIG", str(user_config))
    (scratch / ".ssh").mkdir()
    (scratch / ".ssh" / "id_rsa").write_text("-----BEGIN SECRET KEY-----\nsecret-material-42\n")
    outside = tmp_path / "outside.txt"
    repo = project(tmp_path)
    paths = plan(repo, "opencode", scope="^(src|build)/")
    server.script(
        [shell("ls src"), shell("rm -rf build"), shell("git push origin main"), shell("cat ~/.ssh/id_rsa"),
         write(str(outside), "escaped\n"), edit("src/calc.py", OLD_LINE, NEW_LINE), say("Fixed add().")]
    )  # fmt: skip

    proc = run_workers(paths)
    logs = agent_logs(paths)
    assert proc.returncode == 0, (proc.stdout, proc.stderr, logs)
    s = status(paths)
    assert s.state == "SUCCESS", (s.reason, logs)
    # (1) the flags and the user's config were accepted; the edit went through OpenCode's edit tool.
    assert '"tool":"edit"' in logs and '"status":"completed"' in logs
    assert git(repo, "show", f"{s.head_commit}:src/calc.py") + "\n" == FIXED
    results = _tool_results(server)
    events = [e.result for e in guard_events(paths)]
    # (2) TIER 1: `ls src` was judged and ran (its output reached the model).
    assert any(r.startswith("tier1 allowed: ls src") for r in events), events
    assert "calc.py" in results[0]
    # (4) TIER 3: blocked by the plugin, recorded; no effect.
    assert git(repo, "show", f"{s.head_commit}:build/out.txt") == "old build"
    assert not outside.exists()
    wanted = {"rm -rf build", "git push origin main", "cat ~/.ssh/id_rsa", f"Write {outside}"}
    requests = {r["command"]: r for r in approvals(repo)}
    assert set(requests) == wanted, requests
    assert all(r.startswith("BLOCKED (TIER 3)") for r in results[1:5]), results
    assert not any("secret-material-42" in json.dumps(r.body) for r in server.requests)
    # Every shell or file tool call of the run reached the guard: the profile's count (the
    # worker's check that enforcement held) equals the guard's decisions.
    log = (paths.attempts("W1") / "s1i1" / "agent.log").read_text()
    assert PROFILES["opencode"].tool_calls(log) == len(events) == 6, events
    # (3) TIER 2: the edit was checkpointed first.
    assert any(r.startswith("tier2 allowed after checkpoint") and "Edit" in r for r in events), events
    assert git(repo, "for-each-ref", "--format=%(refname)", f"refs/boss/checkpoints/{PLAN}/W1/")
    # (5) usage: OpenCode reports each step of the session (a step_finish per model reply), with
    # cost from the model's configured price; its title request (small_model) is not in its
    # output, so status.json holds the main turns' tokens exactly, and their price.
    tokens_in, tokens_out = _main_usage(server, {0})
    title = [r.usage for r in server.requests if not r.main and r.usage]
    assert server.reported().input_tokens == tokens_in + sum(u.input_tokens for u in title)
    assert s.usage["input_tokens"] == tokens_in and s.usage["output_tokens"] == tokens_out, s.usage
    assert s.usage["cost_usd"] == pytest.approx((tokens_in * PRICE_IN + tokens_out * PRICE_OUT) / 1e6)
    # The prompt reaches the model wrapped in quotes (OpenCode quotes a message word holding a space).
    first = wire_chat.first_user_text(server.main_requests()[0].body)
    assert first.startswith('"') and "Fix add()" in first

    # An approved command runs once on `boss retry`.
    boss(repo, "approve", requests["rm -rf build"]["id"], "--plan", PLAN, "--reason", "stale build")
    server.script([shell("rm -rf build"), edit("src/calc.py", OLD_LINE, NEW_LINE), say("Done.")])
    boss(repo, "retry", "W1", "--plan", PLAN)
    s = status(paths)
    assert s.state == "SUCCESS", (s.reason, agent_logs(paths))
    assert "build/out.txt" not in git(repo, "ls-tree", "-r", "--name-only", s.head_commit).split()
    assert any("allowed once by approval" in e.result for e in guard_events(paths))

    # (1) MERGED: the fixed file is on main.
    merged = boss(repo, "merge", PLAN, "--json", check=None)
    assert merged.returncode == 0, (merged.stdout, merged.stderr)
    assert git(repo, "show", "main:src/calc.py") + "\n" == FIXED
    assert "MERGED" in merged.stdout, merged.stdout
    _egress(sink)


def test_planner_is_read_only_and_answers_a_valid_manifest(
    tmp_path: Path, server: ModelServer, sink: ProxySink
) -> None:
    repo = project(tmp_path)
    manifest = (
        "```yaml\nversion: 1\nplan: fix-calc\ntask: Fix add\nintegration_test: python -m pytest -q\n"
        "workers:\n  - id: W1\n    title: Fix add\n    scope: ['^src/']\n"
        "    test: python -m pytest -q tests/test_calc.py\n"
        "    instructions: |\n      Make add() in src/calc.py return a + b.\n```\n"
    )
    server.script(
        [write("PLANNED.txt", "planner wrote this\n"), shell("touch planner-was-here"), say(manifest)]
    )
    proc = boss(repo, "plan", "--agent", "opencode", "Fix add in src/calc.py", check=None)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    found = list((repo / ".boss").rglob("PLANNED.txt")) + list((repo / ".boss").rglob("planner-was-here"))
    assert not found and not (repo / "PLANNED.txt").exists() and not (repo / "planner-was-here").exists()
    results = _tool_results(server)
    # The plan agent has no write or shell tool at all: OpenCode answers a call of one with its
    # `invalid` tool (which the plugin lets say so); one it has is refused by the plugin.
    assert len(results) == 2 and all(
        "BLOCKED" in r or "denied" in r.lower() or "rule" in r or "unavailable tool" in r for r in results
    ), results
    paths = PlanPaths.of(repo, "fix-calc")
    assert paths.manifest.is_file()
    _egress(sink)


def test_agent_timeout_stops_the_command_opencode_started_in_its_own_session(
    tmp_path: Path, server: ModelServer, sink: ProxySink
) -> None:
    repo = project(tmp_path)
    paths = plan(repo, "opencode", extra="- agent_timeout: 25\n- max_iterations: 1\n- max_strategies: 1\n")
    server.script([shell("sleep 300")])
    tag = os.environ["BOSS_TEST_TAG"]
    started = time.monotonic()
    pool = subprocess.Popen(["bash", str(paths.run_script)], cwd=repo, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    seen = _wait_for_sleeper(tag)
    pool.wait(timeout=120)
    assert seen, agent_logs(paths)  # OpenCode ran it (in a session of its own)
    assert time.monotonic() - started < 90
    assert any(e.result.startswith("tier1 allowed: sleep 300") for e in guard_events(paths))
    assert any(e.action == "agent" and "timed out" in e.result for e in statelog.read(paths.log))
    assert not sleepers(tag), agent_logs(paths)  # (7) nothing of the run is left
    _egress(sink)


def _wait_for_sleeper(tag: str, seconds: float = 60) -> list[int]:
    deadline = time.monotonic() + seconds
    while not sleepers(tag) and time.monotonic() < deadline:
        time.sleep(0.2)
    return sleepers(tag)


def test_a_rerun_after_kill_9_of_the_worker_stops_what_the_dead_run_left(
    tmp_path: Path, server: ModelServer, sink: ProxySink
) -> None:
    repo = project(tmp_path)
    paths = plan(repo, "opencode")
    server.script([shell("sleep 300")])
    tag = os.environ["BOSS_TEST_TAG"]
    pool = subprocess.Popen(["bash", str(paths.run_script)], cwd=repo, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        assert _wait_for_sleeper(tag), agent_logs(paths)
        worker_pid = status(paths).pid
        assert worker_pid
        os.kill(worker_pid, signal.SIGKILL)
        pool.wait(timeout=30)
    finally:
        if pool.poll() is None:
            os.killpg(pool.pid, signal.SIGKILL)
            pool.wait()
    assert sleepers(tag)  # the dead run's command lives on, reparented
    server.script([edit("src/calc.py", OLD_LINE, NEW_LINE), say("Fixed.")])
    proc = run_workers(paths)
    assert not sleepers(tag), (proc.stdout, proc.stderr)  # (8) the rerun stopped it
    assert status(paths).state == "SUCCESS", agent_logs(paths)
    _egress(sink)


def test_nothing_but_the_model_server_is_reached_without_the_models_fetch_switch(
    tmp_path: Path, server: ModelServer, sink: ProxySink, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (9) Without OPENCODE_DISABLE_MODELS_FETCH, OpenCode asks models.opencode.ai for its model
    # catalogue (refused here; it runs on with the catalogue it ships); with it, only the npm
    # install of its plugin SDK is left.
    monkeypatch.delenv("OPENCODE_DISABLE_MODELS_FETCH")
    work = tmp_path / "w"
    work.mkdir()
    git(work.parent, "init", "-q", str(work))
    server.script([say("Hello.")])
    proc = run(["opencode", "run", "--format", "json", "--dir", str(work), "--", "say hello"], work)
    assert proc.returncode == 0, proc.stderr
    assert set(sink.attempts) <= {NPM_PLUGIN_INSTALL, "CONNECT models.opencode.ai:443 HTTP/1.1"}, (
        sink.attempts
    )
    assert '"text":"Hello."' in proc.stdout
