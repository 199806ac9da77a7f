"""The `worker` command line: thin; each command lives in worker/commands/<name>.py."""

from __future__ import annotations

import click

from boss import __version__
from boss.clikit import Group

COMMANDS = {
    "run": "worker.commands.run:run",
    "skip": "worker.commands.run:skip",
    "states": "worker.commands.run:states",
    "pool": "worker.commands.run:pool",
    "progress": "worker.commands.progress:progress",
    "classify": "worker.commands.classify:classify",
    "guard": "worker.commands.guard:guard",
    "restore": "worker.commands.guard:restore",
}


@click.group(cls=Group, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="worker")
def cli() -> None:
    """worker: drive one agent in one git worktree until its acceptance test passes."""


def main() -> None:
    """Console entry point."""
    cli.main(prog_name="worker")
