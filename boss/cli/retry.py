"""`boss retry`: run one worker again, now, whatever its state."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from boss.core.clikit import plan_option

if TYPE_CHECKING:
    from boss.core.manifest import Manifest
    from boss.core.paths import PlanPaths


@click.command()
@click.argument("worker_id", metavar="ID")
@plan_option
@click.option("--fresh", is_flag=True, help="Delete its worktree and start over (setup runs again).")
@click.option(
    "--onto", is_flag=False, flag_value="", default=None, metavar="[BASE]",
    help="Redo a CONFLICT, REVERTED or FAILED worker from BASE (default: the base branch now).",
)  # fmt: skip
@click.option("--discard", is_flag=True, help="Drop commits on its branch that boss did not make.")
def retry(worker_id: str, plan: str | None, fresh: bool, onto: str | None, discard: bool) -> int:
    """Run worker ID again in the foreground; exit 0 when it ends SUCCESS.

    Its earlier attempts stay under attempts/. Its dependents were built on the branch it is
    about to redo, so their results are dropped first (refused while one of them runs): run
    run_workers.sh again afterwards to redo them on the new branch.

    With --onto, a worker that ended CONFLICT or REVERTED in `boss merge`, or FAILED, starts
    again from the base branch as it is now (or BASE, a commit of it), and from there on;
    why (the conflict, the new failing tests, the last test output) is its agent's first feedback.

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
    commit = _redo(paths, m, worker_id, onto) if onto is not None else None
    dependents = [w.id for w in m.order() if w.id in m.dependents(worker_id)]
    why = f"depends on {worker_id}, which would change under it"
    definitions.refuse_running(paths, config, dict.fromkeys(dependents, why), f"before retrying {worker_id}")
    # Before the run, not after: an interrupted retry has already reset the branch they built on.
    for line in definitions.reset(paths, dict.fromkeys(dependents, f"its dependency {worker_id} is retried")):
        click.echo(line)
    click.echo(f"Retrying {worker_id} of plan {paths.plan}{' from scratch' if fresh else ''}...")
    install_stop_signals()  # Ctrl-C or SIGTERM: the agent is stopped, the status says interrupted
    state = run_worker(paths, m, config, worker_id, fresh=fresh, onto=commit, discard=discard)
    after = st.read(paths.status(worker_id))
    click.echo(f"{worker_id}: {state}" + (f" ({after.reason})" if after and after.reason else ""))
    if commit and after and "already passes" in after.reason:
        click.echo(f"Its test passes on {m.base} as it is now: the work may be there already.")
    if dependents:
        script = f"bash {paths.run_script.relative_to(paths.repo)}"
        click.echo(f"Its dependents ({', '.join(dependents)}): {script}")
    return 0 if state == "SUCCESS" else 1


def _redo(paths: PlanPaths, m: Manifest, worker_id: str, name: str) -> str:
    """--onto: the base commit to redo on, with why written as the first feedback (boss.core.redo)."""
    from boss.core import journal, redo

    commit = redo.check_onto(paths, m, name)
    why = redo.reason(paths, m, worker_id, commit, journal.load(paths.merge_dir / "journal.json"))
    where = paths.rel(redo.write_feedback(paths, worker_id, why))
    click.echo(f"Redoing {worker_id} ({why.verdict}) on {m.base} at {commit[:10]}; why: {where}")
    return commit
