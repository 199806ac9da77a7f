"""`boss status` and `boss log`: what the workers are doing, and what happened."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from typing import TYPE_CHECKING

import click

from boss.core.clikit import json_option, plan_argument

if TYPE_CHECKING:
    from boss.core.config import Config
    from boss.core.manifest import Manifest
    from boss.core.paths import PlanPaths


@click.command()
@plan_argument
@json_option
@click.option(
    "--watch",
    is_flag=True,
    help="Refresh every second until every worker has ended; before the run starts, wait for it.",
)
def status(plan: str | None, as_json: bool, watch: bool) -> int:
    """One row per worker: state, latest merge or review outcome (MERGE), strategy/iteration,
    elapsed, branch, last event; and the latest merge ceremony's verdicts.

    MERGE shows the verdict of the latest `boss merge` (MERGED, REVERTED, CONFLICT,
    QUARANTINED, SKIPPED) and any review decision (accept, reject, salvage), while they are
    about the worker's current work; `-` when there is none.

    A RUNNING worker whose process is gone, or whose heartbeat is stale, shows CRASHED; one
    whose status.json cannot be read shows CORRUPT, with an `Error:` line naming the file
    (exit 2).
    """
    from boss.core import statusview as sv
    from boss.core.decisions import read_drop
    from boss.core.exits import say
    from boss.core.outcomes import latest
    from boss.core.statusview import Columns, corrupt, counts, format_row, header, rows, unconfined
    from boss.core.workspace import open_plan

    paths, m, config = _wait_for_the_run(plan) if watch else open_plan(plan)
    drops = {w.id: d for w in m.workers if (d := read_drop(paths, w.id)) is not None}
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    while True:
        j, problem = latest(paths)
        current = rows(paths, m, config, j)
        if as_json:
            data = {"plan": paths.plan, "merge": sv.merge_dict(j), "workers": [r.to_dict() for r in current],
                    "dropped": {wid: d.reason for wid, d in drops.items()},
                    "spent": sv.total_spent(current)}  # fmt: skip
            click.echo(json.dumps(data, indent=2))
        else:
            if watch and sys.stdout.isatty():
                click.clear()
            click.echo(f"plan {paths.plan}: {counts(current)}")
            if total := sv.plan_spent(m, current):
                click.echo(total)
            for line in sv.merge_lines(paths, j, problem):
                click.echo(line)
            cols = Columns.fit(current)
            width = shutil.get_terminal_size((120, 24)).columns if sys.stdout.isatty() else 160
            click.echo(header(cols))
            for r in current:
                click.echo(format_row(r, width, bool(color), cols))
            for line in unconfined(current):
                click.echo(line.strip())
            for wid, d in drops.items():  # `boss merge` never merges these
                click.echo(f"{wid}: dropped ({d.reason}); `boss drop {wid} --undo` takes it back")
        if not watch or not any(r.state in ("RUNNING", "WAITING") for r in current):
            broken = corrupt(paths, current)
            for line in broken:
                say(f"Error: {line}")
            return 2 if broken else 0
        time.sleep(1.0)


def _started(paths: PlanPaths, m: Manifest) -> bool:
    """True once a worker of the plan has started (its status file exists)."""
    return any(paths.status(w.id).exists() for w in m.workers)


def _wait_for_the_run(plan: str | None) -> tuple[PlanPaths, Manifest, Config]:
    """The plan, once a worker of it has started; until then, wait (saying so once).

    Before any plan exists, wait for one too; a plan named that is not there while others are
    is an error as usual (a typo, not a run to come).
    """
    from boss.core.exits import say
    from boss.core.manifest import display_path
    from boss.core.paths import list_plans
    from boss.core.workspace import find_repo, open_plan

    repo, said = find_repo(), False
    while True:
        if list_plans(repo):
            paths, m, config = open_plan(plan)  # re-read: the plan may be rendered again meanwhile
            if _started(paths, m):
                return paths, m, config
            what = f"Plan {paths.plan}: waiting for the run to start (bash {display_path(paths.run_script)})"
        else:
            what = "No plan yet: waiting for the run to start (`boss plan`, then its run_workers.sh)"
        if not said:
            say(f"{what}; Ctrl-C to stop.")
            said = True
        time.sleep(1.0)


@click.command()
@plan_argument
@click.option("--worker", "worker_id", default=None, help="Only this worker's events.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events (Ctrl-C to stop).")
@json_option
def log(plan: str | None, worker_id: str | None, follow: bool, as_json: bool) -> int:
    """The plan's state log: one line per event, oldest first."""
    from dataclasses import asdict

    from boss.core import statelog
    from boss.core.workspace import open_plan

    paths, m, _ = open_plan(plan)
    if worker_id is not None:
        m.worker(worker_id)  # an unknown id is an error that names the plan's workers
    shown = 0
    while True:
        events = statelog.read(paths.log)
        fresh = [e for e in events[shown:] if worker_id is None or e.worker == worker_id]
        shown = len(events)
        if as_json:
            click.echo(json.dumps([asdict(e) for e in fresh], indent=2))
        else:
            for e in fresh:
                click.echo(e.line())
        if not follow:
            return 0
        time.sleep(0.5)
