"""boss merge survives kill -9 at every step: the base is untouched or fully landed, and a rerun
ends with the same verdicts (and the same tree on main) as an uninterrupted ceremony."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import boss, git
from merge_helpers import make_scenario, spec

from boss.core.journal import load as load_journal

WORKERS = [
    spec("W1"),
    spec("W2", depends_on=["W1"]),
    spec("W3"),
    spec("W4"),
    spec("W5"),
]


def build(root):
    s = make_scenario(root, WORKERS)
    s.work("W1", {"src/a.txt": "a\n", "src/shared.txt": "one\nW1\nthree\n"})
    s.work("W2", {"src/b.txt": "b\n"})
    s.work("W3", {"src/bad.txt": "BROKEN\n"})  # breaks the suite: REVERTED
    s.work("W4", {"src/shared.txt": "one\nW4\nthree\n"})  # conflicts with W1
    s.work("W5", {"src/e.txt": "e\n"})
    return s


def outcome(s):
    data = json.loads((s.paths.merge_dir / "report.json").read_text())
    return {w["id"]: w["verdict"] for w in data["workers"]}, git(s.repo, "rev-parse", "main^{tree}")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The verdicts and main's tree after an uninterrupted ceremony on the same scenario."""
    s = build(tmp_path_factory.mktemp("reference") / "repo")
    proc = boss("merge", cwd=s.repo, check=None)
    verdicts, tree = outcome(s)
    assert verdicts == {"W1": "MERGED", "W2": "MERGED", "W3": "REVERTED", "W4": "CONFLICT", "W5": "MERGED"}
    return verdicts, tree, proc.returncode


POINTS = ["prepare", "baseline", "merge", "merge:W3", "merge:W4", "accept:W2", "test", "test:W3"]
POINTS += ["verify", "land", "checkout"]  # accept: after a merge's acceptance test; verify: the final check


# One xdist worker runs them all (scripts/test.sh runs the suite in parallel): the reference is built once.
@pytest.mark.xdist_group("merge_crash_reference")
@pytest.mark.parametrize("point", POINTS)
def test_kill_9_at_each_step_then_rerun(tmp_path, reference, point):
    verdicts, tree, code = reference
    s = build(tmp_path / "repo")
    before = s.main()
    crashed = boss("merge", cwd=s.repo, check=None, env={"BOSS_MERGE_CRASH_AT": point})
    assert crashed.returncode == -signal.SIGKILL, (crashed.stdout, crashed.stderr)
    # the base is either untouched or fully landed, never anything in between
    now = s.main()
    if point == "checkout":
        assert git(s.repo, "rev-parse", "main^{tree}") == tree
    else:
        assert now == before
    j = load_journal(s.paths.merge_dir / "journal.json")
    assert j is not None and j.step != "done"

    rerun = boss("merge", cwd=s.repo, check=None)
    assert "resuming" in rerun.stderr
    assert rerun.returncode == code
    assert outcome(s) == (verdicts, tree)
    assert git(s.repo, "status", "--porcelain") == ""  # the user's checkout is clean and current
    assert (s.repo / "src/a.txt").read_text() == "a\n"
    integration = s.paths.worktree_root / "p" / "_integration"
    assert subprocess.run(["git", "-C", str(integration), "rev-parse", "-q", "--verify", "MERGE_HEAD"],
                          capture_output=True).returncode == 1  # fmt: skip
    assert git(integration, "status", "--porcelain") == ""
    assert load_journal(s.paths.merge_dir / "journal.json").step == "done"


def test_external_kill_9_while_the_integration_test_runs(tmp_path):
    s = make_scenario(tmp_path / "repo", [spec("W1"), spec("W2")])
    s.work("W1", {"src/slow.txt": "slow\n"})
    s.work("W2", {"src/b.txt": "b\n"})
    before = s.main()
    mark = tmp_path / "testing"
    # The slow test marks its start beside the repository, outside any sandbox.
    env = {**os.environ, "SLOW_SECONDS": "3", "SLOW_MARK": str(mark), "BOSS_SANDBOX": "off"}
    # One slot: the ceremony tests W1's merge itself (with slots, see the test below).
    proc = subprocess.Popen([sys.executable, "-m", "boss", "merge", "--slots", "1"], cwd=s.repo, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 30
    while not mark.exists():  # the integration test of W1's merge has started
        if time.monotonic() > deadline:
            pytest.fail("the ceremony never reached the test of W1")
        time.sleep(0.02)
    j = load_journal(s.paths.merge_dir / "journal.json")
    assert j.current["id"] == "W1"
    proc.kill()
    assert proc.wait() == -signal.SIGKILL
    assert s.main() == before
    rerun = boss("merge", cwd=s.repo, check=0, env={"SLOW_SECONDS": "0"})
    assert "resuming" in rerun.stderr
    verdicts, _ = outcome(s)
    assert verdicts == {"W1": "MERGED", "W2": "MERGED"}
    assert {"src/slow.txt", "src/b.txt"} <= set(git(s.repo, "ls-tree", "-r", "--name-only", "main").split())


def test_base_moved_while_interrupted_is_left_alone(tmp_path):
    s = build(tmp_path / "repo")
    boss("merge", cwd=s.repo, check=None, env={"BOSS_MERGE_CRASH_AT": "land"})
    (s.repo / "README.md").write_text("a commit of my own\n")
    git(s.repo, "commit", "-qam", "mine")
    mine = s.main()
    rerun = boss("merge", cwd=s.repo, check=1)
    assert s.main() == mine
    assert "moved" in rerun.stdout and "boss/p/integration" in rerun.stdout
    # main diverged: the advice is to merge again, not a fast-forward that cannot work
    assert "boss merge` again" in rerun.stdout and "--ff-only" not in rerun.stdout
    assert "src/a.txt" in git(s.repo, "ls-tree", "-r", "--name-only", "boss/p/integration")


def test_an_integration_worktree_deleted_by_hand_is_made_again(tmp_path):
    s = build(tmp_path / "repo")
    boss("merge", cwd=s.repo, check=None, env={"BOSS_MERGE_CRASH_AT": "merge:W3"})
    integration = s.paths.worktree_root / "p" / "_integration"
    shutil.rmtree(integration)
    boss("merge", cwd=s.repo, check=1)
    verdicts, _ = outcome(s)
    assert verdicts == {"W1": "MERGED", "W2": "MERGED", "W3": "REVERTED", "W4": "CONFLICT", "W5": "MERGED"}
    shutil.rmtree(integration)
    boss("merge", cwd=s.repo, check=1)  # a new ceremony, its folder gone but still registered
    assert outcome(s)[0]["W3"] == "REVERTED"


def test_a_landing_killed_before_the_checkout_followed_keeps_the_persons_unrelated_edit(tmp_path):
    s = make_scenario(tmp_path / "repo", [spec("W1")])
    s.work("W1", {"src/a.txt": "a\n"})
    (s.repo / "README.md").write_text("my own edit\n")  # uncommitted, and no file the merge changes
    crashed = boss("merge", cwd=s.repo, check=None, env={"BOSS_MERGE_CRASH_AT": "checkout"})
    assert crashed.returncode == -signal.SIGKILL
    assert not (s.repo / "src/a.txt").exists()  # the base moved; its files did not follow yet
    boss("merge", cwd=s.repo, check=0)
    assert (s.repo / "src/a.txt").read_text() == "a\n"
    assert (s.repo / "README.md").read_text() == "my own edit\n"
    assert git(s.repo, "status", "--porcelain") == "M README.md"


def test_external_kill_9_with_test_runs_in_flight_in_the_slots(tmp_path):
    # Four slots test W1's and W2's candidates at once; the ceremony is killed with -9 while the
    # slow one runs. Its test runs outlive it (each under its own reaper): the rerun stops
    # them (their owner marker names this repository and plan), then finishes as a clean run.
    s = make_scenario(tmp_path / "repo", [spec("W1"), spec("W2")])
    s.work("W1", {"src/slow.txt": "slow\n"})
    s.work("W2", {"src/b.txt": "b\n"})
    before = s.main()
    mark = tmp_path / "testing"
    # A duration no other process on the machine sleeps (tests run in parallel): the slow runs
    # found below are this ceremony's.
    slow = f"60.{secrets.randbelow(10**6):06d}"
    env = {**os.environ, "SLOW_SECONDS": slow, "SLOW_MARK": str(mark), "BOSS_SANDBOX": "off"}
    proc = subprocess.Popen([sys.executable, "-m", "boss", "merge", "--slots", "4"], cwd=s.repo, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 30
    while not mark.exists():  # a slot's run of the slow test has started
        if time.monotonic() > deadline:
            pytest.fail("no slot ever ran the slow test")
        time.sleep(0.02)
    proc.kill()
    assert proc.wait() == -signal.SIGKILL
    assert s.main() == before
    deadline = time.monotonic() + 10  # the mark is made just before the sleep starts
    while not (left := _sleepers(f"sleep {slow}")) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert left, "the killed ceremony's slow test run is still running (each run outlives it)"
    started = time.monotonic()
    rerun = boss("merge", "--slots", "4", cwd=s.repo, check=0, env={"SLOW_SECONDS": "0"})
    assert time.monotonic() - started < 50  # it did not wait for the old run to end by itself
    assert "resuming" in rerun.stderr
    assert not [p for p in _sleepers(f"sleep {slow}") if p in left]
    verdicts, _ = outcome(s)
    assert verdicts == {"W1": "MERGED", "W2": "MERGED"}
    assert s.main() != before
    report = json.loads((s.paths.merge_dir / "report.json").read_text())
    assert report["slots"] == 4 and report["rounds"] >= 1


def _sleepers(command: str) -> list[int]:
    """Pids of the processes whose command line is command."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b" ".join(a for a in argv if a).decode(errors="replace") == command:
                found.append(int(entry.name))
    return found
