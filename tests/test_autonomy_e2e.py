"""A worker held back by a pending approval, driving the fake Claude Code headless.

The flow itself (checkpoint, block, approve, retry runs the command once) is proven against the
real CLI in tests/contract/test_claude.py; this keeps what boss says while a request waits.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from conftest import boss, make_repo, worker_cmd
from worker_helpers import make_plan, worker

from boss.core import status as st

FAKES = Path(__file__).parent / "fakes" / "bin"


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
