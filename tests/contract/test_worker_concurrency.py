"""Contract: eight workers against a provider that serves two requests at once (issue 16's Done).

Eight Codex workers, `run_workers.sh -j 8`, one scripted Responses server that answers OpenAI's
429 (no `retry-after`) to any model request arriving while two are in flight, and holds each
one it serves HOLD seconds (a model takes time), so the agent runs overlap. Codex does not retry
a 429 without `retry-after` (tests/contract/test_cli_rate_limits.py): its run ends on the limit
at once, and what happens next is the worker's, not the CLI's. Each limited run halves the
plan's cap for Codex (`limits/codex.json`: once per overload), costs a wait and no iteration,
and the runs wait for a slot of the provider (`boss status`: "waiting for a provider slot")
until the cap lets them in. Every worker ends SUCCESS at iteration 1 (max_iterations 1: a
counted 429 would have ended it FAILED with a blocker report).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import limits
import pytest
import wire_responses
from direct import point
from mock_server import DONE, ModelServer, edit
from pipeline import (
    FIXED,
    NEW_LINE,
    OLD_LINE,
    PLAN,
    TEST_COMMAND,
    agent_logs,
    boss,
    git,
    project,
    run_workers,
)

from boss.core import statelog
from boss.core import status as st
from boss.core.paths import PlanPaths

WORKERS = 8
SERVED_AT_ONCE = 2
HOLD = 1.0  # seconds the server takes over each model request it serves
BACKOFF = 1.0  # the worker's first wait after a limit (BOSS_RATE_LIMIT_BACKOFF)
TURNS = 2  # model requests of a run that is not limited: the edit, then "Done."


@pytest.fixture
def server(
    scratch: Path, cli_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModelServer]:
    with ModelServer(wire=wire_responses.handle, log_path=tmp_path / "model-requests.jsonl") as s:
        for key, value in point("codex", s.url, scratch, cli_bin).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("BOSS_RATE_LIMIT_BACKOFF", str(BACKOFF))
        yield s


def eight_workers(repo: Path) -> PlanPaths:
    """A plan of WORKERS independent workers, each fixing add() in its own worktree."""
    workers = "".join(
        f"## W{n}: Fix add ({n})\n\n- scope: ^src/\n- test: {TEST_COMMAND}\n- agent: codex\n"
        "- max_iterations: 1\n- max_strategies: 1\n\nFix add() in src/calc.py so that 2 + 3 == 5.\n\n"
        for n in range(1, WORKERS + 1)
    )
    (repo.parent / "PLAN.md").write_text(
        f"# Fix the calculator\n\n- integration_test: {TEST_COMMAND}\n\n{workers}"
    )
    boss(repo, "plan", "--from", str(repo.parent / "PLAN.md"), "--plan", PLAN)
    return PlanPaths.of(repo, PLAN)


class Watcher:
    """Reads the workers' status files while the plan runs; on the first that waits for a
    provider slot, asks `boss status` (again while one waits, until it has shown it)."""

    def __init__(self, paths: PlanPaths) -> None:
        self.paths = paths
        self.shown: list[str] = []  # `boss status` outputs taken while a worker waited for a slot
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.watch, daemon=True)

    def waiting(self) -> bool:
        for n in range(1, WORKERS + 1):
            found = st.read(self.paths.status(f"W{n}"))  # written atomically: never half a file
            if found is not None and found.state == st.RUNNING and found.waiting_for:
                return True
        return False

    def watch(self) -> None:
        while not self.stop.is_set() and not any("waiting for a provider slot" in s for s in self.shown):
            if self.waiting():
                self.shown.append(boss(self.paths.repo, "status").stdout)
            self.stop.wait(0.05)


def test_eight_workers_against_a_server_serving_two_at_once_all_succeed_at_iteration_one(
    server: ModelServer, tmp_path: Path
) -> None:
    repo = project(tmp_path)
    paths = eight_workers(repo)
    server.script(*[[edit("src/calc.py", OLD_LINE.rstrip("\n"), NEW_LINE.rstrip("\n")), DONE]] * 100)
    server.admit(SERVED_AT_ONCE, limits.openai_rate_limit(None), hold=HOLD)
    watcher = Watcher(paths)
    watcher.thread.start()
    started = time.monotonic()
    try:
        proc = run_workers(paths, "-j", str(WORKERS), timeout=300)
    finally:
        watcher.stop.set()
        watcher.thread.join(timeout=30)
    took = time.monotonic() - started
    logs = "\n".join(agent_logs(paths, f"W{n}")[-1500:] for n in range(1, WORKERS + 1))
    assert proc.returncode == 0, (proc.stdout, proc.stderr, logs)
    events = statelog.read(paths.log)
    for n in range(1, WORKERS + 1):
        status = st.read(paths.status(f"W{n}"))
        assert status is not None and status.state == "SUCCESS", (n, status, proc.stdout, logs)
        # no iteration counted for a 429: max_iterations 1 would have ended it FAILED
        assert (status.strategy, status.iteration, status.waiting_until, status.waiting_for) == (1, 1, "", "")
        assert not paths.blocker(f"W{n}").exists()
        assert git(repo, "show", f"{status.head_commit}:src/calc.py") == FIXED.rstrip("\n")
        assert [e.iteration_id for e in events if e.action == "test" and e.worker == f"W{n}"] == [
            f"W{n}.s1.i1"
        ]
    assert f"{WORKERS} SUCCESS" in proc.stdout

    # the provider was at its limit, and the cap came down from -j
    refused = server.refused()
    limited = [e for e in events if e.action == "rate-limit"]
    assert refused and len(limited) == len(refused), (len(refused), limited)
    cap = json.loads((paths.root / "limits" / "codex.json").read_text())
    caps = [cap["max"], *(h["cap"] for h in cap["history"])]
    assert cap["max"] == WORKERS and cap["holders"] == [] and min(caps) < WORKERS, cap
    assert caps[1] == WORKERS // 2 and cap["history"][0]["why"] == "429 rate limit"
    changes = [e for e in events if e.action == "concurrency"]
    assert [(h["from"], h["cap"]) for h in cap["history"]] == [
        (int(e.result.split(" from ")[1].split()[0]), int(e.result.split(" to ")[1].split()[0]))
        for e in changes
    ]
    assert server.peak <= SERVED_AT_ONCE

    # Bounded requests. Each worker's runs are one streak of limited runs ended by its one run
    # without a limit (it then succeeds): after its k-th limit it waits at least BACKOFF*2**(k-1),
    # so in `took` seconds it can be limited at most 1 + log2(took/BACKOFF + 1) times; a limited
    # run makes at most TURNS requests (the last refused), a run without a limit TURNS.
    per_worker = 1 + math.floor(math.log2(took / BACKOFF + 1))
    posts = [r for r in server.requests if r.method == "POST"]
    assert len(posts) <= WORKERS * TURNS + len(refused) * TURNS
    assert len(refused) <= WORKERS * per_worker, (len(refused), per_worker)
    assert len([r for r in posts if not r.refused]) == len(server.main_requests())

    # the waits for a slot were seen, in the log and in `boss status` while they lasted
    waits = [e for e in events if e.action == "slot-wait"]
    assert any(e.result.startswith("waiting for a slot of provider codex (") for e in waits), waits
    assert any(e.result.startswith("waited ") for e in waits), waits
    shown = [s for s in watcher.shown if "waiting for a provider slot" in s]
    assert shown, watcher.shown
    assert "slot-wait: waiting for a slot of provider codex (" in shown[0]
    assert took < 180, took
    print(
        f"\n{WORKERS} workers: {took:.0f}s, {len(posts)} model requests ({len(refused)} refused), "
        f"caps {caps}, {len(waits)} slot-wait events, peak {server.peak}"
    )
