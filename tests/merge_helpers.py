"""Builders for merge-ceremony tests: a plan in a real repository, worker branches made of real
commits (built with git plumbing, so the user's checkout is never touched), and the status
files the workers would have written."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from conftest import git, make_repo

from boss.core import manifest as mf
from boss.core import status as st
from boss.core.config import load_config
from boss.core.paths import PlanPaths

# The integration test of most scenarios: red when src/ holds "BROKEN"; the first run with
# src/flaky.txt present fails once (a flaky test), as recorded by the file $FLAKY_MARK names.
CHECK_SH = """#!/usr/bin/env bash
set -u
if grep -rq BROKEN src 2>/dev/null; then echo "FAIL: src/ holds broken code"; exit 1; fi
if [ -f src/flaky.txt ] && [ ! -e "${FLAKY_MARK:-flaky.mark}" ]; then
  : > "${FLAKY_MARK:-flaky.mark}"; echo "FAIL: a flaky failure"; exit 1
fi
if [ -f src/slow.txt ]; then
  if [ -n "${SLOW_MARK:-}" ]; then : > "$SLOW_MARK"; fi
  sleep "${SLOW_SECONDS:-1}"
fi
echo "ok"
"""
BASE_FILES = {
    "README.md": "# sample\n",
    "check.sh": CHECK_SH,
    "src/shared.txt": "one\ntwo\nthree\n",
    "docs/guide.md": "guide\n",
}


def run_git(repo: Path, *args: str, env: dict[str, str] | None = None, input_text: str | None = None) -> str:
    """git with an optional environment and stdin, for plumbing."""
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        input=input_text,
        env={**os.environ, **(env or {})},
    ).stdout.strip()


def commit_files(repo: Path, parent: str, files: dict[str, str | None], message: str) -> str:
    """A new commit on top of parent with files written (None: deleted); no ref, no checkout."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        run_git(repo, "read-tree", parent, env=env)
        for path, content in files.items():
            if content is None:
                run_git(repo, "update-index", "--force-remove", path, env=env)
            else:
                sha = run_git(repo, "hash-object", "-w", "--stdin", input_text=content)
                run_git(repo, "update-index", "--add", "--cacheinfo", f"100644,{sha},{path}", env=env)
        tree = run_git(repo, "write-tree", env=env)
    return run_git(repo, "commit-tree", tree, "-p", parent, "-m", message)


def spec(wid: str, *, scope=("^src/",), depends_on=(), **extra) -> dict:
    """A manifest worker entry."""
    entry = {"id": wid, "title": f"Work {wid}", "scope": list(scope), "test": "true"}
    if depends_on:
        entry["depends_on"] = list(depends_on)
    entry.update(extra)
    return entry


@dataclass
class Scenario:
    """A repository with a plan whose workers' branches and statuses a test makes by hand."""

    repo: Path
    paths: PlanPaths
    m: mf.Manifest
    base: str  # the plan's base commit

    def reload(self) -> None:
        self.m = mf.load(self.paths.manifest)

    def head(self, wid: str) -> str:
        return git(self.repo, "rev-parse", self.m.worker(wid).branch)

    def main(self) -> str:
        return git(self.repo, "rev-parse", "main")

    def start_of(self, wid: str) -> str:
        w = self.m.worker(wid)
        return self.head(w.depends_on[0]) if w.depends_on else self.base

    def work(
        self,
        wid: str,
        files: dict[str, str | None],
        *,
        state: str = st.SUCCESS,
        start: str | None = None,
        **status_fields,
    ) -> str:
        """Commit files on the worker's branch (from its start) and write its final status."""
        w = self.m.worker(wid)
        begin = start or self.start_of(wid)
        head = commit_files(self.repo, begin, files, f"{wid}: {w.title}")
        git(self.repo, "update-ref", f"refs/heads/{w.branch}", head)
        fields = {"start_commit": begin, "head_commit": head, **status_fields}
        self.status(wid, state, **fields)
        return head

    def status(self, wid: str, state: str, **fields) -> None:
        """Write the worker's status file as the worker would."""
        w = self.m.worker(wid)
        values = {
            "branch": w.branch,
            "started_at": "2026-11-25T10:00:00Z",
            "finished_at": "2026-11-25T10:00:05Z",
            "strategy": 1,
            "iteration": 1,
            **fields,
        }
        st.write(self.paths.status(wid), st.Status(plan=self.paths.plan, id=wid, state=state, **values))

    def crashed(self, wid: str) -> None:
        """A RUNNING status whose process is gone."""
        proc = subprocess.Popen(["true"])
        proc.wait()
        self.status(wid, st.RUNNING, pid=proc.pid, heartbeat=st.now_iso(), finished_at="")

    def worktree(self, wid: str) -> Path:
        """Check the worker's branch out in its worktree, as the worker left it."""
        path = self.paths.worktree(wid)
        path.parent.mkdir(parents=True, exist_ok=True)
        git(self.repo, "worktree", "add", "-q", str(path), self.m.worker(wid).branch)
        return path


def make_scenario(
    root: Path,
    workers: list[dict],
    *,
    integration_test: str = "bash check.sh",
    files: dict[str, str] | None = None,
    plan: str = "p",
) -> Scenario:
    """A repository on main with BASE_FILES (or files), and a plan of workers on it."""
    repo = make_repo(root, files or BASE_FILES)
    base = git(repo, "rev-parse", "HEAD")
    raw = {
        "version": 1,
        "plan": plan,
        "base": "main",
        "base_commit": base,
        "integration_test": integration_test,
        "defaults": {"agent": "scripted", "test_timeout": 60},
        "workers": workers,
    }
    paths = PlanPaths.of(repo, plan, load_config(repo).worktree_root)
    m = mf.from_dict(raw, "manifest.yaml")
    mf.save(m, paths.manifest)
    return Scenario(repo, paths, m, base)


def pytest_command() -> str:
    """An integration test that runs pytest with this interpreter."""
    return f"{sys.executable} -m pytest -q -p no:cacheprovider tests"
