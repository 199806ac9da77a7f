"""The `boss` command line: thin; each command lives in boss/cli/<name>.py."""

from __future__ import annotations

import click

from boss import __version__
from boss.core.clikit import Group

COMMANDS = {
    "plan": "boss.cli.plan:plan",
    "render": "boss.cli.render:render",
    "validate": "boss.cli.render:validate",
    "status": "boss.cli.status:status",
    "log": "boss.cli.status:log",
    "retry": "boss.cli.retry:retry",
    "merge": "boss.cli.merge:merge",
    "diff": "boss.cli.diff:diff",
    "quarantine": "boss.cli.quarantine:quarantine",
    "clean": "boss.cli.clean:clean",
    "drop": "boss.cli.drop:drop",
    "approvals": "boss.cli.approvals:approvals",
    "approve": "boss.cli.approvals:approve",
    "deny": "boss.cli.approvals:deny",
    "demo": "boss.cli.demo:demo",
    "do": "boss.cli.do:do",
    "undo": "boss.cli.undo:undo",
    "ui": "boss.cli.ui:ui",
}


@click.group(cls=Group, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="boss")
def cli() -> None:
    """boss: plan work for many coding agents, run them in git worktrees, merge what is proven.

    Start with `boss demo`. One task: `boss do "TASK" --test CMD` (and `boss undo`). Many:
    `boss plan --from PLAN.md`, run the generated `.boss/plans/<plan>/run_workers.sh`, watch
    `boss status --watch`, and `boss merge`.
    """


def main() -> None:
    """Console entry point."""
    cli.main(prog_name="boss")
