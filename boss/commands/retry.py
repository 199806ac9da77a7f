"""`boss retry`: run one worker again, now, whatever its state."""

from __future__ import annotations

import click

from boss.clikit import plan_option


@click.command()
@click.argument("worker_id", metavar="ID")
@plan_option
@click.option("--fresh", is_flag=True, help="Delete its worktree and start over (setup runs again).")
def retry(worker_id: str, plan: str | None, fresh: bool) -> int:
    """Run worker ID again in the foreground; exit 0 when it ends SUCCESS.

    Its earlier attempts stay under attempts/. When its branch changed, the results of its
    dependents (built on the old one) are dropped: run run_workers.sh again to redo them.
    """
    from boss import definitions
    from boss.workspace import open_plan
    from worker import status as st
    from worker.agents import check_agents
    from worker.run import run_worker

    paths, m, config = open_plan(plan)
    m.worker(worker_id)  # an unknown id fails here, naming the plan's workers
    check_agents(m, config, str(paths.manifest), only=worker_id)
    dependents = [w.id for w in m.order() if w.id in m.dependents(worker_id)]
    why = f"depends on {worker_id}, which would change under it"
    definitions.refuse_running(paths, config, dict.fromkeys(dependents, why), f"before retrying {worker_id}")
    before = st.read(paths.status(worker_id))
    click.echo(f"Retrying {worker_id} of plan {paths.plan}{' from scratch' if fresh else ''}...")
    state = run_worker(paths, m, config, worker_id, fresh=fresh)
    after = st.read(paths.status(worker_id))
    click.echo(f"{worker_id}: {state}" + (f" ({after.reason})" if after and after.reason else ""))
    if dependents:
        script = f"bash {paths.run_script.relative_to(paths.repo)}"
        unchanged = (
            before is not None and after is not None and before.state == state == st.SUCCESS
            and before.head_commit == after.head_commit
        )  # fmt: skip
        if unchanged:
            names = ", ".join(dependents)
            click.echo(f"Its dependents ({names}) keep their results: its branch did not change.")
        else:
            reasons = dict.fromkeys(dependents, f"its dependency {worker_id} was retried")
            for line in definitions.reset(paths, reasons):
                click.echo(line)
            click.echo(f"Its dependents ({', '.join(dependents)}): {script}")
    return 0 if state == "SUCCESS" else 1
