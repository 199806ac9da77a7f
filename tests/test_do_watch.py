"""`boss do --watch`: the single worker followed live, and TIER 3 requests answered at a terminal.

Driven through a pseudo-terminal (tests/terminal.py) with the scripted agent, whose `shell:`
steps go through the worker's guard as an agent CLI's shell tool does. The same approval with
the real Claude Code is in tests/contract/test_do_claude.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import boss, git, make_repo
from terminal import run_in_pty

from boss.core import approvals, statelog
from boss.core import status as st
from boss.core.paths import PlanPaths

FILES = {"build/out.txt": "old build\n", "README.md": "# r\n"}
TEST = "test ! -e build/out.txt && test -f notes.txt"
PROMPT = "[y/N]: "


def task(*steps: str) -> str:
    body = "\n".join(steps)
    return f"Remove the stale build and write notes.\n\n```agent-script\n{body}\n```\n"


RM_THEN_NOTES = task("- shell: rm -rf build", '  write: {notes.txt: "notes\\n"}')


def do_argv(text: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "boss", "do", text, "--test", TEST, "--agent", "scripted", "--plan", "p",
            "--watch", *extra]  # fmt: skip


def guard_lines(paths: PlanPaths, needle: str) -> list[str]:
    return [e.result for e in statelog.read(paths.log) if e.action == "guard" and needle in e.result]


def test_an_approval_typed_at_the_terminal_runs_that_command_once_in_the_same_run(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", FILES)
    before = git(repo, "rev-parse", "main")
    code, out = run_in_pty(do_argv(RM_THEN_NOTES), repo, os.environ, [(PROMPT, "y\n")], timeout=120)
    paths = PlanPaths.of(repo, "p")
    assert code == 0, out
    # The live view: every step of the worker, the request shown whole, then the answer.
    assert "red" in out and "guard" in out and "end       SUCCESS" in out, out
    assert "TIER 3 request R1 from worker W1: the agent wants to run\n    rm -rf build" in out, out
    assert "R1 approved: the command runs once" in out, out
    (req,) = approvals.list_requests(paths.approvals_dir)
    assert (req.command, req.status) == ("rm -rf build", approvals.USED)
    assert req.decision_reason == "approved at the terminal (boss do --watch)"
    lines = guard_lines(paths, "rm -rf build")
    assert lines[0].startswith("tier3 waiting") and lines[1].startswith("tier3 allowed once by approval R1")
    assert len(lines) == 2, lines
    # One agent run did it all: no second iteration was needed.
    assert sorted(p.name for p in paths.attempts("W1").iterdir()) == ["red", "s1i1"]
    assert git(repo, "rev-parse", "main") != before
    assert "build/out.txt" not in git(repo, "ls-tree", "-r", "--name-only", "main").split()
    assert not (repo / "build").exists() and (repo / "notes.txt").read_text() == "notes\n"


def test_a_denial_at_the_terminal_blocks_the_command_and_nothing_lands(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", FILES)
    before = git(repo, "rev-parse", "main")
    code, out = run_in_pty(do_argv(RM_THEN_NOTES), repo, {**os.environ}, [(PROMPT, "n\n")], timeout=120)
    paths = PlanPaths.of(repo, "p")
    assert code == 1, out
    assert "R1 denied" in out, out
    (req,) = approvals.list_requests(paths.approvals_dir)
    assert req.status == approvals.DENIED
    assert not any(line.startswith("tier3 allowed") for line in guard_lines(paths, "rm -rf build"))
    assert (repo / "build" / "out.txt").is_file()  # nothing ran, nothing landed
    assert git(repo, "rev-parse", "main") == before
    assert st.read(paths.status("W1")).state == st.FAILED


def test_anything_but_y_denies(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", FILES)
    code, out = run_in_pty(do_argv(RM_THEN_NOTES), repo, os.environ, [(PROMPT, "\n")], timeout=120)
    assert code == 1, out
    (req,) = approvals.list_requests(PlanPaths.of(repo, "p").approvals_dir)
    assert req.status == approvals.DENIED


def test_without_a_terminal_the_request_is_recorded_and_an_approval_counts_on_retry(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", FILES)
    proc = subprocess.run(do_argv(RM_THEN_NOTES, "--plan", "p"), cwd=repo, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    paths = PlanPaths.of(repo, "p")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "approval needed: R1 `rm -rf build`" in proc.stdout, proc.stdout
    assert "boss approve R1 --plan p" in proc.stdout
    assert not guard_lines(paths, "waiting"), "no terminal: the guard does not wait"
    assert approvals.list_requests(paths.approvals_dir)[0].status == approvals.PENDING
    boss("approve", "R1", "--plan", "p", "--reason", "stale build", cwd=repo)
    retried = boss("do", "--retry", cwd=repo, check=None)
    assert retried.returncode == 0, (retried.stdout, retried.stderr)
    assert "landed: main moved" in retried.stdout
    assert any(line.startswith("tier3 allowed once by approval R1") for line in guard_lines(paths, "rm -rf"))
    assert not (repo / "build").exists()


def test_ctrl_c_at_the_terminal_stops_the_worker_and_retry_lands(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", FILES)
    text = task("- sleep: 30", '  write: {notes.txt: "notes\\n"}')
    argv = [sys.executable, "-m", "boss", "do", text, "--test", "test -f notes.txt", "--agent", "scripted",
            "--plan", "p", "--watch"]  # fmt: skip
    code, out = run_in_pty(argv, repo, os.environ, [(" ok: fails as a test failure", "\x03")], timeout=120)
    paths = PlanPaths.of(repo, "p")
    assert code == 130, out
    assert "resume: boss do --retry --plan p" in out, out
    s = st.read(paths.status("W1"))
    assert s.state == st.FAILED and "interrupt" in s.reason, s.reason
    assert not (repo / "notes.txt").exists()
    manifest = paths.manifest.read_text().replace("sleep: 30", "sleep: 0")
    paths.manifest.write_text(manifest)
    boss("render", "p", cwd=repo)
    retried = boss("do", "--retry", "--plan", "p", cwd=repo, check=None)
    assert retried.returncode == 0, (retried.stdout, retried.stderr)
    assert (repo / "notes.txt").read_text() == "notes\n"
