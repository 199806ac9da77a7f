"""`boss demo`: the first thing a new user runs."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("directory", required=False, default="boss-demo", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace an earlier demo in DIRECTORY.")
def demo(directory: Path, force: bool) -> int:
    """Create a sample repository in DIRECTORY (default ./boss-demo) and run the whole pipeline.

    Seven scripted agents cover every outcome: a dependency chain that succeeds, a worker that
    gives up with a blocker report, a scope violation that is quarantined and salvaged, a
    merge conflict, and a change that breaks the integration suite and is dropped. Needs only
    Python, git and bash; takes well under a minute. Exit 0 when the story went as designed.
    """
    from boss.demo.story import run_demo

    return run_demo(directory, lambda line: click.echo(line), force=force)
