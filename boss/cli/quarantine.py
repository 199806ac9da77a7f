"""`boss quarantine`: review work the merge ceremony quarantined (SPEC section 9)."""

from __future__ import annotations

import json

import click

from boss.core.clikit import json_option, plan_option

reason_option = click.option("--reason", "-m", required=True, help="Why (recorded with the decision).")


@click.group()
def quarantine() -> None:
    """Review quarantined workers: out-of-scope changes, or branches whose status git contradicts.

    list, show ID, then accept ID (merge it as it is at the next `boss merge`), reject ID
    (never merge it) or salvage ID (commit the removal of its out-of-scope changes on its
    branch, re-check the scope, and merge the rest at the next `boss merge`).
    """


@quarantine.command("list")
@plan_option
@json_option
def list_(plan: str | None, as_json: bool) -> int:
    """Every quarantined worker, why, its out-of-scope paths, and any review decision."""
    from boss.ceremony import quarantine as q
    from boss.core.workspace import open_plan

    paths, m, config = open_plan(plan)
    found = q.items(paths, m, config)
    if as_json:
        click.echo(json.dumps([it.to_dict() for it in found], indent=2))
        return 0
    if not found:
        click.echo(f"plan {paths.plan}: nothing is quarantined")
    for it in found:
        decided = f" [{it.decision.decision}: {it.decision.reason}]" if it.decision else ""
        click.echo(f"{it.id:<10} {it.verdict:<12} {it.reason}{decided}")
        for p in it.out_of_scope:
            click.echo(f"    out of scope: {p}")
    return 0


@quarantine.command()
@click.argument("worker_id", metavar="ID")
@plan_option
@json_option
def show(worker_id: str, plan: str | None, as_json: bool) -> int:
    """Why worker ID is quarantined, and its whole change with the out-of-scope part marked.

    The files it changed are listed (OUT OF SCOPE beside each path outside its scope), then
    the diff of its in-scope paths, then the diff of its out-of-scope paths under its own banner.
    """
    from boss.ceremony import quarantine as q
    from boss.core.changes import render
    from boss.core.workspace import open_plan

    paths, m, config = open_plan(plan)
    it = q.get(paths, m, config, worker_id)
    c = q.change(paths, m, it)
    if as_json:
        whole = {"change": c.to_dict() if c else None, "whole_diff": "\n".join(render(paths, c)) if c else ""}
        click.echo(json.dumps({**it.to_dict(), "diff": q.diff(paths, it), **whole}, indent=2))
        return 0
    click.echo(f"{it.id}: {it.verdict} ({it.reason})")
    click.echo(f"branch {it.branch} at {it.head[:10] or 'none'}, judged from {it.start[:10] or 'none'}")
    if it.decision:
        click.echo(f"decision: {it.decision.decision} ({it.decision.reason}) at {it.decision.time}")
    click.echo("out-of-scope paths: " + (", ".join(it.out_of_scope) or "none"))
    for line in render(paths, c) if c else []:
        click.echo(line)
    return 0


def _decide(action: str, worker_id: str, plan: str | None, reason: str) -> int:
    from boss.ceremony import quarantine as q
    from boss.core.workspace import open_plan

    paths, m, config = open_plan(plan)
    d = getattr(q, action)(paths, m, config, worker_id, reason)
    if action == "salvage":
        dropped = ", ".join(d.out_of_scope) or "nothing"
        click.echo(f"{worker_id}: salvaged as {d.head[:10]} (dropped: {dropped}); queued for the next merge")
    elif action == "accept":
        click.echo(f"{worker_id}: accepted as it is ({d.head[:10]}); queued for the next merge")
    else:
        click.echo(f"{worker_id}: rejected; it will not be merged (`boss clean {paths.plan}` removes it)")
        return 0
    click.echo(f"Run `boss merge {paths.plan}` to merge the queued work.")
    return 0


@quarantine.command()
@click.argument("worker_id", metavar="ID")
@plan_option
@reason_option
def accept(worker_id: str, plan: str | None, reason: str) -> int:
    """Queue worker ID's branch for the next merge as it is, out-of-scope paths included."""
    return _decide("accept", worker_id, plan, reason)


@quarantine.command()
@click.argument("worker_id", metavar="ID")
@plan_option
@reason_option
def reject(worker_id: str, plan: str | None, reason: str) -> int:
    """Keep worker ID's branch out of every merge (`boss clean` then removes it)."""
    return _decide("reject", worker_id, plan, reason)


@quarantine.command()
@click.argument("worker_id", metavar="ID")
@plan_option
@click.option(
    "--reason", "-m", default="out-of-scope changes dropped at review", show_default=True,
    help="Why (recorded with the decision and in the commit message).",
)  # fmt: skip
def salvage(worker_id: str, plan: str | None, reason: str) -> int:
    """Drop worker ID's out-of-scope changes in a new commit on its branch and queue the rest."""
    return _decide("salvage", worker_id, plan, reason)
