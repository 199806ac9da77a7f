"""`boss clean`: remove the worktrees, branches and refs of finished work."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from boss.core.clikit import json_option, plan_argument


@click.command()
@plan_argument
@click.option("--all", "everything", is_flag=True, help="Every plan, refs/boss/*, and the .boss folder.")
@click.option("--force", is_flag=True, help="Also delete unmerged work and uncommitted changes.")
@click.option("--discard", is_flag=True, help="--force, and also drop commits boss did not make.")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@json_option
def clean(
    plan: str | None, everything: bool, force: bool, discard: bool, dry_run: bool, as_json: bool
) -> int:
    """Remove worktrees and branches of merged, rejected, dropped and skipped workers.

    Unmerged work (commits not in the base, uncommitted changes, a tested result not landed,
    a ceremony in progress) is kept and listed unless --force. Commits boss did not make (work
    finished by hand) are kept even with --force, and named: --discard drops them too. What a
    worker removed from the manifest left is removed. Git's worktree records are pruned, and
    the disk freed is reported. --all does this for every plan, then removes
    refs/boss/* and .boss/ (kept, with a note, while unmerged work is kept).
    """
    from boss.ceremony import clean as core
    from boss.core.workspace import find_repo, open_plan

    if everything:
        if plan:
            raise click.UsageError("name a plan or use --all, not both")
        done = core.clean_all(find_repo(), force=force, dry_run=dry_run, discard=discard)
    else:
        paths, m, config = open_plan(plan)
        done = core.clean_plan(paths, m, config, force=force, dry_run=dry_run, discard=discard)
    if as_json:
        click.echo(json.dumps({**asdict(done), "dry_run": dry_run}, indent=2))
        return 0
    verb = "would remove" if dry_run else "removed"
    for label, items in (("worktree", done.worktrees), ("branch", done.branches), ("ref", done.refs),
                         ("folder", done.folders)):  # fmt: skip
        for item in items:
            click.echo(f"{verb} {label} {item}")
    for commit in done.discarded:
        click.echo(f"{'would discard' if dry_run else 'discarded'} commit on {commit}")
    for note in done.kept:
        click.echo(f"kept {note}")
    freed = core.human(done.freed)
    click.echo(f"{'Would free' if dry_run else 'Freed'} {freed} of disk.")
    return 0
