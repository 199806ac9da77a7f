"""Issue 5 end to end: a worker driving (fake) Claude Code headless, under the tiers.

The agent edits a file (TIER 2: a checkpoint first) and tries `rm -rf build` (TIER 3: blocked,
recorded); a person approves the request; on the next run that exact command goes through once.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from conftest import boss, git, make_repo, worker_cmd
from worker_helpers import make_plan, worker

from boss import statelog
from worker import status as st

FAKES = Path(__file__).parent / "fakes" / "bin"


def test_claude_worker_checkpoints_blocks_and_runs_an_approved_command_once(tmp_path, monkeypatch):
    repo = make_repo(
        tmp_path / "repo",
        {"src/calc.py": "def add(a, b):\n    return 0\n", "build/out.txt": "old build\n", "README.md": "r\n"},
    )
    monkeypatch.chdir(repo)
    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("BOSS_PYTHON", sys.executable)
    step = {"replace": {"src/calc.py": ["return 0", "return a + b"]}, "run": "rm -rf build"}
    w = worker(
        "W1", agent="claude", scope=["^src/", "^build/"], test="grep -q 'a + b' src/calc.py", steps=[step]
    )
    paths, _ = make_plan(repo, [w])

    worker_cmd("run", "p", "W1", cwd=repo)
    status = st.read(paths.status("W1"))
    assert status.state == "SUCCESS"
    head = status.head_commit
    assert git(repo, "show", f"{head}:build/out.txt") == "old build"  # the deletion was blocked
    guard = [e for e in statelog.read(paths.log) if e.action == "guard"]
    assert any(e.result.startswith("tier2") and "checkpoint" in e.result for e in guard), guard
    assert any(e.result.startswith("tier3") and "rm -rf build" in e.result for e in guard), guard
    assert git(repo, "for-each-ref", "--format=%(refname)", "refs/boss/checkpoints/")

    pending = json.loads(boss("approvals", "--json", cwd=repo).stdout)
    requests = pending["requests"] if isinstance(pending, dict) else pending
    assert [r["command"] for r in requests] == ["rm -rf build"]
    assert requests[0]["worker"] == "W1"
    boss("approve", requests[0]["id"], "--plan", "p", "--reason", "stale build", cwd=repo)

    boss("retry", "W1", "--plan", "p", cwd=repo)
    status = st.read(paths.status("W1"))
    assert status.state == "SUCCESS"
    files = git(repo, "ls-tree", "-r", "--name-only", status.head_commit).split()
    assert "build/out.txt" not in files  # the approved command ran, once
    decisions = [e.result for e in statelog.read(paths.log) if e.action in ("guard", "approve")]
    assert any("approved" in d for d in decisions), decisions
    after = json.loads(boss("approvals", "--json", cwd=repo).stdout)
    left = after["requests"] if isinstance(after, dict) else after
    assert all(r["command"] != "rm -rf build" or r.get("status") != "pending" for r in left)


def test_a_worker_held_back_by_a_pending_approval_says_so_in_its_blocker_report(tmp_path, monkeypatch):
    # The work needs `rm -rf build`, which the guard blocks: the worker cannot pass until a
    # person decides, and its reason and report must lead to that decision, not to the code.
    repo = make_repo(tmp_path / "repo", {"build/out.txt": "old build\n", "README.md": "r\n"})
    monkeypatch.chdir(repo)
    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("BOSS_PYTHON", sys.executable)
    w = worker(
        "W1", agent="claude", scope=["^build/"], test="test ! -e build/out.txt", steps=[{"run": "rm -rf build"}],
        max_iterations=1, max_strategies=1,
    )  # fmt: skip
    paths, _ = make_plan(repo, [w])

    worker_cmd("run", "p", "W1", cwd=repo, check=1)
    status = st.read(paths.status("W1"))
    assert status.state == "FAILED"
    assert "1 approval request(s) pending (boss approvals)" in status.reason
    report = paths.blocker("W1").read_text()
    assert "## Waiting for approval" in report and "- R1: `rm -rf build`" in report
    assert "needs a person's approval" in report  # the hypothesis
    assert "1. Decide the approval requests above: `boss approve ID --plan p`" in report
    assert "`boss retry W1 --plan p`" in report

    boss("approve", "R1", "--plan", "p", cwd=repo)
    boss("retry", "W1", "--plan", "p", cwd=repo)
    assert st.read(paths.status("W1")).state == "SUCCESS"
