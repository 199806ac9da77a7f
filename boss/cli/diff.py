"""`boss diff`: the whole change of a worker against its start, out-of-scope paths marked."""

from __future__ import annotations

import json

import click

from boss.core.clikit import json_option, plan_option


@click.command()
@click.argument("worker_id", metavar="ID")
@plan_option
@click.option("--stat", "stat", is_flag=True, help="Only the changed files with lines added and removed.")
@click.option("--name-only", is_flag=True, help="Only the changed paths, one a line.")
@json_option
def diff(worker_id: str, plan: str | None, stat: bool, name_only: bool, as_json: bool) -> int:
    """Worker ID's whole change: its branch against its start (refs/boss/<plan>/<ID>/start).

    Every path outside the worker's scope is marked OUT OF SCOPE, and its diff comes last,
    under its own banner. --stat lists the files, --name-only the paths (an out-of-scope one
    followed by a tab and `OUT OF SCOPE`). Uncommitted changes in its worktree are counted,
    not shown.
    """
    from boss.core import changes
    from boss.core.workspace import open_plan

    if stat and name_only:
        raise click.UsageError("use --stat or --name-only, not both")
    paths, m, _ = open_plan(plan)
    c = changes.of_worker(paths, m, worker_id)
    if as_json:
        click.echo(json.dumps(c.to_dict(), indent=2))
        return 0
    if name_only:
        for f in c.files:
            click.echo(f.path + ("\tOUT OF SCOPE" if f.outside else ""))
        return 0
    for line in [changes.summary(c), *changes.stat_lines(c)] if stat else changes.render(paths, c):
        click.echo(line)
    return 0
