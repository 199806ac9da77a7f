"""`worker run`, and the small commands run_workers.sh uses: `worker skip`, `worker states`."""

from __future__ import annotations

import os
import sys

import click

from boss.core.errors import InputError


@click.command()
@click.argument("plan")
@click.argument("worker_id", metavar="ID")
@click.option("--fresh", is_flag=True, help="Remove the worktree first and start from scratch.")
@click.option(
    "--onto", metavar="COMMIT", help="Start from this commit of the base (a redo: boss retry --onto)."
)
@click.option("--discard", is_flag=True, help="Drop commits on its branch that boss did not make.")
def run(plan: str, worker_id: str, fresh: bool, onto: str | None, discard: bool) -> int:
    """Run one worker to the end: red gate, agent/test loop, commit, scope check.

    With --onto, workers/ID/redo.md (written by `boss retry --onto` or `boss merge --redo`)
    is the agent's first feedback. Exit 0 SUCCESS, 1 FAILED, 3 SCOPE_VIOLATION, 130 interrupted.
    A branch holding commits boss did not make (a person's) is not reset: exit 1, naming them,
    unless --discard.
    """
    from worker.lifecycle.command import run_command

    return run_command(plan, worker_id, fresh=fresh, onto=onto, discard=discard)


@click.command()
@click.argument("plan")
@click.option("--events-fd", type=int, default=3, show_default=True, help="Where events are written.")
@click.option("--only", default="", metavar="ID,...", help="Check only these workers before starting.")
@click.option("--engine", type=click.Choice(["local", "dask"]), help="Where workers run (config: engine).")
@click.option(
    "--scheduler", metavar="ADDRESS", help="The Dask scheduler, tcp://HOST:PORT (config: scheduler)."
)
@click.option("--remote", metavar="URL", help="The shared git remote every node reaches (config: remote).")
def pool(
    plan: str, events_fd: int, only: str, engine: str | None, scheduler: str | None, remote: str | None
) -> int:
    """Start workers for run_workers.sh, forked from one process (see worker/lifecycle/pool.py).

    Reads `run ID`, `skip ID REASON` and `end` lines on stdin; writes `state ID STATE`,
    `ready` and `done ID CODE` lines to the events file descriptor.
    """
    from boss.core.workspace import open_plan
    from worker.lifecycle.pool import serve
    from worker.lifecycle.run import check_runnable

    try:
        os.fstat(events_fd)
    except OSError as e:
        msg = f"worker pool: --events-fd {events_fd} is not open ({e.strerror})"
        raise InputError(msg) from e
    paths, m, config = open_plan(plan)
    # A bad agent name stops the script before any worker runs (of the selected ones: a worker
    # that --only leaves out cannot stop the others).
    check_runnable(paths, m, config, [i for i in only.split(",") if i])
    where = config.cluster("run_workers.sh", engine, scheduler, remote)
    if all(where):
        from worker.engine.dask_pool import serve as serve_on_cluster

        return serve_on_cluster(paths, m, config, events_fd, *where)
    return serve(paths, m, config, events_fd)


@click.command()
@click.argument("plan")
@click.argument("worker_id", metavar="ID")
@click.option("--reason", required=True, help="Why the worker is skipped.")
def skip(plan: str, worker_id: str, reason: str) -> int:
    """Mark a worker SKIPPED because a dependency did not succeed."""
    from boss.core.workspace import open_plan
    from worker.lifecycle.command import skip_worker

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
    from boss.core.statusview import rows
    from boss.core.statusview import summary as summary_lines
    from boss.core.workspace import open_plan

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
    click.echo("\n".join(summary_lines(paths, m, config)))
    sys.stdout.flush()
    return 0
