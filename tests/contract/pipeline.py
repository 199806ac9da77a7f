"""Drive the real pipeline on a small project: plan, run_workers.sh, merge, status, approvals.

Every step runs the installed `boss` / the rendered script as a user would, in subprocesses
that inherit the test's environment (the scratch HOME and the CLI's settings).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from boss.core import statelog
from boss.core import status as st
from boss.core.paths import PlanPaths

BUGGY = "def add(a, b):\n    return a - b\n"
FIXED = "def add(a, b):\n    return a + b\n"
OLD_LINE = "    return a - b\n"
NEW_LINE = "    return a + b\n"
TEST = "from src.calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
TEST_COMMAND = "python -m pytest -q tests/test_calc.py"
PLAN = "p"


def run(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run argv (output captured) with the test's environment plus env."""
    return subprocess.run(argv, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True,
                          text=True, timeout=timeout, check=False)  # fmt: skip


def boss(
    repo: Path, *args: str, check: int | None = 0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`boss ARGS` in repo; asserts the exit code unless check is None."""
    proc = run([sys.executable, "-m", "boss", *args], repo, env)
    if check is not None:
        assert proc.returncode == check, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def git(repo: Path, *args: str) -> str:
    """git ARGS in repo; its stdout."""
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()  # fmt: skip


def project(root: Path, extra: dict[str, str] | None = None) -> Path:
    """A git repository on main: src/calc.py with a bug, tests/test_calc.py that shows it."""
    repo = root / "repo"
    files = {"src/__init__.py": "", "src/calc.py": BUGGY, "tests/__init__.py": "",
             "tests/test_calc.py": TEST, "README.md": "# calc\n", "build/out.txt": "old build\n",
             **(extra or {})}  # fmt: skip
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    for rel, text in files.items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


def plan(repo: Path, agent: str, *, instructions: str = "Fix add() in src/calc.py so that 2 + 3 == 5.",
         scope: str = "^src/", test: str = TEST_COMMAND, extra: str = "") -> PlanPaths:  # fmt: skip
    """`boss plan --from PLAN.md` with one worker W1 driven by agent; the plan's paths."""
    text = (
        "# Fix the calculator\n\n"
        f"- integration_test: {TEST_COMMAND}\n\n"
        "## W1: Fix add\n\n"
        f"- scope: {scope}\n"
        f"- test: {test}\n"
        f"- agent: {agent}\n"
        f"{extra}"
        f"\n{instructions}\n"
    )
    (repo.parent / "PLAN.md").write_text(text)
    boss(repo, "plan", "--from", str(repo.parent / "PLAN.md"), "--plan", PLAN)
    return PlanPaths.of(repo, PLAN)


def run_workers(paths: PlanPaths, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """bash run_workers.sh ARGS (its exit code is for the test to judge)."""
    return run(["bash", str(paths.run_script), *args], paths.repo, timeout=timeout)


def status(paths: PlanPaths, worker_id: str = "W1") -> st.Status:
    """The worker's status.json."""
    return st.read(paths.status(worker_id))


def guard_events(paths: PlanPaths) -> list[statelog.Event]:
    """The guard's decisions in the state log."""
    return [e for e in statelog.read(paths.log) if e.action == "guard"]


def approvals(repo: Path) -> list[dict[str, Any]]:
    """`boss approvals --json`: every request."""
    data = json.loads(boss(repo, "approvals", "--json").stdout)
    return list(data["requests"] if isinstance(data, dict) else data)


def agent_logs(paths: PlanPaths, worker_id: str = "W1") -> str:
    """Every agent log of the worker's attempts, concatenated (for assertion messages)."""
    logs = sorted(paths.attempts(worker_id).rglob("*.log"))
    return "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-4000:]}" for p in logs)


def sleepers(tag: str, command: str = "sleep 300") -> list[int]:
    """Live processes of this test (its BOSS_TEST_TAG in their environment) running command."""
    found = []
    needle, argv = f"BOSS_TEST_TAG={tag}".encode(), command.encode().replace(b" ", b"\0") + b"\0"
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if (proc / "cmdline").read_bytes() != argv or needle not in (proc / "environ").read_bytes():
                continue
            if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                found.append(int(proc.name))
        except OSError:
            continue
    return found
