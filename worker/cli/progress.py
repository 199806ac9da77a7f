"""`worker progress`: the live one-line-per-worker view run_workers.sh shows while it runs."""

from __future__ import annotations

import os
import shutil
import sys
import time

import click

QUIET_NOTICE = 30.0  # seconds without a change before a plain-text "still running" line


@click.command()
@click.argument("plan")
@click.option("--parent", type=int, default=0, help="Stop when this process has exited.")
@click.option("--interval", type=float, default=0.5, help="Seconds between refreshes.")
def progress(plan: str, parent: int, interval: float) -> int:
    """Show each worker's state, strategy/iteration, elapsed time and last event, live.

    On a terminal the lines are redrawn in place; otherwise a line is printed whenever a
    worker changes, and a "still running" line when nothing changed for a while.
    """
    from boss.core.proc import pid_alive
    from boss.core.statusview import Columns, format_row, header, rows
    from boss.core.workspace import open_plan

    paths, m, config = open_plan(plan)
    tty = sys.stdout.isatty()
    color = tty and not os.environ.get("NO_COLOR")
    drawn = 0
    seen: dict[str, tuple[str, int, str]] = {}  # what was printed of each worker
    last_change = time.monotonic()
    try:
        while parent == 0 or pid_alive(parent):
            current = rows(paths, m, config)
            cols = Columns.fit(current)
            if tty:
                width = shutil.get_terminal_size((100, 20)).columns
                lines = [header(cols)] + [format_row(r, width, color, cols) for r in current]
                out = (f"\x1b[{drawn}F" if drawn else "") + "".join(f"\x1b[2K{line}\n" for line in lines)
                sys.stdout.write(out)
                sys.stdout.flush()
                drawn = len(lines)
            else:
                for r in current:
                    key = (r.state, r.iteration, r.last_event + "\0" + r.outcome)
                    if seen.get(r.id) != key:
                        seen[r.id] = key
                        last_change = time.monotonic()
                        click.echo(format_row(r, 160, cols=cols))
                if time.monotonic() - last_change > QUIET_NOTICE:
                    busy = [f"{r.id} ({r.last_event or r.state})" for r in current if r.state == "RUNNING"]
                    if busy:
                        click.echo("still running: " + "; ".join(busy))
                    last_change = time.monotonic()
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    return 0
