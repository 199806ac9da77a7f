"""`boss render` and `boss validate`: the generated files of a plan, and its manifest's check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from boss.core.clikit import json_option, plan_argument

if TYPE_CHECKING:
    from boss.core.paths import PlanPaths
    from boss.plan.render import RenderResult


def report_render(paths: PlanPaths, result: RenderResult) -> None:
    """Print what a render did: counts on stdout, warnings and kept files on stderr."""
    from boss.core.manifest import display_path

    click.echo(
        f"Rendered plan {paths.plan} in {display_path(paths.root)}/: {len(result.written)} written, "
        f"{len(result.unchanged)} unchanged, {len(result.kept)} kept."
    )
    for line in (*result.removed, *result.reset):
        click.echo(line)
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    for path in result.kept:
        click.echo(
            f"Warning: kept {display_path(path)}: edited by hand since it was rendered "
            "(`boss render --force` overwrites it)",
            err=True,
        )


@click.command()
@plan_argument
@click.option("--force", is_flag=True, help="Overwrite generated files that were edited by hand.")
def render(plan: str | None, force: bool) -> int:
    """Regenerate run_workers.sh, plan.md and each CONTEXT.md from the plan's manifest.

    A generated file a person edited since it was rendered is kept, and the command says
    so; --force overwrites it.
    """
    from boss.core import git
    from boss.core.workspace import open_plan
    from boss.plan.render import render_plan

    paths, m, config = open_plan(plan)
    result = render_plan(paths, m, config, force=force, tracked=git.ls_files(paths.repo))
    report_render(paths, result)
    return 0


@click.command()
@plan_argument
@json_option
def validate(plan: str | None, as_json: bool) -> int:
    """Check a plan's manifest against every rule; exit 2 naming each problem.

    PLAN is a plan's name, or the path of a manifest file ending in .yaml or .yml
    (`boss validate manifests/example.yaml`).
    Scope overlaps between workers that may run at the same time are warnings, and so are
    (for a plan) a scope regex that matches no file tracked at the plan's base and an
    acceptance test whose frozen files hold every file its worker's scope matches.
    """
    from boss.core import manifest as mf
    from boss.core.errors import ManifestError

    tracked: list[str] = []
    paths = None
    try:
        if plan and plan.endswith((".yaml", ".yml")):
            path = Path(plan)
            m = mf.load(path)
        else:
            from boss.core import git
            from boss.core.workspace import open_plan
            from worker.api import check_agents

            paths, m, config = open_plan(plan)
            path = paths.manifest
            check_agents(m, config, mf.display_path(path))
            tracked = git.ls_files(paths.repo)
    except ManifestError as e:
        if as_json:
            click.echo(json.dumps({"valid": False, "problems": e.problems}, indent=2))
        raise
    from boss.core.worktrees import foreign_branches

    warnings = mf.scope_warnings(m)
    if paths is not None:  # a plan: its base's files are known
        from boss.plan.checks import plan_file_warnings

        warnings += plan_file_warnings(paths.repo, m)
    warnings += [mf.overlap_warning(*o) for o in mf.scope_overlaps(m, tracked)]
    if paths is not None:  # a plan, not a lone manifest file: its branches can be checked
        warnings += [message for _, message in foreign_branches(paths, m.workers)]
    waves = m.waves()
    if as_json:
        data = {
            "valid": True,
            "manifest": mf.display_path(path),
            "plan": m.plan,
            "workers": len(m.workers),
            "waves": [[w.id for w in wave] for wave in waves],
            "warnings": warnings,
        }
        click.echo(json.dumps(data, indent=2))
        return 0
    click.echo(
        f"{mf.display_path(path)}: valid: plan {m.plan}, {len(m.workers)} worker(s) in {len(waves)} wave(s)."
    )
    for warning in warnings:
        click.echo(f"Warning: {warning}", err=True)
    return 0
