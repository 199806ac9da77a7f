"""`worker guard` (the hook agents call before a command) and `worker restore` (checkpoints)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from boss.core.clikit import json_option, plan_option
from worker.autonomy.guard import AGENTS


@click.command()
@click.option("--agent", type=click.Choice(AGENTS), required=True,
              help="Which CLI's hook protocol to answer.")  # fmt: skip
@click.option("--plan", required=True, help="The plan the worker belongs to.")
@click.option("--worker", "worker_id", required=True, help="The worker id.")
@click.option("--policy", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The worker's overlay policy (default: its agent folder's policy.yaml).")  # fmt: skip
def guard(agent: str, plan: str, worker_id: str, policy: Path | None) -> int:
    """Judge one hook call (its JSON on stdin): allow, checkpoint then allow, or block (exit 2).

    Agent CLIs run the faster `python -P -m worker.autonomy.guard` with the same options; this
    command is the same guard for people and scripts.
    """
    from worker.autonomy.guard import run

    outcome = run(sys.stdin.read(), agent=agent, plan=plan, worker_id=worker_id, policy=policy)
    if outcome.stdout:
        click.echo(outcome.stdout)
    if outcome.stderr:
        click.echo(outcome.stderr, err=True, nl=False)
    return outcome.code


@click.command()
@plan_option
@click.argument("worker_id", metavar="ID")
@click.argument("checkpoint", required=False)
@click.option("--list", "list_only", is_flag=True, help="List the worker's checkpoints instead.")
@json_option
def restore(plan: str | None, worker_id: str, checkpoint: str | None, list_only: bool, as_json: bool) -> int:
    """Put worker ID's worktree back as it was when CHECKPOINT was taken (default: the latest).

    The state before the restore is checkpointed first, so a restore can be undone.
    """
    import json

    from boss.core import checkpoint as cp
    from boss.core import statelog
    from boss.core import status as st
    from boss.core.errors import InputError, StateError
    from boss.core.workspace import open_plan

    paths, m, _config = open_plan(plan)
    if worker_id not in {w.id for w in m.workers}:
        msg = f"{paths.manifest}: no worker {worker_id!r} (workers: {', '.join(w.id for w in m.workers)})"
        raise InputError(msg)
    worktree = paths.worktree(worker_id)
    if not worktree.is_dir():
        msg = f"worker {worker_id}: no worktree at {worktree}"
        raise StateError(msg)
    if list_only:
        found = cp.list_checkpoints(worktree, paths.plan, worker_id)
        if as_json:
            click.echo(
                json.dumps(
                    [
                        {"number": c.number, "ref": c.ref, "commit": c.commit, "parent": c.parent}
                        for c in found
                    ]
                )
            )
        for c in [] if as_json else found:
            click.echo(f"{c.number}\t{c.ref}\t{c.commit[:12]}")
        return 0
    target, before = cp.restore(worktree, paths.plan, worker_id, checkpoint)
    status = st.read(paths.status(worker_id))
    result = f"restored checkpoint {target.ref} (the state before is {before.ref})"
    statelog.append(
        paths.log,
        statelog.Event(
            st.now_iso(), status.state if status else st.PENDING, worker_id, "restore", result, target.ref
        ),
    )
    if as_json:
        click.echo(json.dumps({"restored": target.ref, "before": before.ref, "worktree": str(worktree)}))
    else:
        click.echo(f"{worker_id}: {result}")
    return 0
