"""One worker run's state, and how its commands run in the worktree.

Run carries what the steps of a run share (the plan, the worker, its settings and agent, the
prepared worktree, the iteration) and runs the acceptance test in the run's sandbox, watching
the shared git directory: what the test or the agent changes there is put back, and the run
fails (GitDirChanged). The agent's own start is worker.lifecycle.attempt.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boss.core import gitdir, proctree, runlog
from boss.core.errors import BossError
from boss.core.lock import LockBusy, locked
from boss.core.manifest import Manifest, Settings, Worker
from boss.core.paths import PlanPaths, integration_branch
from boss.core.proc import Outcome, run_shell
from boss.core.sandbox import Confinement, Sandbox
from worker.agents.cli_config import AgentConfig
from worker.agents.profile import AgentProfile
from worker.lifecycle import gates
from worker.lifecycle.recorder import Recorder
from worker.lifecycle.worktree import Prepared


class GitDirChanged(BossError):
    """Agent code (the agent, or the test it wrote) changed the shared git directory."""


def run_owner(paths: PlanPaths, worker_id: str) -> str:
    """The owner part of the marker every process of this worker's runs carries (boss.core.proctree)."""
    return proctree.owner(str(paths.repo), paths.plan, worker_id)


def command_env(paths: PlanPaths, worker_id: str, worktree: Path) -> dict[str, str]:
    """The environment of the worker's test and setup: which worker, so ports and databases
    can be derived per worker (BOSS_WORKER, BOSS_WORKTREE)."""
    return {
        **os.environ,
        "BOSS_PLAN": paths.plan,
        "BOSS_WORKER": worker_id,
        "BOSS_WORKTREE": str(worktree),
        "BOSS_REPO": str(paths.repo),
    }


def short(commit: str) -> str:
    """An abbreviated commit for messages."""
    return commit[:10]


@dataclass
class Run:
    """What one worker run carries from step to step."""

    paths: PlanPaths
    m: Manifest
    w: Worker
    settings: Settings
    profile: AgentProfile
    rec: Recorder
    wt: Prepared
    context: str
    sandbox: Sandbox
    iteration: int = 0
    usage: dict[str, Any] = field(default_factory=dict)
    frozen: tuple[str, ...] = ()  # the acceptance test's files, once the red gate froze them
    config: AgentConfig | None = None  # the agent-config paths, reset before each agent start
    last_failure: str | None = None  # the CLI's own error in the last agent run, if any
    expected: list[str] | None = None  # the test ids the red run's pytest report showed run
    log_cap: int = runlog.DEFAULT_CAP  # the most one run's log keeps (log_cap_mb in .boss/config.yaml)
    redo: str = ""  # why this run redoes the worker on the base now (boss.core.redo): its first feedback

    @property
    def dir(self) -> Path:
        return self.paths.worker_dir(self.w.id)

    @property
    def owner(self) -> str:
        return run_owner(self.paths, self.w.id)

    def child(self, pgid: int) -> None:
        """Show the running child's process group (for people and the pool; a rerun after a
        crash finds what to stop by the marker, not by this field, which an agent can forge)."""
        self.rec.update(child_pgid=pgid)

    def jail(
        self, *, network: bool, state: Collection[Path] = (), writable: Collection[Path] = ()
    ) -> AbstractContextManager[Confinement | None]:
        """The sandbox of one run in the worktree (None when there is none: boss.core.sandbox): it
        writes the worktree, but not the worktree's `.git` (which names the git directory boss
        uses there), a private copy of its CLI's `state`, and `writable`."""
        wt = self.wt.path
        return self.sandbox.confine(
            wt,
            writable=[wt, *writable],
            network=network,
            prefix=f"boss-{self.w.id}-",
            ephemeral=state,
            readonly=[wt / ".git"],
        )

    def watch(self) -> gitdir.Snapshot | None:
        """The shared git directory before agent code runs; its own branch and checkpoints, and
        the refs the plan's other workers move meanwhile, are free. None inside a sandbox, where
        the git directory is read-only (and your own git work meanwhile is not the agent's)."""
        if self.sandbox.active:
            return None
        plan, free = self.paths.plan, []
        for w in self.m.workers:
            free += [f"refs/heads/{w.branch}", f"refs/boss/checkpoints/{plan}/{w.id}/"]
            free += [f"refs/boss/{plan}/{w.id}/"] if w.id != self.w.id else []
        return gitdir.snapshot(self.paths.repo, free=free, worktree=self.wt.path)

    def put_back(self, before: gitdir.Snapshot | None, who: str) -> str | None:
        """Restore the git directory as before; the reason the worker fails when anything moved.

        A `boss merge` of the plan that ran meanwhile moves the base and integration branches."""
        if before is None:
            return None
        merging = _merged_since(self.paths, before.taken_at)
        base = [f"refs/heads/{self.m.base}", f"refs/heads/{integration_branch(self.paths.plan)}"]
        changes = gitdir.restore(before, free=base if merging else ())
        if not changes:
            return None
        shown = "; ".join(changes[:10]) + (f"; and {len(changes) - 10} more" if len(changes) > 10 else "")
        self.rec.event(self.w.id, "gitdir", f"{who} changed the git directory; put back: {shown}")
        return (
            f"{who} changed the repository's git directory, which boss put back: {shown}; "
            "nothing of this run is committed (the work is left in the worktree for inspection)"
        )

    def test(self, log: Path) -> tuple[Outcome, str, gates.GateRun]:
        """Run the worker's test through its gate in the sandbox, logged to `log`: the outcome, the output
        (a timeout said in words) and the gate's run, whose report the gates judge."""
        wt = self.wt.path
        # The gate's report and private bytecode folder sit next to the log, outside the worktree
        # (writable in the test's sandbox: pytest writes them).
        report_dir = log.parent / "gate"
        gate = gates.prepare_run(self.w.test, wt, report_dir)
        before = self.watch()
        try:
            with self.jail(network=self.settings.test_network, writable=[report_dir]) as jail:
                outcome = run_shell(
                    gate.command,
                    cwd=wt,
                    env={**command_env(self.paths, self.w.id, wt), **gate.env},
                    log_path=log,
                    timeout=self.settings.test_timeout or None,
                    on_start=self.child,
                    owner=self.owner,
                    confine=jail,
                    log_cap=self.log_cap,
                )
        finally:  # interrupted too: what the test's code changed is put back
            changed = self.put_back(before, "the test")
        self.child(0)
        if changed:
            raise GitDirChanged(changed)
        output = runlog.read(log)
        if outcome.timed_out:
            # Say it in words: the agent, the log and the blocker report must not see a bare -15.
            limit = self.settings.test_timeout
            output += f"\n[boss] the test timed out after {limit}s (test_timeout) and was stopped\n"
        return outcome, output, gate


def _merged_since(paths: PlanPaths, since_ns: int) -> bool:
    """True when a `boss merge` of the plan runs now, or wrote its journal after since_ns."""
    lock, journal = paths.merge_dir / "merge.lock", paths.merge_dir / "journal.json"
    with contextlib.suppress(OSError):
        if journal.stat().st_mtime_ns >= since_ns:
            return True
    if not lock.exists():
        return False
    try:
        with locked(lock, 0, ""):
            return False
    except LockBusy:
        return True
