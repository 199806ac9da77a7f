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

    Its earlier attempts stay under attempts/; its dependents are not re-run: run
    run_workers.sh again to resume them.
    """
    from boss.workspace import open_plan
    from worker.agents import check_agents
    from worker.run import run_worker

    paths, m, config = open_plan(plan)
    m.worker(worker_id)  # an unknown id fails here, naming the plan's workers
    check_agents(m, config, str(paths.manifest), only=worker_id)
    click.echo(f"Retrying {worker_id} of plan {paths.plan}{' from scratch' if fresh else ''}...")
    state = run_worker(paths, m, config, worker_id, fresh=fresh)
    click.echo(f"{worker_id}: {state}")
    dependents = sorted(m.dependents(worker_id))
    if dependents:
        click.echo(
            f"Its dependents ({', '.join(dependents)}): bash {paths.run_script.relative_to(paths.repo)}"
        )
    return 0 if state == "SUCCESS" else 1
