"""Running the one worker of a `boss do`, and following it while it runs.

The worker runs as `worker run PLAN W1` does in run_workers.sh (same process group, so Ctrl-C
stops it as it stops a plan; its input closed, so no agent reads the person's terminal). While it
runs, each new state-log line of the worker is shown, and each new TIER 3 approval request is
handed to `ask` (or shown, when nobody is asked). When asked (`boss do --watch` on a terminal),
the worker gets `BOSS_APPROVAL_WAIT`: its guard holds a TIER 3 call that long for the answer, so
an approved command runs in the same agent run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress

from boss.core import approvals, statelog
from boss.core.paths import PlanPaths
from boss.solo.record import WORKER

WAIT_ENV = "BOSS_APPROVAL_WAIT"
APPROVAL_WAIT = 90.0  # seconds; the guard's own cap (under its broker timeout and the CLIs' hooks)
POLL = 0.2
QUIET = 30.0  # seconds without a new step before a "still running" line

Show = Callable[[statelog.Event], None]
Notice = Callable[[approvals.Request], None]
Alive = Callable[[], bool]
Ask = Callable[[approvals.Request, Alive], None]


def line(event: statelog.Event) -> str:
    """A state-log event as one line of the live view (control characters made visible)."""
    from boss.core.scope import shown as visible

    what = visible(statelog.excerpt(event.result, 160))
    return f"  {event.time[11:19]} {event.iteration_id:<10} {event.action:<9} {what}"


def notice(req: approvals.Request) -> list[str]:
    """A TIER 3 request as shown when nobody is asked at the terminal."""
    from boss.core.scope import shown as visible

    return [
        f"  approval needed: {req.id} `{visible(req.command)}` (TIER {req.tier}, rule {visible(req.rule)})",
        f"    boss approve {req.id} --plan {req.plan}, then: boss do --retry --plan {req.plan}",
    ]


def worker_argv(paths: PlanPaths) -> list[str]:
    """`worker run PLAN W1` with this interpreter (BOSS_WORKER_BIN overrides, as in run_workers.sh)."""
    custom = os.environ.get("BOSS_WORKER_BIN", "").split()
    # -P: the current folder (the repository) is not put on sys.path, so no worker.py of its runs.
    return [*custom, "run", paths.plan, WORKER] if custom else [sys.executable, "-P", "-m", "worker", "run",
                                                                   paths.plan, WORKER]  # fmt: skip


def follow(
    paths: PlanPaths,
    show: Show,
    notice: Notice,
    ask: Ask | None = None,
    quiet: Callable[[str], None] | None = None,
) -> int:
    """Run the worker to its end, following it; its exit code. `quiet` gets a "still running"
    line after QUIET seconds without a step. Ctrl-C (KeyboardInterrupt) stops the worker, waits
    for it to record how it ended, and is raised again."""
    offset = statelog.size(paths.log)
    folder = paths.approvals_dir
    seen = {r.id for r in approvals.list_requests(folder)}
    env = {k: v for k, v in os.environ.items() if k != WAIT_ENV}
    if ask is not None:
        env[WAIT_ENV] = f"{APPROVAL_WAIT:g}"
    proc = subprocess.Popen(worker_argv(paths), cwd=paths.repo, env=env, stdin=subprocess.DEVNULL)

    def alive() -> bool:
        return proc.poll() is None

    started = last = time.monotonic()
    latest = "start"

    def catch_up() -> None:
        nonlocal offset, last, latest
        events, offset = statelog.read_new(paths.log, offset)
        for event in events:
            if event.worker == WORKER and not event.iteration_id.startswith("merge"):
                show(event)
                last, latest = time.monotonic(), f"{event.iteration_id} {event.action}"

    try:
        while True:
            running = alive()
            catch_up()
            for req in approvals.list_requests(folder, approvals.PENDING):
                if req.id in seen or req.worker != WORKER:
                    continue
                seen.add(req.id)
                if ask is not None and running:
                    ask(req, alive)
                    catch_up()
                else:
                    notice(req)
            if not running:
                return int(proc.returncode)
            now = time.monotonic()
            if quiet is not None and now - last >= QUIET:
                quiet(f"  ... still running ({now - started:.0f}s in all; the last step: {latest})")
                last = now
            with suppress(subprocess.TimeoutExpired):  # the worker's end wakes this at once
                proc.wait(timeout=POLL)
    except KeyboardInterrupt:
        _stop(proc)
        catch_up()
        raise


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Have the worker stop as on Ctrl-C (it got the terminal's SIGINT too, if there is one)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    while True:
        try:
            proc.wait()
            return
        except KeyboardInterrupt:  # a second Ctrl-C: the worker is stopping already; wait on
            continue
