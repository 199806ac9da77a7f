"""The README documents the tool as built: every command and option, and the first screen's commands."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from conftest import boss, worker_cmd

from boss.cli.main import cli as boss_cli
from worker.cli.main import cli as worker_cli

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
INSTALL_AND_DEMO = "python3 -m venv .venv && . .venv/bin/activate && pip install . && boss demo"
TEST = "python3 -m venv .venv && . .venv/bin/activate && pip install '.[test]' && bash scripts/test.sh"


def commands(group: click.Group, prefix: str) -> list[tuple[str, click.Command]]:
    """Every command below group, subcommands of subgroups included, as ("boss quarantine list", cmd)."""
    ctx = click.Context(group)
    found: list[tuple[str, click.Command]] = []
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None, f"{prefix} {name} cannot be loaded"
        found.append((f"{prefix} {name}", cmd))
        if isinstance(cmd, click.Group):
            found += commands(cmd, f"{prefix} {name}")
    return found


ALL = commands(boss_cli, "boss") + commands(worker_cli, "worker")


def test_the_walk_finds_every_command_both_clis_list():
    names = {n for n, _ in ALL}
    assert {"boss plan", "boss merge", "boss quarantine salvage", "worker run", "worker classify"} <= names
    assert len(names) >= 20


@pytest.mark.parametrize("name", [n for n, _ in ALL])
def test_every_command_is_in_the_readme(name):
    assert re.search(rf"`{re.escape(name)}(?=[\s`])", README), f"README does not document `{name}`"


def test_every_option_of_every_command_is_in_the_readme():
    missing = []
    for name, cmd in ALL:
        for param in cmd.params:
            if not isinstance(param, click.Option) or param.hidden:
                continue
            longs = [o for o in param.opts if o.startswith("--")] or param.opts
            if not any(re.search(rf"{re.escape(o)}(?![\w-])", README) for o in longs):
                missing.append(f"{name} {longs[0]}")
    assert not missing, f"options missing from the README: {missing}"


@pytest.mark.parametrize(("name", "cmd"), ALL, ids=[n for n, _ in ALL])
def test_every_command_has_help(name, cmd):
    prog, *path = name.split()
    group = boss_cli if prog == "boss" else worker_cli
    res = CliRunner().invoke(group, [*path, "--help"], prog_name=prog)
    assert res.exit_code == 0, res.output
    assert f"Usage: {name}" in res.output
    assert (cmd.help or "").strip(), f"{name} has no help text"


def test_both_clis_show_their_help_and_version_as_installed(tmp_path):
    for run in (boss, worker_cmd):
        for flag in ("--help", "--version"):
            res = run(flag, cwd=tmp_path)
            assert res.stdout.strip() and not res.stderr, (flag, res.stderr)


def test_the_first_screen_holds_the_two_commands_of_ci():
    first_screen = README.splitlines()[:30]
    assert INSTALL_AND_DEMO in first_screen
    assert TEST in first_screen
    # .ci/run installs the project with its test extras and runs the same test script.
    ci = (ROOT / ".ci" / "run").read_text()
    assert "'.[test]'" in ci
    assert ci.rstrip().splitlines()[-1] == "bash scripts/test.sh"
    first_line_of_prose = next(line for line in README.splitlines()[1:] if line.strip())
    assert "agents" in first_line_of_prose


def test_the_readme_names_why_each_dependency_is_there_and_why_two_are_not():
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~ \[]", d, maxsplit=1)[0] for d in deps}
    section = README.split("## Dependencies", 1)[1].split("\n## ", 1)[0]
    for name in names - {"filelock"}:
        assert name in section, f"the README does not say why {name} is a dependency"
    for absent in ("GitPython", "filelock"):
        assert f"**{absent}**" in section


def test_the_readme_shows_every_agent_profile_and_environment_variable():
    from worker.agents.profile import AgentRun, agent_env
    from worker.agents.registry import builtin_names

    for name in builtin_names():
        assert f"| `{name}` |" in README, name
    p = Path("/x")
    run = AgentRun("p", "W1", p, p, p, p, p, p, 1, 1, ("^a/",), "true", 10)
    names = set(agent_env(run))
    assert names >= {"BOSS_PLAN", "BOSS_WORKER", "BOSS_PROMPT", "BOSS_REPO", "BOSS_PYTHON"}
    for var in names:
        assert f"`{var}`" in README, var


def test_the_readme_shows_every_config_key_and_manifest_field():
    from boss.core.config import _AGENT_KEYS, _TOP_KEYS
    from boss.core.manifest import TOP_KEYS, WORKER_KEYS

    for key in (*_TOP_KEYS, *_AGENT_KEYS, *TOP_KEYS, *WORKER_KEYS):
        assert re.search(rf"\b{key}\b", README), key


def test_filelock_is_not_used_as_the_readme_says():
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in deps if d.lower().startswith("filelock")]
    users = [
        p
        for p in (ROOT / "boss").rglob("*.py")
        if re.search(r"^\s*(from|import) filelock", p.read_text(), re.M)
    ]
    users += [
        p
        for p in (ROOT / "worker").rglob("*.py")
        if re.search(r"^\s*(from|import) filelock", p.read_text(), re.M)
    ]
    assert not users, users
