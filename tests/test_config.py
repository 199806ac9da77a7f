"""`.boss/config.yaml`, YAML I/O and the status view."""

from __future__ import annotations

from dataclasses import replace

import pytest

from boss.core import yamlio
from boss.core.config import load_config
from boss.core.errors import ConfigError, InputError
from boss.core.statusview import MAX_BRANCH, Columns, Row, counts, duration, format_row, header


def write_config(repo, text):
    (repo / ".boss").mkdir(exist_ok=True)
    (repo / ".boss/config.yaml").write_text(text)


def test_defaults_without_a_file(tmp_path):
    c = load_config(tmp_path)
    assert c.agents == {} and c.worktree_root == ".worktrees" and c.effective_jobs >= 2


def test_a_full_config(tmp_path):
    write_config(
        tmp_path,
        "jobs: 3\nworktree_root: ../trees\nplanner_timeout: 60\nheartbeat_stale: 30\n"
        "agents:\n  short: my-agent --go\n  long:\n    command: run it\n    read_only_command: plan it\n"
        "    env: {A: 1}\n    description: mine\n",
    )
    c = load_config(tmp_path)
    assert c.effective_jobs == 3 and c.worktree_root == "../trees" and c.heartbeat_stale == 30
    assert c.agents["short"].command == "my-agent --go"
    assert c.agents["long"].env == {"A": "1"} and c.agents["long"].read_only_command == "plan it"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("colour: red\n", "field colour: unknown key"),
        ("- a list\n", "top level: must be a mapping"),
        ("jobs: -1\n", "field jobs"),
        ("jobs: true\n", "field jobs"),
        ("agents: [a]\n", "field agents"),
        ("agents:\n  x: 3\n", "agent x: must be a mapping"),
        ("agents:\n  x: {cmd: y}\n", "agent x: field cmd: unknown key"),
        ("agents:\n  x: {command: ''}\n", "agent x: field command"),
        ("agents:\n  x: {command: y, env: [1]}\n", "agent x: field env"),
        (
            "agents:\n  x: {command: y, env: {A: [1, 2]}}\n",
            "agent x: field env.A: must be a string or a number",
        ),
        ("agents:\n  x: {command: y, env: {A: yes}}\n", "agent x: field env.A: must be a string or a number"),
        ("worktree_root: ''\n", "field worktree_root"),
        ("jobs: [\n", "invalid YAML"),
    ],
)
def test_bad_config_names_the_file_and_field(tmp_path, text, where):
    write_config(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_config(tmp_path)
    assert where in str(info.value) and "config.yaml" in str(info.value)
    assert isinstance(info.value, ConfigError) or "invalid YAML" in where


def test_yaml_helpers(tmp_path):
    text = yamlio.dump({"a": "one\ntwo\n", "b": [1, 2]})
    assert "a: |" in text
    assert yamlio.load(text, "x") == {"a": "one\ntwo\n", "b": [1, 2]}
    with pytest.raises(InputError, match="cannot read"):
        yamlio.load_file(tmp_path / "absent.yaml")
    path = tmp_path / "deep" / "f.txt"
    yamlio.write_atomic(path, "hello")
    assert path.read_text() == "hello"
    assert [p.name for p in path.parent.iterdir()] == ["f.txt"]


def test_status_view_formatting():
    row = Row("W1", "RUNNING", 1, 2, 75.0, "feat/w1", "test: fail exit=1 " + "x" * 200, "", {})
    line = format_row(row, 80)
    assert line.startswith("W1") and "s1/i2" in line and "1m15s" in line and line.endswith("…")
    assert "\x1b[" in format_row(row, 80, color=True)
    assert header().startswith("WORKER")
    assert duration(5) == "5s" and duration(3 * 3600 + 120) == "3h02m"
    idle = Row("W2", "PENDING", 0, 0, 0, "b", "", "", {})
    assert format_row(idle, 80).split()[2] == "-"
    assert counts([row, idle, row]) == "2 RUNNING, 1 PENDING"
    waiting = replace(row, waiting_until="2026-12-05T07:42:10Z")  # its provider's rate limit
    done = Row("W3", "SUCCESS", 1, 1, 9.0, "c", "", "", {})
    assert counts([row, waiting, idle]) == "2 RUNNING (1 waiting for a rate limit), 1 PENDING"
    assert counts([done, waiting]) == "1 SUCCESS, 1 RUNNING (1 waiting for a rate limit)"
    slot = replace(row, waiting_for="codex")  # waiting for a slot of its provider (boss.core.limiter)
    assert counts([slot, idle]) == "1 RUNNING (1 waiting for a provider slot), 1 PENDING"
    both = "1 SUCCESS, 3 RUNNING (1 waiting for a rate limit, 2 waiting for a provider slot)"
    assert counts([done, waiting, slot, slot]) == both


def test_status_columns_fit_long_ids_and_branches():
    long = Row("LongWorkerId_42", "SUCCESS", 1, 1, 3.0, "feat/" + "b" * 60, "end: SUCCESS", "", {})
    short = Row("W2", "PENDING", 0, 0, 0, "feat/w2-x", "", "", {})
    cols = Columns.fit([long, short])
    assert cols == Columns(15, MAX_BRANCH)
    lines = [header(cols), format_row(long, 200, cols=cols), format_row(short, 200, cols=cols)]
    starts = {line.index(word) for line, word in zip(lines, ["STATE", "SUCCESS", "PENDING"], strict=True)}
    assert len(starts) == 1  # the state column is aligned
    assert "feat/" + "b" * (MAX_BRANCH - 6) + "…" in lines[1]
    assert lines[1].endswith(" end: SUCCESS") and lines[0].index("LAST EVENT") == lines[1].index(
        "end: SUCCESS"
    )
