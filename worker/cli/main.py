"""The `worker` command line: thin; each command lives in worker/cli/<name>.py."""

from __future__ import annotations

import click

from boss import __version__
from boss.core.clikit import Group

COMMANDS = {
    "run": "worker.cli.run:run",
    "skip": "worker.cli.run:skip",
    "states": "worker.cli.run:states",
    "pool": "worker.cli.run:pool",
    "progress": "worker.cli.progress:progress",
    "classify": "worker.cli.classify:classify",
    "guard": "worker.cli.guard:guard",
    "restore": "worker.cli.guard:restore",
}


@click.group(cls=Group, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="worker")
def cli() -> None:
    """worker: drive one agent in one git worktree until its acceptance test passes."""


def main() -> None:
    """Console entry point."""
    cli.main(prog_name="worker")
