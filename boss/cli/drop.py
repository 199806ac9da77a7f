"""`boss drop`: dismiss a worker for good (the merge ceremony never merges it), or take that back."""

from __future__ import annotations

import click

from boss.core.clikit import plan_option


@click.command()
@click.argument("worker_id", metavar="ID")
@plan_option
@click.option("--reason", "-m", default="", help="Why it is dropped (recorded, and shown in the report).")
@click.option("--undo", is_flag=True, help="Take the drop back: the next `boss merge` judges it again.")
def drop(worker_id: str, plan: str | None, reason: str, undo: bool) -> int:
    """Dismiss worker ID: every later `boss merge` gives it the verdict DROPPED and never merges it.

    For work nobody wants any more: a REVERTED worker that would be merged (and its tests run)
    again by every ceremony, a FAILED one nobody will finish. Its branch, status and logs stay
    until `boss clean`, which removes them as a rejected worker's (commits by hand only with
    --discard); its dependents are not merged either.
    `--undo` takes the drop back.
    """
    from boss.core import rulings
    from boss.core.workspace import open_plan

    paths, m, config = open_plan(plan)
    w = m.worker(worker_id)  # an unknown id fails here, naming the plan's workers
    if undo:
        if reason:
            raise click.UsageError("--undo takes no --reason")
        rulings.undrop(paths, m, w.id)
        click.echo(f"{w.id}: no longer dropped; the next `boss merge {paths.plan}` judges it again")
        return 0
    if not reason.strip():
        raise click.UsageError("give the reason: boss drop ID --reason TEXT")
    record = rulings.drop(paths, m, config, w.id, reason).record
    click.echo(
        f"{w.id}: dropped ({record.reason}); `boss merge {paths.plan}` will not merge it "
        f"(`boss drop {w.id} --undo` takes it back)"
    )
    return 0
