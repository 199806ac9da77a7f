"""`boss plan`: write a new plan's manifest (from Markdown, an agent, or a split) and render it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


@click.command()
@click.argument("task", required=False)
@click.option(
    "--from",
    "from_file",
    metavar="FILE.md",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A plan written by hand in Markdown (`# Title`, one `## ID: title` per worker).",
)
@click.option(
    "--agent", metavar="NAME", help="Ask this agent profile to plan TASK; with --split, the workers' agent."
)
@click.option("--split", metavar="GLOB", help="One worker per tracked folder matching GLOB, for TASK.")
@click.option("--base", metavar="BRANCH", help="The branch workers start from (default: the current one).")
@click.option("--plan", "slug", metavar="SLUG", help="The plan's name (default: from its title or task).")
@click.option("--test", metavar="CMD", help="--split: each worker's acceptance test; {dir} is its folder.")
@click.option("--integration-test", metavar="CMD", help="The test run after each merge.")
@click.option("--force", is_flag=True, help="Replace an existing plan of the same name.")
def plan(
    task: str | None,
    from_file: Path | None,
    agent: str | None,
    split: str | None,
    base: str | None,
    slug: str | None,
    test: str | None,
    integration_test: str | None,
    force: bool,
) -> int:
    """Write a new plan's manifest and render its files.

    \b
      boss plan --from PLAN.md
      boss plan --agent NAME "TASK"
      boss plan --split 'packages/*' --test 'make -C {dir} test' [--agent NAME] "TASK"

    With --split, --agent NAME is the agent every split worker runs (the manifest's
    defaults.agent); nothing is asked of it to plan.

    The manifest goes to .boss/plans/<plan>/manifest.yaml with the base branch and its
    commit; .boss/ and the worktree root are added to .git/info/exclude. Then run the
    printed run_workers.sh.
    """
    from boss.core import manifest as mf
    from boss.core.config import load_config
    from boss.core.errors import InputError
    from boss.plan.new_plan import complete, find_base, split_raw, write_plan

    asked = agent if not split else None  # with --split, --agent only names the workers' agent
    modes = [name for name, given in (("--from", from_file), ("--agent", asked), ("--split", split)) if given]
    if len(modes) != 1:
        msg = 'boss plan: give exactly one of --from FILE.md, --agent NAME "TASK" or --split GLOB "TASK"'
        raise InputError(msg)
    if from_file is not None and task:
        msg = "boss plan --from: the task comes from the Markdown file; drop the TASK argument"
        raise InputError(msg)
    if from_file is None and not (task or "").strip():
        msg = f"boss plan {modes[0]}: the TASK argument is missing"
        raise InputError(msg)
    if test and not split:
        msg = "boss plan --test: only for --split (Markdown and agent plans set each worker's test)"
        raise InputError(msg)
    if from_file is not None:
        from boss.plan import markdown_plan

        source = mf.display_path(from_file)
        raw = markdown_plan.read(from_file, source)
        where = f"field base of {source}"
        b = find_base(Path.cwd(), base or raw.get("base"), "--base" if base else where)
        config = load_config(b.repo)
        m = mf.from_dict(complete(raw, b, plan=slug, integration_test=integration_test), source)
    elif split:
        from boss.core import git

        b = find_base(Path.cwd(), base)
        config = load_config(b.repo)
        raw = split_raw(git.ls_files(b.repo), split, str(task), test or "")
        filled = complete(raw, b, plan=slug, integration_test=integration_test, agent=agent)
        m = mf.from_dict(filled, "--split")
        if agent:
            from worker.api import check_agents

            check_agents(m, config, "boss plan --agent", only=m.workers[0].id)
    else:
        from boss.plan.new_plan import exclude_patterns
        from boss.plan.planner import plan_with_agent
        from worker.api import planning_agent

        b = find_base(Path.cwd(), base)
        config = load_config(b.repo)
        the_task, name = str(task), str(agent)

        def finalize(answer: dict[str, Any], source: str) -> mf.Manifest:
            answer.setdefault("plan", mf.slugify(the_task))
            answer.setdefault("task", the_task)
            filled = complete(answer, b, plan=slug, integration_test=integration_test, agent=name)
            return mf.from_dict(filled, source)

        from boss.core import git

        git.add_exclude(b.repo, exclude_patterns(config))
        planner = planning_agent(name, config, b.repo)
        planner.check()
        click.echo(f"Asking {name} to plan (read-only, timeout {config.planner_timeout}s)...", err=True)
        m = plan_with_agent(b.repo, planner, the_task, b.commit, finalize)
    paths, result = write_plan(m, b, config, force=force)
    from boss.cli.render import report_render

    click.echo(
        f"Wrote {mf.display_path(paths.manifest)}: plan {m.plan}, {len(m.workers)} worker(s) in "
        f"{len(m.waves())} wave(s), starting from {b.branch} at {b.commit[:12]}."
    )
    report_render(paths, result)
    script = mf.display_path(paths.run_script)
    click.echo(f"Next: read {mf.display_path(paths.plan_md)}, then run: bash {script}")
    return 0
