"""`boss do` when things happen meanwhile: the branch moves, the process is killed, another run.

The installed CLI on real repositories with the scripted agent (helpers in tests/test_do.py).
A step that waits does so on a file in the test's folder, and says it started with a file in
its own worktree (the sandbox lets an agent write nowhere else).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import boss, git
from test_do import FIX, RIGHT, TEST, WRONG, calc_repo, do, gated, head, plan_of, status_row, task

# 5. the branch moved meanwhile


def test_work_lands_on_top_of_a_commit_made_meanwhile_and_undo_is_refused(tmp_path):
    repo = calc_repo(tmp_path)
    flag = tmp_path / "dealt-with"
    before = head(repo)
    plan = plan_of(do(repo, task("Fix add", gated(flag)), check=1))
    (repo / "docs.md").write_text("docs\n")
    git(repo, "add", "docs.md")
    git(repo, "commit", "-qm", "docs meanwhile")
    meanwhile = head(repo)
    flag.write_text("go\n")
    boss("do", "--retry", "--plan", plan, cwd=repo)
    landed = head(repo)
    assert git(repo, "merge-base", "--is-ancestor", meanwhile, landed) == ""
    assert (repo / "docs.md").read_text() == "docs\n" and (repo / "src/calc.py").read_text() == RIGHT
    refused = boss("undo", cwd=repo, check=1)
    assert "git revert" in refused.stderr and "nothing changed" in refused.stderr
    assert head(repo) == landed and head(repo, f"refs/boss/{plan}/rollback") == before


def test_a_commit_made_while_the_worker_runs_is_kept(tmp_path):
    repo = calc_repo(tmp_path)
    started = repo / ".worktrees/do-fix-add/W1/src/started"  # the agent writes only in its worktree
    go = tmp_path / "go"
    wait = f"touch src/started; for i in $(seq 600); do [ -f {shlex.quote(str(go))} ] && break; sleep 0.1; done; rm src/started"
    proc = subprocess.Popen(
        [sys.executable, "-m", "boss", "do", task("Fix add", {"run": wait, **FIX}), "--test", TEST,
         "--scope", "^src/", "--agent", "scripted"],
        cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert started.exists(), proc.communicate()
        (repo / "docs.md").write_text("docs\n")
        git(repo, "add", "docs.md")
        git(repo, "commit", "-qm", "docs meanwhile")
        meanwhile = head(repo)
        go.write_text("go\n")
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, (out, err)
    assert git(repo, "merge-base", "--is-ancestor", meanwhile, head(repo)) == ""
    assert (repo / "docs.md").read_text() == "docs\n" and (repo / "src/calc.py").read_text() == RIGHT
    assert "git revert" in boss("undo", cwd=repo, check=1).stderr


# 7. killed, then resumed


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "Ctrl-C"])
def test_a_killed_do_is_finished_by_retry(tmp_path, sig):
    repo = calc_repo(tmp_path)
    flag = tmp_path / "dealt-with"
    started = repo / ".worktrees/do-fix-add/W1/src/started"
    step = {
        "run": f"rm -f src/started; [ -f {shlex.quote(str(flag))} ] || {{ touch src/started; sleep 60; }}",
        **FIX,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "boss", "do", task("Fix add", step), "--test", TEST, "--scope", "^src/",
         "--agent", "scripted"],
        cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert started.exists(), proc.communicate()
    finally:
        os.killpg(proc.pid, sig)  # Ctrl-C at a terminal: SIGINT to its foreground process group
        out, err = proc.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert proc.returncode == 130, (out, err)
        assert "resume: boss do --retry --plan do-fix-add" in err
        assert status_row(repo, "do-fix-add")[1] == "FAILED"
    before = head(repo)
    assert (repo / "src/calc.py").read_text() == WRONG
    flag.write_text("go\n")
    again = boss("do", "--retry", cwd=repo, check=None)
    assert again.returncode == 0, (again.stdout, again.stderr)
    assert "landed: main moved from" in again.stdout
    assert (repo / "src/calc.py").read_text() == RIGHT
    assert git(repo, "merge-base", "--is-ancestor", before, head(repo)) == ""


def waiting(go: Path, flag: Path | None = None) -> dict:
    """A step that marks it started (src/started in its worktree), waits for go, then fixes
    add(); with flag, it does all that only once flag exists."""
    q = shlex.quote(str(go))
    run = f"touch src/started; for i in $(seq 600); do [ -f {q} ] && break; sleep 0.1; done; rm src/started"
    run += "; sed -i 's/a - b/a + b/' src/calc.py"
    return {"run": f"[ -f {shlex.quote(str(flag))} ] || exit 0; {run}" if flag else run}


def wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not path.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert path.exists(), proc.communicate()


def test_one_do_at_a_time_on_a_plan(tmp_path):
    repo = calc_repo(tmp_path)
    go = tmp_path / "go"
    proc = subprocess.Popen(
        [sys.executable, "-m", "boss", "do", task("Fix add", waiting(go)), "--test", TEST,
         "--scope", "^src/", "--agent", "scripted"],
        cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(repo / ".worktrees/do-fix-add/W1/src/started", proc)
        busy = boss("do", "--retry", cwd=repo, check=1)
        assert "another `boss do` is working on it" in busy.stderr and "boss status do-fix-add" in busy.stderr
        go.write_text("go\n")
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, (out, err)
    assert (repo / "src/calc.py").read_text() == RIGHT


def test_retry_while_the_worker_runs_elsewhere_is_refused(tmp_path):
    repo = calc_repo(tmp_path)
    flag, go = tmp_path / "dealt-with", tmp_path / "go"
    plan = plan_of(do(repo, task("Fix add", waiting(go, flag)), check=1))
    flag.write_text("go\n")
    # the worker run again as run_workers.sh runs it
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker", "run", plan, "W1"],
        cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(repo / ".worktrees" / plan / "W1/src/started", proc)
        busy = boss("do", "--retry", cwd=repo, check=1)
        assert "is running in another process" in busy.stderr, busy
        assert f"boss do --retry --plan {plan}" in busy.stderr
        go.write_text("go\n")
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert status_row(repo, plan)[1] == "SUCCESS"
    boss("do", "--retry", cwd=repo)
    assert (repo / "src/calc.py").read_text() == RIGHT


def test_a_do_killed_while_landing_is_finished_by_retry(tmp_path):
    repo = calc_repo(tmp_path)
    before = head(repo)
    slow = f"{TEST} && sleep 4"  # fails fast before the fix; after it, slow (the ceremony runs it)
    proc = subprocess.Popen(
        [sys.executable, "-m", "boss", "do", task("Fix add", FIX), "--test", slow, "--scope", "^src/",
         "--agent", "scripted"],
        cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    journal = repo / ".boss/plans/do-fix-add/merge"
    try:
        deadline = time.monotonic() + 60
        while not journal.is_dir() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert journal.is_dir(), proc.communicate()
        time.sleep(1)  # in the ceremony's acceptance test
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert head(repo) == before
    again = boss("do", "--retry", cwd=repo)
    assert "landed: main moved from" in again.stdout
    assert (repo / "src/calc.py").read_text() == RIGHT
    boss("undo", cwd=repo)
    assert head(repo) == before and (repo / "src/calc.py").read_text() == WRONG
