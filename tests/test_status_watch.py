"""`boss status --watch` started before the run waits for it to start, then follows it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import make_repo, worker_cmd
from worker_helpers import make_plan, worker


@pytest.fixture
def repo(tmp_path, monkeypatch):
    r = make_repo(tmp_path / "r", {"README.md": "r\n", "src/keep.txt": "k\n"})
    monkeypatch.chdir(r)
    return r


def watch(repo):
    return subprocess.Popen(
        [sys.executable, "-m", "boss", "status", "p", "--watch"],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "BOSS_SANDBOX": "off"},
    )


def test_watch_before_the_run_waits_for_it_then_shows_it_to_the_end(repo):
    make_plan(repo, [worker("W1")])
    proc = watch(repo)
    try:
        first = proc.stderr.readline()
        assert (
            first
            == "Plan p: waiting for the run to start (bash .boss/plans/p/run_workers.sh); Ctrl-C to stop.\n"
        )
        time.sleep(1.5)
        assert proc.poll() is None  # still waiting: no frame of PENDING rows, no exit
        worker_cmd("run", "p", "W1", cwd=repo, env={"BOSS_SANDBOX": "off"})
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "waiting" not in err  # said once
    assert out.startswith("plan p: ") and "W1" in out and "SUCCESS" in out


def test_ctrl_c_while_waiting_exits_130(repo):
    make_plan(repo, [worker("W1")])
    proc = watch(repo)
    try:
        assert "waiting for the run to start" in proc.stderr.readline()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130 and out == ""


def test_watch_before_any_plan_waits_for_the_plan_and_its_run(repo):
    proc = watch(repo)
    try:
        first = proc.stderr.readline()
        assert first == (
            "No plan yet: waiting for the run to start (`boss plan`, then its run_workers.sh); Ctrl-C to stop.\n"
        )
        time.sleep(1.5)
        make_plan(repo, [worker("W1")])
        time.sleep(1.5)
        assert proc.poll() is None  # a plan, but no run yet: still waiting
        worker_cmd("run", "p", "W1", cwd=repo, env={"BOSS_SANDBOX": "off"})
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "waiting" not in err and "W1" in out and "SUCCESS" in out


def test_watch_of_a_plan_that_is_not_there_among_others_is_an_error(repo):
    make_plan(repo, [worker("W1")])
    res = subprocess.run([sys.executable, "-m", "boss", "status", "nope", "--watch"], cwd=repo,
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert res.returncode == 2 and "no plan 'nope' (plans: p)" in res.stderr
