"""A worker takes a slot of its provider around each agent run (worker.lifecycle.slots).

Real `worker run` processes and run_workers.sh with the scripted agent, a real process holding
the slot it waits for: the wait is in its status and in `boss status`, a stop signal ends it
at once, the slot freed lets it on (and its run grows the cap), and run_workers.sh's -j is the
cap's most. Eight real workers against a provider at its limit: tests/contract/test_worker_concurrency.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import boss, make_repo, worker_cmd
from worker_helpers import make_plan, worker

from boss.core import statelog
from boss.core import status as st
from boss.core.limiter import Limits, Taken
from boss.core.paths import PlanPaths


@pytest.fixture
def calc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    r = make_repo(tmp_path / "calc", {"src/calc.py": "def add(a, b):\n    return 0\n", "README.md": "calc\n"})
    monkeypatch.chdir(r)
    monkeypatch.delenv("BOSS_JOBS", raising=False)
    return r


def wait_until(check, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.1)


def held_by_another(paths: PlanPaths, jobs: int) -> tuple[subprocess.Popen[bytes], Limits]:
    """A live process holding the only slot of the scripted agent's provider (cap 1 of jobs)."""
    limits = Limits(paths.root / "limits", "scripted")
    for _ in range(jobs.bit_length()):  # halve it to 1
        slot = limits.take("other", jobs)
        assert isinstance(slot, Taken)
        limits.give_back(slot, "429 rate limit")
    holder = subprocess.Popen(["sleep", "120"])
    assert isinstance(limits.take("other", jobs, pid=holder.pid), Taken)
    return holder, limits


def events(paths: PlanPaths, action: str) -> list[statelog.Event]:
    return [e for e in statelog.read(paths.log) if e.action == action]


def test_a_worker_waits_for_a_slot_in_its_status_and_goes_on_when_it_is_freed(calc: Path) -> None:
    paths, _ = make_plan(calc, [worker("W1")])
    holder, limits = held_by_another(paths, 2)
    # run alone (no BOSS_JOBS): it joins the cap a pool of its plan left, at that pool's -j
    proc = subprocess.Popen([sys.executable, "-m", "worker", "run", "p", "W1"], cwd=calc)
    try:
        wait_until(lambda: (s := st.read(paths.status("W1"))) is not None and s.waiting_for == "scripted")
        status = st.read(paths.status("W1"))
        assert status is not None
        assert status.state == "RUNNING" and status.iteration == 1
        assert (
            status.last_event == "slot-wait: waiting for a slot of provider scripted (1 running, cap 1 of 2)"
        )
        shown = json.loads(boss("status", "--json", cwd=calc).stdout)["workers"][0]
        assert shown["waiting_for"] == "scripted"
        assert "plan p: 1 RUNNING (1 waiting for a provider slot)" in boss("status", cwd=calc).stdout
        time.sleep(1)
        assert proc.poll() is None  # still waiting: the slot is held
        holder.kill()
        holder.wait()
        assert proc.wait(timeout=60) == 0
    finally:
        holder.kill()
        if proc.poll() is None:
            proc.kill()
    status = st.read(paths.status("W1"))
    assert status is not None and (status.state, status.iteration, status.waiting_for) == ("SUCCESS", 1, "")
    waited = events(paths, "slot-wait")
    assert (
        waited[0].result.startswith("waiting for a slot of provider scripted")
        and waited[0].iteration_id == "W1.s1.i1"
    )
    assert (
        waited[-1].result.startswith("waited ")
        and "for a slot of provider scripted (1 running, cap 1 of 2)" in waited[-1].result
    )
    # its run ended without a limit: the cap grew back by one, to the pool's -j
    grew = events(paths, "concurrency")
    assert [e.result for e in grew] == [
        "provider scripted: cap grew from 1 to 2 agent run(s) at once (of 2): a run ended without a limit"
    ]
    data = limits.read()
    assert data is not None and data["cap"] == 2 and data["holders"] == []


def test_a_stop_signal_while_waiting_for_a_slot_ends_the_worker_at_once(calc: Path) -> None:
    paths, _ = make_plan(calc, [worker("W1")])
    holder, limits = held_by_another(paths, 4)
    proc = subprocess.Popen([sys.executable, "-m", "worker", "run", "p", "W1"], cwd=calc,
                            env={**os.environ, "BOSS_JOBS": "4"})  # fmt: skip
    try:
        wait_until(lambda: (s := st.read(paths.status("W1"))) is not None and bool(s.waiting_for))
        stopped = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) != 0
        assert time.monotonic() - stopped < 10
    finally:
        holder.kill()
        if proc.poll() is None:
            proc.kill()
    status = st.read(paths.status("W1"))
    assert status is not None and status.state == "FAILED" and status.waiting_for == ""
    assert status.reason.startswith("interrupted during iteration 1")
    assert not events(paths, "agent")  # the agent never started
    data = limits.read()
    assert data is not None and [h["worker"] for h in data["holders"]] == ["other"] and data["cap"] == 1


def test_a_worker_run_alone_takes_no_slot_and_run_workers_passes_its_j(calc: Path) -> None:
    paths, _ = make_plan(calc, [worker("W1"), worker("W2")])
    worker_cmd("run", "p", "W1", cwd=calc)
    assert not (paths.root / "limits").exists()
    proc = subprocess.run(["bash", str(paths.run_script), "-j", "3"], cwd=calc, capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    data = Limits(paths.root / "limits", "scripted").read()
    assert data is not None and (data["max"], data["cap"], data["holders"]) == (3, 3, []), data
