"""The integration worktree and the tests run in it: runs, the pytest baseline, the judgement.

Where the integration test runs pytest, each run writes a junit report (asked for through
PYTEST_ADDOPTS) and a merge is judged by the failures that are new against the last tested
head's (the base's own at first; the set shrinks as merges fix tests); any other command is
judged by its exit code. A worker's acceptance test (its `test` in the manifest boss holds) is
judged by its exit code alone. Every test the ceremony runs goes through `run_command`.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boss.core import git, gittrees, proctree, sandbox, testrun
from boss.core import journal as jr
from boss.core.config import load_config
from boss.core.errors import GitError, StateError
from boss.core.manifest import SETTING_DEFAULTS, Manifest, Worker
from boss.core.paths import PlanPaths, integration_branch
from boss.core.proc import run_shell
from boss.core.pytest_report import is_pytest
from boss.core.sandbox import Sandbox
from boss.core.worktrees import copy_files, registry_lock

Progress = Callable[[str], None]
OnStart = testrun.OnStart
# Seconds between "still running" lines during a long test; the variable is a test/debug switch.
PROGRESS_ENV = "BOSS_MERGE_PROGRESS_SECONDS"
# pytest: 0 passed, 1 some tests failed, 5 no tests collected; anything else is a crash.
_PYTEST_JUDGED = (0, 1, 5)
NO_SETUP = "boss-no-setup"  # in the integration worktree's git folder: made without its setup


def worktree_path(paths: PlanPaths) -> Path:
    """The integration worktree (a name no worker id can take)."""
    return paths.worktree_root / paths.plan / "_integration"


def prepare(paths: PlanPaths, m: Manifest, start: str, setup: bool = True) -> Path:
    """The integration worktree on its branch at start, clean; copy files and setup when new
    (not `setup` when no test runs in it: its test slots are elsewhere, boss/ceremony/elsewhere.py)."""
    repo, path = paths.repo, worktree_path(paths)
    known = path.is_dir() and path.resolve() in {p.resolve() for p in git.worktrees(repo)}
    if known:
        release_lock(path)
        gittrees.merge_abort(path)
        with registry_lock(paths):  # `checkout -B` reads every worktree's entry
            git.checkout_branch(path, integration_branch(paths.plan), start)
        git.clean(path)
        unset = git.git_dir(path) / NO_SETUP
        if setup and unset.exists():  # made for a ceremony whose tests ran elsewhere: set up now
            setup_worktree(paths, m, path)
            unset.unlink(missing_ok=True)
        return path
    if path.exists():
        shutil.rmtree(path)  # a leftover folder git no longer knows: nothing to keep
        with registry_lock(paths):
            git.git(repo, "worktree", "prune")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with registry_lock(paths):
            git.worktree_add_branch(repo, path, integration_branch(paths.plan), start)
    except GitError:  # a registration whose folder was deleted still holds the branch
        with registry_lock(paths):
            git.git(repo, "worktree", "prune")
            git.worktree_add_branch(repo, path, integration_branch(paths.plan), start)
    if setup:
        setup_worktree(paths, m, path)
    else:
        (git.git_dir(path) / NO_SETUP).touch()
    return path


def setup_worktree(paths: PlanPaths, m: Manifest, path: Path) -> None:
    """The plan's copied files and its setup in a new worktree of the ceremony (the integration
    worktree, or a test slot's); StateError, the worktree removed, when the setup fails."""
    copy_files(paths.repo, path, m.copy)
    if not m.setup.strip():
        return
    log = logs_dir(paths) / f"setup{'' if path.name == '_integration' else '.' + path.name}.log"
    # The plan's setup installs what the tests need: it keeps the network, writes the worktree.
    with sandbox_of(paths).confine(path, writable=[path], network=True, prefix="boss-merge-") as jail:
        outcome = run_shell(
            m.setup, cwd=path, env=os.environ, log_path=log, confine=jail, log_cap=cap_of(paths)
        )
    if outcome.exit_code != 0:
        with registry_lock(paths):
            git.worktree_remove(paths.repo, path)  # so the next run sets it up again
        msg = f"setup failed in the ceremony's worktree {path.name} (exit {outcome.exit_code}); see {log}"
        raise StateError(msg)


def release_lock(path: Path) -> None:
    """Remove an index.lock a killed ceremony's git left behind (we hold the ceremony lock)."""
    lock = git.git_dir(path) / "index.lock"
    deadline = time.monotonic() + 2.0
    while lock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # a git process that outlived its ceremony finishes quickly
    lock.unlink(missing_ok=True)


def reset(path: Path, commit: str) -> None:
    """Put the integration worktree back at commit exactly (abort a merge left in progress)."""
    gittrees.merge_abort(path)
    git.reset_hard(path, commit)


def pristine(path: Path, plan: str, commit: str) -> None:
    """The integration worktree on its branch at commit, every tracked file as committed: what
    a test run changed (files, HEAD, the branch) must not reach the next run."""
    git.checkout_branch(path, integration_branch(plan), commit)
    # Untracked files a run left go too (a `conftest.py` one candidate's test wrote must not steer
    # the next candidate's run); ignored ones stay: the copy files, what setup made. Test slots, here
    # (boss/ceremony/speculate.py) and on a node (worker/engine/ceremony_node.py), do the same.
    git.clean(path)


@dataclass(frozen=True)
class Run:
    """One run of the integration test."""

    exit_code: int
    elapsed: float
    log: str  # relative to the plan folder
    failures: list[str] | None = None  # failing pytest ids; None when there is no junit report
    timed_out: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code,
            "elapsed": round(self.elapsed, 3),
            "log": self.log,
            "failures": self.failures,
            "timed_out": self.timed_out,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Run:
        return cls(
            int(data["exit_code"]),
            float(data["elapsed"]),
            str(data["log"]),
            data.get("failures"),
            bool(data.get("timed_out", False)),
        )


def timeout(m: Manifest) -> float | None:
    """The integration test's time limit: the plan's test_timeout (0: none)."""
    seconds = int({**SETTING_DEFAULTS, **m.defaults}["test_timeout"])
    return float(seconds) if seconds > 0 else None


class Ticker:
    """One background thread for a whole ceremony: while a test runs, a "still running" line
    every interval, so a long test is never silent."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.interval = float(os.environ.get(PROGRESS_ENV) or 10.0)
        self._label = ""
        self._since = self._said = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def begin(self, label: str) -> None:
        """A test called label starts now."""
        with self._lock:
            self._label, self._since = label, time.monotonic()
            self._said = self._since
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="merge-ticker", daemon=True)
            self._thread.start()

    def end(self) -> None:
        """The test ended."""
        with self._lock:
            self._label = ""

    def stop(self) -> None:
        """No more tests: the thread ends."""
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(min(self.interval, 1.0)):
            with self._lock:
                now = time.monotonic()
                if not self._label or now - self._said < self.interval:
                    continue
                self._said = now
                line = f"{self._label}: still running ({now - self._since:.0f}s)"
            self.progress(line)


def run_test(
    paths: PlanPaths, m: Manifest, cwd: Path, name: str, ticker: Ticker, label: str, **how: Any
) -> Run:
    """Run the integration test in cwd; its output goes to the ceremony's logs/<name>.log.
    `how`: run_command's on_start and owner."""
    env = dict(os.environ)
    network = bool({**SETTING_DEFAULTS, **m.defaults}["test_network"])
    return run_command(paths, m.integration_test, cwd, env, name, ticker, label, timeout(m), network, **how)


def run_acceptance(
    paths: PlanPaths, m: Manifest, w: Worker, cwd: Path, name: str, ticker: Ticker, label: str, **how: Any
) -> Run:
    """Run worker w's acceptance test (from the manifest boss holds) in cwd, with the
    environment and the time limit its worker run gave it; output in the ceremony's logs/<name>.log."""
    limit = m.settings(w).test_timeout
    env = _acceptance_env(paths, cwd, w.id)
    seconds = float(limit) if limit > 0 else None
    network = m.settings(w).test_network
    return run_command(paths, w.test, cwd, env, name, ticker, label, seconds, network, **how)


def run_acceptance_together(
    paths: PlanPaths, m: Manifest, workers: list[Worker], cwd: Path, name: str, ticker: Ticker, label: str
) -> Run:
    """The acceptance tests of several workers one after the other in one run, each with its
    own BOSS_WORKER; green only when every one passes (a red one stops the rest)."""
    command = " && ".join(f"BOSS_WORKER={shlex.quote(w.id)} bash -c {shlex.quote(w.test)}" for w in workers)
    limits = [m.settings(w).test_timeout for w in workers]
    limit = float(sum(limits)) if all(x > 0 for x in limits) else None
    network = any(m.settings(w).test_network for w in workers)
    return run_command(
        paths, command, cwd, _acceptance_env(paths, cwd, ""), name, ticker, label, limit, network
    )


def _acceptance_env(paths: PlanPaths, cwd: Path, worker_id: str) -> dict[str, str]:
    """The environment a worker's own run gave its test (worker.lifecycle.session.command_env), here."""
    return {
        **os.environ,
        "BOSS_PLAN": paths.plan,
        "BOSS_WORKER": worker_id,
        "BOSS_WORKTREE": str(cwd),
        "BOSS_REPO": str(paths.repo),
    }


def run_command(
    paths: PlanPaths,
    command: str,
    cwd: Path,
    env: dict[str, str],
    name: str,
    ticker: Ticker,
    label: str,
    limit: float | None,
    network: bool = False,
    on_start: OnStart | None = None,
    owner: str = "",
) -> Run:
    """Run one test of the ceremony (integration or acceptance): the one place they all run.

    Where the command runs pytest a junit report is asked for, so its failing tests are known.
    Its processes carry the ceremony's owner marker (`merge-<plan>`), so a ceremony killed with
    -9 leaves nothing its next run cannot find and stop; `on_start` gets the run's process group.
    """
    log = logs_dir(paths) / f"{name}.log"
    ticker.begin(label)
    try:
        ran = testrun.execute(
            command, cwd, env, log, sandbox_of(paths), limit, network, cap_of(paths),
            owner or run_owner(paths), on_start,
        )  # fmt: skip
    finally:
        ticker.end()
    return Run(ran.exit_code, ran.elapsed, paths.rel(log), ran.failures, ran.timed_out)


def run_owner(paths: PlanPaths) -> str:
    """The owner marker of every test run a ceremony of this plan starts (boss.core.proctree):
    its repository's too, so a ceremony of a plan of the same name elsewhere is not touched."""
    return proctree.owner(str(paths.repo), paths.plan, "", "ceremony")  # no worker's: 3 parts


def logs_dir(paths: PlanPaths) -> Path:
    """The running ceremony's log folder, `merge/history/<number>/logs/` (its number is in the
    journal, so a resumed ceremony writes where it began); kept by later ceremonies, so every
    log the state log names stays."""
    j = jr.load(paths.journal)
    return paths.ceremony_logs(j.number if j is not None else 0)


def sandbox_of(paths: PlanPaths) -> Sandbox:
    """The sandbox of the ceremony's test runs: the project's `sandbox:` setting."""
    return sandbox.resolve(load_config(paths.repo).sandbox)


def cap_of(paths: PlanPaths) -> int:
    """The most one test's log keeps: the project's `log_cap_mb` (boss.core.runlog)."""
    return load_config(paths.repo).log_cap


@dataclass(frozen=True)
class Judgement:
    """Whether a run counts as green, and why."""

    ok: bool
    reason: str
    new_failures: list[str] = field(default_factory=list)


def judge_baseline(m: Manifest, run: Run) -> Judgement:
    """The base's own run: green, red with recorded pytest failures (usable), or unusable."""
    if run.exit_code == 0:
        return Judgement(True, "passes")
    if run.timed_out:
        return Judgement(False, f"timed out after {timeout(m):.0f}s")
    if is_pytest(m.integration_test) and run.exit_code in _PYTEST_JUDGED and run.failures is not None:
        if run.exit_code == 5:
            return Judgement(True, "collects no tests")
        if stops_early(m.integration_test):
            return Judgement(
                False,
                "fails, and `-x`/`--maxfail` stops pytest at the base's first failure, so "
                "a merge's new failures could hide behind it (remove it from integration_test)",
            )
        n = len(run.failures)
        return Judgement(True, f"{n} failing test(s) recorded; only new failures count against a merge")
    return Judgement(False, f"fails (exit {run.exit_code})")


def stops_early(command: str) -> bool:
    """True when pytest is told to stop at the first failures (in the command or PYTEST_ADDOPTS)."""
    words = f"{command} {os.environ.get('PYTEST_ADDOPTS', '')}".split()
    return any(
        w in ("-x", "--exitfirst") or w.startswith("--maxfail") or re.fullmatch(r"-[a-wyz]*x\w*", w)
        for w in words
    )


def judge(m: Manifest, run: Run, reference: Run) -> Judgement:
    """A merge's run against the last tested head's run (at first the base's): green, or red
    with the reason and the failures that are new since that head."""
    if run.timed_out:
        return Judgement(False, f"timed out after {timeout(m):.0f}s")
    if not is_pytest(m.integration_test):
        ok = run.exit_code == 0
        return Judgement(ok, "passes" if ok else f"fails (exit {run.exit_code})")
    if run.exit_code == 0:
        return Judgement(True, "passes")
    if run.exit_code not in _PYTEST_JUDGED or run.failures is None:
        return Judgement(False, f"pytest could not run the tests (exit {run.exit_code})")
    if run.exit_code == 5:
        ok = reference.exit_code == 5
        return Judgement(ok, "collects no tests" if ok else "collects no tests any more")
    if not run.failures:
        return Judgement(False, f"pytest failed (exit {run.exit_code}) without a failing test")
    new = sorted(set(run.failures) - set(reference.failures or ()))
    if not new:
        return Judgement(True, "shows only failures the last tested head had")
    return Judgement(False, f"has {len(new)} new failing test(s): {', '.join(new[:5])}", new)
