"""Builders for worker tests: a plan in a real repo, with the scripted agent by default."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import git

from boss.core import manifest as mf
from boss.core.config import load_config
from boss.core.paths import PlanPaths


def script(*steps: dict) -> str:
    """Instructions holding an agent-script block for the built-in scripted agent."""
    body = json.dumps(list(steps))
    return f"Do the work.\n\n```agent-script\n{body}\n```\n"


def worker(wid: str, *, scope=("^src/",), test="test -f src/done.txt", steps=None, **extra) -> dict:
    """A manifest worker entry."""
    entry = {"id": wid, "title": f"Work {wid}", "scope": list(scope), "test": test}
    entry["instructions"] = script(*(steps or [{"write": {"src/done.txt": "x"}}]))
    entry.update(extra)
    return entry


def make_plan(repo: Path, workers: list[dict], plan: str = "p", **top) -> tuple[PlanPaths, mf.Manifest]:
    """Write a manifest and each worker's CONTEXT.md (the instructions), as render would."""
    raw = {
        "version": 1,
        "plan": plan,
        "base": "main",
        "base_commit": git(repo, "rev-parse", "HEAD"),
        "defaults": {"agent": "scripted", "max_iterations": 2, "max_strategies": 2},
        "workers": workers,
        **top,
    }
    paths = PlanPaths.of(repo, plan, load_config(repo).worktree_root)
    m = mf.from_dict(raw, "manifest.yaml")
    mf.save(m, paths.manifest)
    from boss.plan.render import render_plan

    render_plan(paths, m, load_config(repo), force=True)
    return paths, m


def kill_tagged() -> None:
    """Kill every process carrying this test's BOSS_TEST_TAG (conftest): a finalizer, so a
    failed test leaves nothing running."""
    import os
    import signal

    tag = os.environ.get("BOSS_TEST_TAG")
    if not tag or not Path("/proc").is_dir():
        return
    needle = f"BOSS_TEST_TAG={tag}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)
        except OSError:
            continue


def run_script(paths: PlanPaths, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The plan's run_workers.sh with args, run to its end; its output captured."""
    return subprocess.run(
        ["bash", str(paths.run_script), *args],
        cwd=paths.repo,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
