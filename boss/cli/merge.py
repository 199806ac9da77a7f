"""`boss merge`: the merge ceremony (SPEC section 8)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from boss.core.clikit import json_option, plan_argument

if TYPE_CHECKING:
    from boss.ceremony.triage import DryRun
    from boss.core.manifest import Manifest
    from boss.core.testrun import Remote


@click.command()
@plan_argument
@click.option(
    "--dry-run", is_flag=True, help="Show the triage, the order and the predicted conflicts; change nothing."
)
@click.option(
    "--redo", "redo_rounds", type=click.IntRange(0, 10), default=0, metavar="N",
    help="Redo the workers that conflicted or broke a test on the result, then merge them (N rounds).",
)  # fmt: skip
@click.option(
    "--slots", type=click.IntRange(1, 64), default=None, metavar="N",
    help="Test runs at once, made ahead for the predicted merges (default: merge_slots, else the CPUs).",
)  # fmt: skip
@click.option("--engine", type=click.Choice(["local", "dask"]), help="Where test slots run (config: engine).")
@click.option("--scheduler", metavar="ADDRESS", help="Dask scheduler, tcp://HOST:PORT (config: scheduler).")
@click.option("--remote", metavar="URL", help="The shared git remote the nodes reach (config: remote).")
@json_option
def merge(
    plan: str | None, dry_run: bool, redo_rounds: int, slots: int | None, as_json: bool, **cluster: str | None
) -> int:
    """Bring every worker's proven work into the base branch, in dependency order.

    Triage (SUCCESS is queued; FAILED, CRASHED, SCOPE_VIOLATION and running workers are
    not), verification of each queued branch from git, a baseline run of the integration
    test on the base, then merge-and-test one branch at a time in an integration worktree:
    the worker's acceptance test (from the plan's manifest) and the integration test run on
    the merged result, the latter judged against the last tested head (a red test is run once
    more before the merge is dropped). After the last merge every merged worker's acceptance
    test runs again; a merge that broke one is dropped and the later ones are merged again.
    Finally one atomic move of the base to the verified result, only if the base has not
    moved meanwhile. A worker's status file never lands anything by itself.

    With --redo N, each worker dropped as CONFLICT or REVERTED is then run again by its worker
    from the tested result (as `boss retry ID --onto` would, told why), and the redos that
    succeed are merged in a second pass; at most N such rounds.

    With --engine dask (or `engine: dask` in .boss/config.yaml) the test runs are made on a Dask
    cluster's nodes, --slots at once (default: merge_slots, else the nodes' threads); merges,
    judging and landing stay here (README, "Running on a Dask cluster").

    Progress goes to stderr; the verdicts, with their evidence, to merge/REPORT.md and
    merge/report.json. An interrupted ceremony (even by kill -9) resumes where it stopped.
    Exit 0 when every queued worker merged, 1 when some did not, 2 on bad input.
    """
    from boss.ceremony import merge as ceremony
    from boss.core.workspace import open_plan

    paths, m, config = open_plan(plan)
    if dry_run:
        from boss.ceremony import triage

        _show_dry_run(triage.dry_run(paths, m, config), m, as_json)
        return 0

    def progress(line: str) -> None:
        click.echo(line, err=True)

    scheduler, remote = config.cluster(
        "boss merge", cluster["engine"], cluster["scheduler"], cluster["remote"]
    )
    place = None
    if scheduler:
        from worker.api import cluster_slots

        def place() -> Remote:  # made once the ceremony holds its lock
            return cluster_slots(paths, m, config, scheduler, remote, slots or 0)

    j = ceremony.run(paths, m, config, progress, redo_rounds, config.effective_slots(slots), place)
    report = paths.merge_dir / "report.json"
    if as_json:
        click.echo(report.read_text(), nl=False)
    else:
        for r in j.records:
            click.echo(f"{r.id:<10} {r.verdict:<12} {r.reason}")
        click.echo(j.message)
        click.echo(f"Report: {(paths.merge_dir / 'REPORT.md').relative_to(paths.repo)}")
    return ceremony.exit_code(j)


def _groups(d: DryRun, m: Manifest) -> list[tuple[str, list[str], str]]:
    """(group, members, what the ceremony will do with it) for each group of the plan."""
    queued = set(d.order)
    out = []
    for name, members in m.groups().items():
        ids = [w.id for w in members]
        out_ = [r for r in d.records if r.id in ids and r.id not in queued and r.verdict != "MERGED"]
        fate = "merged as one unit, judged by one integration run"
        if out_:
            fate = f"stays out whole: its member {out_[0].id} is {out_[0].verdict or 'not queued'}"
        out.append((name, ids, fate))
    return out


def _show_dry_run(d: DryRun, m: Manifest, as_json: bool) -> None:
    p = d.prediction
    if as_json:
        data = {
            "base": d.base,
            "base_start": d.base_start,
            "in_progress": d.in_progress,
            "order": d.order,
            "workers": [
                {"id": r.id, "verdict": r.verdict or "QUEUED", "reason": r.reason,
                 "branch": r.branch, "head": r.head, "out_of_scope": r.out_of_scope}
                for r in d.records
            ],
            "conflicts_with_base": p.with_base,
            "conflicts_between": [{"a": a, "b": b, "files": f} for a, b, f in p.pairs],
            "groups": [{"group": g, "members": ids, "fate": fate} for g, ids, fate in _groups(d, m)],
        }  # fmt: skip
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"Dry run: nothing is changed. Base {d.base} at {d.base_start[:10]}.")
    if d.in_progress:
        click.echo(f"An interrupted ceremony (step {d.in_progress}) would be resumed by `boss merge`.")
    click.echo("Triage:")
    for r in d.records:
        verdict = r.verdict or "QUEUED"
        click.echo(f"  {r.id:<10} {verdict:<12} {r.reason}")
    click.echo("Merge order: " + (" -> ".join(d.order) or "nothing to merge"))
    for name, ids, fate in _groups(d, m):
        click.echo(f"Group {name} ({', '.join(ids)}): {fate}")
    if not p.with_base and not p.pairs:
        click.echo("Predicted conflicts (git merge-tree): none")
        return
    click.echo("Predicted conflicts (git merge-tree):")
    for wid, files in p.with_base.items():
        click.echo(f"  {wid} with {d.base}: {', '.join(files)}")
    for a, b, files in p.pairs:
        click.echo(f"  {a} with {b}: {', '.join(files)} (the later one in the order would be dropped)")
