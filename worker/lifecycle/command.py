"""The worker's commands without click: `worker run PLAN ID` (run_command, with the exit code of
the end state) and `worker skip` (skip_worker). worker/cli/entry.py calls run_command directly."""

from __future__ import annotations

from boss.core import redo
from boss.core import status as st
from boss.core.manifest import Manifest
from boss.core.paths import PlanPaths
from boss.core.workspace import open_plan
from worker.lifecycle.recorder import Recorder
from worker.lifecycle.run import run_worker
from worker.lifecycle.signals import install_stop_signals

EXIT_CODES = {st.SUCCESS: 0, st.FAILED: 1, st.SCOPE_VIOLATION: 3}


def run_command(
    plan: str, worker_id: str, *, fresh: bool = False, onto: str | None = None, discard: bool = False
) -> int:
    """`worker run PLAN ID`: find the plan, run the worker, return its exit code."""
    install_stop_signals()
    paths, m, config = open_plan(plan)
    if onto is not None:
        onto = redo.check_onto(paths, m, onto, integration=True)
    return EXIT_CODES[run_worker(paths, m, config, worker_id, fresh=fresh, onto=onto, discard=discard)]


def skip_worker(paths: PlanPaths, m: Manifest, worker_id: str, reason: str) -> None:
    """Mark a worker SKIPPED (a dependency did not succeed), with the reason."""
    w = m.worker(worker_id)
    rec = Recorder(paths, w.id, st.Status(plan=paths.plan, id=w.id, branch=w.branch))
    rec.end(st.SKIPPED, reason, action="skip")
