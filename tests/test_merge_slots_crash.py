"""`boss merge --slots 4` killed with tests in flight: the base is untouched, `boss merge` again
finishes from the journal with the verdicts and the tree of an uninterrupted serial ceremony, and
no test process of the killed ceremony is left running."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import _tagged_processes, boss, git
from merge_helpers import make_scenario, spec

from boss.core.journal import load as load_journal

# One xdist worker runs the module (scripts/test.sh runs the suite in parallel): its tests share
# the serial ceremony (a module fixture), built once.
pytestmark = pytest.mark.xdist_group("merge_slots_crash")

# The integration test: every tree with src/slow.txt marks the test's start in $SLOW_MARK and
# sleeps $SLOW_SECONDS (long in the killed ceremony, none after), so tests are in flight when it dies.
CHECK_SH = """#!/usr/bin/env bash
set -u
if [ -f src/slow.txt ]; then
  if [ -n "${SLOW_MARK:-}" ]; then : > "$SLOW_MARK"; fi
  sleep "${SLOW_SECONDS:-0}"
fi
sleep 0.3
if grep -rq BROKEN src; then echo "FAIL: src/ holds broken code"; exit 1; fi
echo ok
"""
FILES = {"README.md": "# sample\n", "check.sh": CHECK_SH, "src/shared.txt": "one\ntwo\nthree\n"}
LONG = "47"  # seconds: far longer than the test; a process still sleeping it was left behind
EXPECTED = {"W1": "MERGED", "W2": "MERGED", "W3": "REVERTED", "W4": "MERGED", "W5": "CONFLICT"}


def build(root):
    s = make_scenario(
        root, [spec(f"W{i}") for i in range(1, 6)], integration_test="bash check.sh", files=FILES
    )
    (s.repo / ".boss/config.yaml").write_text("sandbox: off\n")  # the test marks its start beside the repo
    s.work("W1", {"src/w1.txt": "1\n", "src/shared.txt": "one\nW1\nthree\n"})
    s.work("W2", {"src/slow.txt": "slow\n"})  # every candidate from here on is slow
    s.work("W3", {"src/bad.txt": "BROKEN\n"})
    s.work("W4", {"src/w4.txt": "4\n"})
    s.work("W5", {"src/shared.txt": "one\nW5\nthree\n"})  # conflicts with W1
    return s


def outcome(s):
    data = json.loads((s.paths.merge_dir / "report.json").read_text())
    return {w["id"]: w["verdict"] for w in data["workers"]}, git(s.repo, "rev-parse", "main^{tree}")


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The verdicts, main's tree and the exit code of an uninterrupted `--slots 1` ceremony."""
    s = build(tmp_path_factory.mktemp("serial") / "repo")
    proc = boss("merge", "p", "--slots", "1", cwd=s.repo, check=None)
    verdicts, tree = outcome(s)
    assert verdicts == EXPECTED, proc.stderr
    return verdicts, tree, proc.returncode


def no_test_left_running():
    """Every process this test started (tagged by the conftest) is gone: the killed ceremony's
    tests too, though they were to sleep for LONG seconds more."""
    tag = os.environ["BOSS_TEST_TAG"]
    deadline = time.monotonic() + 5
    while (left := _tagged_processes(tag)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for line in left:  # stopped here, so that the failure is this test's alone
        with contextlib.suppress(OSError):
            os.kill(int(line.split(":")[0]), signal.SIGKILL)
    assert not left, f"the killed ceremony's processes still run: {left}"


def rerun_gives_the_serial_answer(s, serial, before):
    verdicts, tree, code = serial
    assert s.main() == before  # the base was untouched by the killed ceremony
    j = load_journal(s.paths.merge_dir / "journal.json")
    assert j is not None and j.step != "done"
    rerun = boss("merge", "p", "--slots", "4", cwd=s.repo, check=None, env={"SLOW_SECONDS": "0"})
    assert "resuming" in rerun.stderr, rerun.stderr
    assert rerun.returncode == code, (rerun.stdout, rerun.stderr)
    assert outcome(s) == (verdicts, tree)
    assert load_journal(s.paths.merge_dir / "journal.json").step == "done"
    assert git(s.repo, "status", "--porcelain") == ""
    no_test_left_running()


def test_killed_at_a_test_result_with_tests_in_flight(tmp_path, serial):
    s = build(tmp_path / "repo")
    before, mark = s.main(), tmp_path / "slow-started"
    env = {"BOSS_MERGE_CRASH_AT": "test", "SLOW_SECONDS": LONG, "SLOW_MARK": str(mark)}
    crashed = boss("merge", "p", "--slots", "4", cwd=s.repo, check=None, env=env)
    assert crashed.returncode == -signal.SIGKILL, (crashed.stdout, crashed.stderr)
    # with 4 slots the slow candidate (W2's) ran beside the first one whose result killed it
    assert mark.exists(), "no test was in flight when the ceremony died"
    rerun_gives_the_serial_answer(s, serial, before)


def test_killed_from_outside_while_slow_tests_run(tmp_path, serial):
    s = build(tmp_path / "repo")
    before, mark = s.main(), tmp_path / "slow-started"
    env = {**os.environ, "SLOW_SECONDS": LONG, "SLOW_MARK": str(mark)}
    proc = subprocess.Popen([sys.executable, "-m", "boss", "merge", "p", "--slots", "4"], cwd=s.repo, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 60
    while not mark.exists():  # a slow test has started
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            proc.wait()
            pytest.fail("the ceremony never started a slow test")
        time.sleep(0.02)
    time.sleep(0.5)  # let the other slots' tests start too
    proc.kill()
    assert proc.wait() == -signal.SIGKILL
    rerun_gives_the_serial_answer(s, serial, before)


@pytest.mark.parametrize("point", ["merge", "accept", "verify", "land"])
def test_killed_at_another_step_resumes_to_the_serial_answer(tmp_path, serial, point):
    s = build(tmp_path / "repo")
    before = s.main()
    crashed = boss("merge", "p", "--slots", "4", cwd=s.repo, check=None, env={"BOSS_MERGE_CRASH_AT": point})
    assert crashed.returncode == -signal.SIGKILL, (crashed.stdout, crashed.stderr)
    rerun_gives_the_serial_answer(s, serial, before)


def test_a_ceremony_in_another_repository_leaves_this_ones_tests_running(tmp_path, serial):
    """What a killed ceremony left is stopped by the next ceremony of the same plan in the same
    repository, never by one of a plan of the same name elsewhere (both plans here are `p`)."""
    a, b = build(tmp_path / "a"), build(tmp_path / "b")
    mark = tmp_path / "slow-started"
    env = {**os.environ, "SLOW_SECONDS": "3", "SLOW_MARK": str(mark)}
    proc = subprocess.Popen([sys.executable, "-m", "boss", "merge", "p", "--slots", "4"], cwd=a.repo, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 60
    while not mark.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert mark.exists(), "the ceremony never started a slow test"
    boss("merge", "p", "--slots", "1", cwd=b.repo, check=None, env={"SLOW_SECONDS": "0"})
    assert proc.wait(timeout=120) == serial[2]
    assert outcome(a) == outcome(b) == serial[:2]
