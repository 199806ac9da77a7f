"""`worker run`, and the small commands run_workers.sh uses: `worker skip`, `worker states`."""

from __future__ import annotations

import signal
import sys
from types import FrameType

import click


def _sigterm(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
    # SIGTERM from run_workers.sh's Ctrl-C handling takes the same path as Ctrl-C.
    raise KeyboardInterrupt


@click.command()
@click.argument("plan")
@click.argument("worker_id", metavar="ID")
@click.option("--fresh", is_flag=True, help="Remove the worktree first and start from scratch.")
def run(plan: str, worker_id: str, fresh: bool) -> int:
    """Run one worker to the end: red gate, agent/test loop, commit, scope check.

    Exit 0 SUCCESS, 1 FAILED, 3 SCOPE_VIOLATION, 130 interrupted.
    """
    from boss.workspace import open_plan
    from worker.run import EXIT_CODES, run_worker

    signal.signal(signal.SIGTERM, _sigterm)
    paths, m, config = open_plan(plan)
    state = run_worker(paths, m, config, worker_id, fresh=fresh)
    return EXIT_CODES[state]


@click.command()
@click.argument("plan")
@click.argument("worker_id", metavar="ID")
@click.option("--reason", required=True, help="Why the worker is skipped.")
def skip(plan: str, worker_id: str, reason: str) -> int:
    """Mark a worker SKIPPED because a dependency did not succeed."""
    from boss.workspace import open_plan
    from worker.run import skip_worker

    paths, m, _ = open_plan(plan)
    skip_worker(paths, m, worker_id, reason)
    click.echo(f"{worker_id}: SKIPPED ({reason})")
    return 0


@click.command()
@click.argument("plan", required=False)
@click.option("--summary", is_flag=True, help="A readable summary instead of `ID STATE` lines.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def states(plan: str | None, summary: bool, as_json: bool) -> int:
    """Print each worker's state (a RUNNING worker whose process is gone reads CRASHED)."""
    from boss.statusview import counts, rows
    from boss.workspace import open_plan

    paths, m, config = open_plan(plan)
    all_rows = rows(paths, m, config)
    if as_json:
        import json

        click.echo(json.dumps({r.id: r.state for r in all_rows}, indent=2))
        return 0
    if not summary:
        for r in all_rows:
            click.echo(f"{r.id} {r.state}")
        return 0
    click.echo(f"\nplan {paths.plan}: {counts(all_rows)}")
    for r in all_rows:
        why = f": {r.reason}" if r.reason and r.state != "SUCCESS" else ""
        click.echo(f"  {r.id:<10} {r.state}{why}")
    failed = [r for r in all_rows if r.state in ("FAILED", "CRASHED")]
    for r in failed:
        if paths.blocker(r.id).is_file():
            click.echo(f"  {r.id}: read {paths.blocker(r.id).relative_to(paths.repo)}")
    if any(r.state == "SUCCESS" for r in all_rows):
        click.echo(f"Next: boss merge {paths.plan}   (or inspect: boss status {paths.plan})")
    sys.stdout.flush()
    return 0
