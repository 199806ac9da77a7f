"""`boss ui`: the local web dashboard (boss/ui, imported here only: it needs the `ui` extra)."""

from __future__ import annotations

import click

from boss.core.clikit import plan_argument


@click.command()
@plan_argument
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, help="Listen on this port (default: a free one)."
)
@click.option(
    "--host", metavar="ADDRESS", default=None,
    help="Listen on this loopback address (default: a random 127.x.y.z of its own on Linux, else 127.0.0.1).",
)  # fmt: skip
@click.option("--no-browser", is_flag=True, help="Print the URL only; do not open a browser.")
def ui(plan: str | None, port: int, host: str | None, no_browser: bool) -> int:
    """Serve a live dashboard of PLAN on a loopback address and print its URL (with a
    single-use access token).

    It shows the dependency graph, the workers (state, iteration, spend, last event, merge or
    review verdict), each worker's iterations, agent output, tests, change and blocker report,
    and the merge ceremonies; pending approvals stand at the top of every page. From it you
    approve or deny a command, review a quarantined worker, retry or drop a worker and run
    `boss merge`, through the same code as these commands. Ctrl-C stops it; nothing is lost.
    Needs the extra: pip install 'boss-worker[ui]'.
    """
    from boss.core.errors import ConfigError
    from boss.core.workspace import find_repo, plan_name

    repo = find_repo()
    name = plan_name(repo, plan)
    try:
        from boss.ui.server import serve
    except ImportError as e:
        msg = f"boss ui needs its extra ({e.name} is missing): pip install 'boss-worker[ui]'"
        raise ConfigError(msg) from e
    serve(repo, name, port, browser=not no_browser, say=click.echo, host=host)
    return 0
