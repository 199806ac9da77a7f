"""`boss undo`: take back what a `boss do` landed."""

from __future__ import annotations

import click


@click.command()
@click.argument("plan", required=False)
def undo(plan: str | None) -> int:
    """Put the branch a `boss do` landed on back to its rollback point (default: the last one).

    Only while nothing else landed on that branch since; otherwise nothing changes and the
    message says how to take back only that work (`git revert`). Where the branch is checked
    out, its files follow, unless your uncommitted changes stand where the undo changes files.
    The work itself stays on the worker's branch (`boss diff W1 --plan PLAN`).
    """
    from boss.solo import record
    from boss.solo.undo import undo as undo_landing

    paths, _, _, rec = record.open_do(plan)
    click.echo(undo_landing(paths, rec))
    return 0
