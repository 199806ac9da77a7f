"""The `boss` command line: thin; each command lives in boss/commands/<name>.py."""

from __future__ import annotations

import click

from boss import __version__
from boss.clikit import Group

COMMANDS = {
    "plan": "boss.commands.plan:plan",
    "render": "boss.commands.render:render",
    "validate": "boss.commands.render:validate",
    "status": "boss.commands.status:status",
    "log": "boss.commands.status:log",
    "retry": "boss.commands.retry:retry",
    "merge": "boss.commands.merge:merge",
    "quarantine": "boss.commands.quarantine:quarantine",
    "clean": "boss.commands.clean:clean",
    "approvals": "boss.commands.approvals:approvals",
    "approve": "boss.commands.approvals:approve",
    "deny": "boss.commands.approvals:deny",
    "demo": "boss.commands.demo:demo",
}


@click.group(cls=Group, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="boss")
def cli() -> None:
    """boss: plan work for many coding agents, run them in git worktrees, merge what is proven.

    Start with `boss demo`; then `boss plan --from PLAN.md`, run the generated
    `.boss/plans/<plan>/run_workers.sh`, watch `boss status --watch`, and `boss merge`.
    """


def main() -> None:
    """Console entry point."""
    cli.main(prog_name="boss")
