"""A test slot's run made elsewhere (`boss merge --engine dask`): the same run, the same log.

The Speculator (boss/ceremony/speculate.py) hands each run to a boss.core.testrun.Remote instead
of its own worktree: the same command, limit and network as here (the integration test, or the
worker's acceptance test from the manifest boss holds), on the candidate's commit. What comes
back is written where a local run's log goes, and judged here exactly as a local run is.
"""

from __future__ import annotations

from collections.abc import Callable

from boss.ceremony import integration
from boss.ceremony.integration import Run
from boss.ceremony.session import Session
from boss.core import testrun
from boss.core.manifest import SETTING_DEFAULTS


def request(s: Session, name: str, kind: str, commit: str, worker: str) -> testrun.Request:
    """What to run for a slot's run of kind int or acc (of worker), as integration.py runs it here."""
    if kind == "int":
        network = bool({**SETTING_DEFAULTS, **s.m.defaults}["test_network"])
        limit = integration.timeout(s.m)
        return testrun.Request(name, kind, commit, s.j.base_start, s.m.integration_test, "", limit, network)
    w = s.m.worker(worker)
    settings = s.m.settings(w)
    limit = float(settings.test_timeout) if settings.test_timeout > 0 else None
    return testrun.Request(name, kind, commit, s.j.base_start, w.test, w.id, limit, settings.test_network)


def run(
    s: Session,
    remote: testrun.Remote,
    req: testrun.Request,
    ticker: integration.Ticker,
    label: str,
    started: Callable[[testrun.Cancel], None],
    slot: int,
) -> Run:
    """Make req on remote in slot; its Run, its log written into the ceremony's logs."""
    ticker.begin(label)
    try:
        ran, log_bytes, node = remote.run(req, started)
    finally:
        ticker.end()
    log = integration.logs_dir(s.paths) / f"{req.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(log_bytes)
    if node:
        s.progress(f"slot {slot}: {label.removeprefix('slot: ')}: ran on node {node}")
    return Run(ran.exit_code, ran.elapsed, s.paths.rel(log), ran.failures, ran.timed_out)
