"""Builders for worker tests: a plan in a real repo, with the scripted agent by default."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import git

from boss import manifest as mf
from boss.config import load_config
from boss.paths import PlanPaths


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
    from boss.render import render_plan

    render_plan(paths, m, load_config(repo), force=True)
    return paths, m
