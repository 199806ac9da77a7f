"""`worker classify`: the tier of a shell command line, and why."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from boss.core.clikit import json_option

TYPE_CHECKING = False
if TYPE_CHECKING:
    from worker.autonomy.classify import Decision
    from worker.autonomy.policy import Policy

_DIR = click.Path(file_okay=False, path_type=Path)


@click.command()
@json_option
@click.option("--stdin", "from_stdin", is_flag=True, help="Classify each line of standard input.")
@click.option("--cwd", type=_DIR, default=None, help="Where the command runs (default: here).")
@click.option(
    "--worktree",
    type=_DIR,
    default=None,
    help="The worktree the agent is confined to (default: $BOSS_WORKTREE, else the checkout"
    " containing --cwd, else --cwd).",
)
@click.option(
    "--policy",
    "policy_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Extra policy file, on top of the default policy and .boss/policy.yaml (repeatable).",
)
@click.option("--check", is_flag=True, help="Check every policy rule's examples instead.")
@click.argument("command", nargs=-1)
def classify(
    as_json: bool,
    from_stdin: bool,
    cwd: Path | None,
    worktree: Path | None,
    policy_files: tuple[Path, ...],
    check: bool,
    command: tuple[str, ...],
) -> int:
    """Print the tier (1 safe, 2 risky, 3 critical) of COMMAND and the reason.

    \b
      worker classify -- 'curl -s https://x | sh'
      worker classify --json -- 'git push origin main'
      printf '%s\\n' 'ls' 'rm -rf build' | worker classify --stdin
    """
    from boss.core.errors import InputError
    from worker.autonomy import classify as cl
    from worker.autonomy.context import make_context
    from worker.autonomy.policy_file import load_policy

    here = (cwd or Path.cwd()).resolve()
    repo, default_worktree = _locate(here)
    policy = load_policy(repo, list(policy_files))
    if check:
        return _check(policy)
    if from_stdin == bool(command):
        msg = "give one command line as one argument (quote it), or --stdin"
        raise InputError(msg)
    if len(command) > 1:
        msg = f"command: {len(command)} arguments given; quote the command line into one argument"
        raise InputError(msg)
    tree = (worktree or default_worktree).resolve()
    ctx = make_context(tree)
    lines = (line.rstrip("\n") for line in sys.stdin) if from_stdin else iter(command)
    for line in lines:
        if from_stdin and not line.strip():
            continue
        decision = cl.classify(line, here, tree, policy, context=ctx)
        if as_json:
            data = decision.to_json()
            if from_stdin:
                data = {"command": line, **data}
            click.echo(json.dumps(data))
        elif from_stdin:
            click.echo(f"{decision.tier}\t{line}\t{decision.reason}")
        else:
            _show(decision)
    return 0


def _locate(here: Path) -> tuple[Path | None, Path]:
    """The main repository (for .boss/policy.yaml) and the default worktree."""
    from boss.core import git
    from boss.core.errors import InputError

    env_tree = os.environ.get("BOSS_WORKTREE")
    try:
        top = git.toplevel(here)
    except InputError:
        return None, Path(env_tree) if env_tree else here
    return git.main_root(top), Path(env_tree) if env_tree else top


def _show(decision: Decision) -> None:
    click.echo(f"TIER {decision.tier}: {decision.reason}")
    if len(decision.parts) > 1:
        for part in decision.parts:
            click.echo(f"  [{part.tier}] {part.command}: {part.reason} (rule {part.rule})")


def _check(policy: Policy) -> int:
    from worker.autonomy.policy_file import example_problems

    problems = example_problems(policy)
    for line in problems:
        click.echo(f"Error: {line}", err=True)
    count = sum(len(r.examples[0]) + len(r.examples[1]) for r in policy.rules)
    click.echo(
        f"{len(policy.rules)} rules, {count} examples, {len(problems)} problems ({', '.join(policy.sources)})"
    )
    return 2 if problems else 0
