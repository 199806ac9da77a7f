"""`boss retry`: run one worker again, now, whatever its state."""

from __future__ import annotations

import click

from boss.core.clikit import plan_option


@click.command()
@click.argument("worker_id", metavar="ID")
@plan_option
@click.option("--fresh", is_flag=True, help="Delete its worktree and start over (setup runs again).")
@click.option("--discard", is_flag=True, help="Drop commits on its branch that boss did not make.")
def retry(worker_id: str, plan: str | None, fresh: bool, discard: bool) -> int:
    """Run worker ID again in the foreground; exit 0 when it ends SUCCESS.

    Its earlier attempts stay under attempts/. Its dependents were built on the branch it is
    about to redo, so their results are dropped first (refused while one of them runs): run
    run_workers.sh again afterwards to redo them on the new branch.

    A branch holding commits boss did not make (finished by hand) is not reset: the retry
    stops, naming them (land them with `boss merge`), unless --discard. A dropped worker is
    not retried until `boss drop ID --undo`.
    """
    from boss.core import handwork
    from boss.core import status as st
    from boss.core.decisions import read_drop
    from boss.core.errors import StateError
    from boss.core.workspace import open_plan
    from boss.plan import definitions
    from worker.api import check_agents, install_stop_signals, run_worker

    paths, m, config = open_plan(plan)
    w = m.worker(worker_id)  # an unknown id fails here, naming the plan's workers
    dropped = read_drop(paths, w.id)
    if dropped is not None:
        msg = f"worker {w.id} is dropped ({dropped.reason}); take it back first: boss drop {w.id} --undo"
        raise StateError(msg)
    if not discard:  # before its dependents are reset (the worker refuses again, under its lock)
        handwork.refuse_discard(paths, w.id, w.branch, "the retry")
    check_agents(m, config, str(paths.manifest), only=worker_id)
    dependents = [w.id for w in m.order() if w.id in m.dependents(worker_id)]
    why = f"depends on {worker_id}, which would change under it"
    definitions.refuse_running(paths, config, dict.fromkeys(dependents, why), f"before retrying {worker_id}")
    # Before the run, not after: an interrupted retry has already reset the branch they built on.
    for line in definitions.reset(paths, dict.fromkeys(dependents, f"its dependency {worker_id} is retried")):
        click.echo(line)
    click.echo(f"Retrying {worker_id} of plan {paths.plan}{' from scratch' if fresh else ''}...")
    install_stop_signals()  # Ctrl-C or SIGTERM: the agent is stopped, the status says interrupted
    state = run_worker(paths, m, config, worker_id, fresh=fresh, discard=discard)
    after = st.read(paths.status(worker_id))
    click.echo(f"{worker_id}: {state}" + (f" ({after.reason})" if after and after.reason else ""))
    if dependents:
        script = f"bash {paths.run_script.relative_to(paths.repo)}"
        click.echo(f"Its dependents ({', '.join(dependents)}): {script}")
    return 0 if state == "SUCCESS" else 1
