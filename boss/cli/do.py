"""`boss do`: one task, one agent, every gate of a worker, landed on the current branch."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from boss.core.approvals import Request as ApprovalRequest
    from boss.core.statelog import Event
    from boss.solo.flow import Io

# The worker's milestones shown without --watch (with it, every line of the state log).
MILESTONES = frozenset({"start", "red", "test", "STRATEGY SHIFT", "scope", "blocker", "end"})


@click.command(name="do")
@click.argument("task", required=False)
@click.option("--test", metavar="CMD", help="The acceptance test: fails before the work, passes after.")
@click.option("--scope", "scopes", multiple=True, metavar="REGEX",
              help="A path regex the agent may change (repeatable; default: every path).")  # fmt: skip
@click.option("--agent", metavar="NAME", help="The agent profile (default: the manifest's, claude).")
@click.option("--from", "from_file", metavar="TASK.md", type=click.Path(dir_okay=False, path_type=Path),
              help="A Markdown plan of one worker, instead of TASK, --test and --scope.")  # fmt: skip
@click.option("--integration-test", metavar="CMD", help="A test also run on the tree that lands.")
@click.option("--plan", "slug", metavar="SLUG",
              help="The plan's name; with --retry, which `boss do` (default: the last).")  # fmt: skip
@click.option("--retry", is_flag=True, help="Resume a `boss do`: rerun its worker unless done, then land.")
@click.option("--watch", is_flag=True, help="Follow every step; on a terminal, answer TIER 3 requests there.")
def do(
    task: str | None, test: str | None, scopes: tuple[str, ...], agent: str | None, from_file: Path | None,
    integration_test: str | None, slug: str | None, retry: bool, watch: bool,
) -> int:  # fmt: skip
    """Turn one task into a tested, scoped commit on the current branch.

    \b
      boss do "Make add() handle floats" --test "pytest -q tests/test_calc.py" --scope '^src/'
      boss do --from TASK.md     (a Markdown plan with one `## ID: title` section)
      boss do --retry            (resume the last one)
      boss undo                  (take back what it landed)

    A plan of one worker under .boss/plans/ (every plan command works on it): the agent works
    in its own worktree from the current branch's commit, under every gate of a worker (red
    test first, iterations, strategy shift with rollback, blocker report, frozen test, scope
    check, tiered autonomy, the sandbox). A SUCCESS lands through the merge ceremony: the
    acceptance test (and --integration-test) pass on the exact tree that lands, and the branch
    moves only if it did not move meanwhile. The branch's commit before the work is the
    rollback point, kept as refs/boss/<plan>/rollback. Exit 0 when the work landed.
    """
    from boss.core import manifest as mf
    from boss.core.errors import InputError
    from boss.solo import record

    if retry:
        if task or from_file or test or scopes or agent or integration_test:
            msg = "boss do --retry: resumes a `boss do` as it was planned; give only --plan and --watch"
            raise InputError(msg)
        paths, m, config, rec = record.open_do(slug)
        click.echo(f"boss do --retry: plan {paths.plan}, landing on {rec.branch}")
    else:
        from boss.core.config import load_config
        from boss.plan.new_plan import find_base
        from boss.solo.task import Request, make_plan
        from worker.api import check_agents

        if from_file is not None and (task or test or scopes):
            msg = "boss do --from: the Markdown plan gives task, test and scope; drop TASK, --test, --scope"
            raise InputError(msg)
        base = find_base(Path.cwd(), _current_branch(), "the current branch")
        config = load_config(base.repo)
        req = Request(task or "", from_file, test or "", scopes, agent or "", integration_test, slug or "")
        paths, m = make_plan(req, base, config, check=lambda m: check_agents(m, config, "boss do"))
        rec = record.create(paths, base.branch, base.commit, m.task)
        w = m.workers[0]
        click.echo(f"boss do: plan {paths.plan}: {w.title!r} on {base.branch} at {base.commit[:10]}")
        click.echo(f"  test: {w.test}   scope: {' '.join(w.scope)}   agent: {m.settings(w).agent}")
        click.echo(f"  rollback point: {rec.ref} ({base.commit[:10]}); boss undo puts {base.branch} back")
        click.echo(f"  plan: {mf.display_path(paths.plan_md)}; status: boss status {paths.plan}")
    from boss.solo.flow import course

    try:
        return course(paths, m, config, rec, _io(paths.approvals_dir, watch))
    except KeyboardInterrupt:
        click.echo(f"Interrupted: the worker stopped; resume: boss do --retry --plan {paths.plan}", err=True)
        return 130


def _current_branch() -> str:
    """The branch checked out where the person is (a linked worktree's own, too)."""
    from boss.core import git
    from boss.core.errors import InputError

    here = git.toplevel(Path.cwd())
    branch = git.current_branch(here)
    if branch is None:
        msg = f"{here}: HEAD detached; boss do lands on the current branch; check one out (git switch NAME)"
        raise InputError(msg)
    return branch


def _io(approvals_dir: Path, watch: bool) -> Io:
    """Lines to stdout, the ceremony to stderr, the worker's events, and TIER 3 requests asked
    at the terminal with --watch (else shown)."""
    import signal

    from boss.solo import asking, follow
    from boss.solo.flow import Io

    def show(event: Event) -> None:
        if watch or event.action in MILESTONES or event.result.startswith("tier3"):
            click.echo(follow.line(event))

    def notice(req: ApprovalRequest) -> None:
        for line in follow.notice(req):
            click.echo(line)

    def ask(req: ApprovalRequest, alive: follow.Alive) -> None:
        asking.ask(approvals_dir, req, alive, out=sys.stdout, inp=sys.stdin, wait=follow.APPROVAL_WAIT)

    def stop(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    terminal = watch and sys.stdin.isatty()
    return Io(click.echo, lambda line: click.echo(line, err=True), show, notice, ask if terminal else None)
