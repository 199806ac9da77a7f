"""`boss approvals`, `boss approve`, `boss deny`: the TIER 3 commands waiting for a person."""

from __future__ import annotations

import click

from boss.core.clikit import json_option, plan_argument, plan_option

TYPE_CHECKING = False
if TYPE_CHECKING:
    from boss.core.paths import PlanPaths

_REASON = click.option("--reason", default="", help="Why (recorded with the decision).")


@click.command()
@plan_argument
@json_option
@click.option("--all", "show_all", is_flag=True, help="Also show approved, denied and used requests.")
def approvals(plan: str | None, as_json: bool, show_all: bool) -> int:
    """List the pending TIER 3 approval requests of PLAN: worker, command, reason, when."""
    import json

    from boss.core import approvals as ap

    paths = _paths(plan)
    found = ap.list_requests(paths.approvals_dir, None if show_all else ap.PENDING)
    if as_json:
        click.echo(json.dumps([r.to_json() for r in found], indent=2))
        return 0
    if not found:
        click.echo(f"No {'' if show_all else 'pending '}approval requests in plan {paths.plan}.")
        return 0
    for r in found:
        status = "" if r.status == ap.PENDING else f" [{r.status}]"
        click.echo(f"{r.id}{status}  {r.worker}  {r.created_at}  {r.command}")
        rule = "" if not r.rule or f"rule {r.rule}" in r.reason else f" (rule {r.rule})"
        click.echo(f"    {r.reason}{rule}")
    if not show_all:
        plan_flag = f"--plan {paths.plan}"
        click.echo(f"Approve with `boss approve ID {plan_flag}`, refuse with `boss deny ID {plan_flag}`.")
    return 0


@click.command()
@click.argument("request_id", metavar="REQ")
@plan_option
@_REASON
def approve(request_id: str, plan: str | None, reason: str) -> int:
    """Let exactly the command of request REQ through once, on the worker's next run."""
    return _decide(request_id, plan, reason, approve=True)


@click.command()
@click.argument("request_id", metavar="REQ")
@plan_option
@_REASON
def deny(request_id: str, plan: str | None, reason: str) -> int:
    """Refuse request REQ: the worker's guard keeps blocking that command."""
    return _decide(request_id, plan, reason, approve=False)


def _paths(plan: str | None) -> PlanPaths:
    from boss.core.paths import PlanPaths
    from boss.core.workspace import find_repo, plan_name

    repo = find_repo()
    return PlanPaths.of(repo, plan_name(repo, plan))


def _decide(request_id: str, plan: str | None, reason: str, *, approve: bool) -> int:
    from boss.core import rulings

    paths = _paths(plan)
    req = rulings.decide(paths, request_id, reason, approve=approve)
    click.echo(f"{req.id} {'approved' if approve else 'denied'}: {req.command}")
    if approve:
        retry = f"boss retry {req.worker} --plan {paths.plan}"
        click.echo(f"It runs once when {req.worker} tries it again (e.g. `{retry}`).")
    return 0
