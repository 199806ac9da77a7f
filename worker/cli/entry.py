"""The `worker` console entry point.

`worker run PLAN ID`, the call run_workers.sh makes once per worker, takes a path that does not
import click (~15 ms of CPU per worker, paid by every worker at once when a plan starts). Any
other form, `--help` and options included, goes through the click CLI in worker/cli/main.py.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Console entry point."""
    args = sys.argv[1:]
    if len(args) == 3 and args[0] == "run" and not any(a.startswith("-") for a in args[1:]):
        from boss.core.exits import guarded
        from worker.lifecycle.command import run_command

        guarded(lambda: run_command(args[1], args[2]))
    from worker.cli.main import main as cli_main

    cli_main()
