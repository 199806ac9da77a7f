"""The `notify` setting: the user's command runs on an approval needed, a worker's end and a
ceremony's end, with the event as JSON on its stdin (never in its command line), and never
blocks or fails the worker."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import boss, make_repo, worker_cmd
from worker_helpers import make_plan, worker

from boss.core import notify
from boss.core.config import load_config
from boss.core.errors import ConfigError

HOSTILE = "rm -rf build && touch PWNED-$(touch PWNED2)"


def configure(repo: Path, command: str) -> None:
    (repo / ".boss").mkdir(exist_ok=True)
    (repo / ".boss" / "config.yaml").write_text(f"notify: {json.dumps(command)}\n")


def received(path: Path, count: int, timeout: float = 30.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count:
            return [json.loads(line) for line in lines]
        time.sleep(0.05)
    raise AssertionError(f"{path}: fewer than {count} events within {timeout}s")


def test_approval_needed_and_worker_ended_reach_the_command_as_json(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"build/out.txt": "old\n", "README.md": "r\n"})
    out = tmp_path / "events.jsonl"
    configure(repo, f"cat >> {out}")
    make_plan(repo, [worker(
        "W1", scope=["^build/"], test="test ! -e build/out.txt", steps=[{"shell": [HOSTILE]}],
        max_iterations=1, max_strategies=1,
    )])  # fmt: skip
    worker_cmd("run", "p", "W1", cwd=repo, check=1, env={"BOSS_APPROVAL_WAIT": ""})
    first, second = received(out, 2)
    assert first["event"] == "approval-needed" and first["plan"] == "p" and first["worker"] == "W1"
    assert first["request"]["command"] == HOSTILE and first["request"]["id"] == "R1"
    assert first["request"]["tier"] == 3 and first["request"]["rule"]
    assert second["event"] == "worker-ended" and second["state"] == "FAILED" and second["worker"] == "W1"
    # The agent's text reached the command on stdin only: nothing of it ran.
    assert not list(repo.glob("PWNED*")) and not list(tmp_path.glob("PWNED*"))
    # The same command asked again: no second approval event (the request is the same one).
    worker_cmd("run", "p", "W1", cwd=repo, check=1, env={"BOSS_APPROVAL_WAIT": ""})
    events = [e["event"] for e in received(out, 3)]
    assert events == ["approval-needed", "worker-ended", "worker-ended"]


def test_a_ceremony_end_is_an_event(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    out = tmp_path / "events.jsonl"
    make_plan(repo, [worker("W1")])
    worker_cmd("run", "p", "W1", cwd=repo)
    configure(repo, f"cat >> {out}")
    boss("merge", "p", cwd=repo)
    [ended] = received(out, 1)
    assert ended["event"] == "ceremony-ended" and ended["number"] == 1 and "1 MERGED" in ended["counts"]
    assert ended["outcome"] == "done"
    assert ended["report"].endswith("REPORT.md")


def test_a_hanging_command_is_stopped_and_never_waited_for(tmp_path: Path, capfd) -> None:
    started = time.monotonic()
    thread = notify.run(
        "sleep 30", notify.event_json("worker-ended", "p", worker="W1"), tmp_path, timeout=0.5
    )
    assert time.monotonic() - started < 0.5
    assert thread is not None
    thread.join(10)
    assert not thread.is_alive()
    assert "boss: notify: 'sleep 30' took more than 0.5s and was stopped" in capfd.readouterr().err


def test_a_failing_command_is_one_line_and_no_failure(tmp_path: Path, capfd) -> None:
    thread = notify.run("echo broken >&2; exit 3", "{}\n", tmp_path)
    assert thread is not None
    thread.join(10)
    assert "boss: notify: 'echo broken >&2; exit 3' exited 3: broken" in capfd.readouterr().err


def test_no_command_no_process_and_a_broken_config_is_not_the_callers_problem(tmp_path: Path, capfd) -> None:
    repo = make_repo(tmp_path / "repo")
    assert notify.emit(repo, notify.WORKER_ENDED, "p", worker="W1") is None
    (repo / ".boss").mkdir()
    (repo / ".boss" / "config.yaml").write_text("notify: [not, a, string]\n")
    assert notify.emit(repo, notify.WORKER_ENDED, "p", worker="W1") is None
    assert "field notify: must be a shell command" in capfd.readouterr().err
    with pytest.raises(ConfigError, match=r"config\.yaml: field notify: must be a shell command"):
        load_config(repo)


def test_long_agent_text_is_cut() -> None:
    event = json.loads(notify.event_json("approval-needed", "p", request={"command": "x" * 100_000}))
    assert len(event["request"]["command"]) == notify.MAX_FIELD + 1


def _whole_json_test(tmp_path: Path, hostile: str) -> None:
    out = tmp_path / "event.json"
    fields = ("command", "reason", "cwd", "rule", "summary")
    payload = notify.event_json("approval-needed", "p", worker="W1", request=dict.fromkeys(fields, hostile))
    thread = notify.run(f"cat > {out}", payload, tmp_path)
    assert thread is not None
    thread.join(10)
    assert out.stat().st_size <= notify.MAX_PAYLOAD
    event = json.loads(out.read_text())
    command = event["request"]["command"]
    assert event["event"] == "approval-needed" and event["worker"] == "W1"
    assert command.endswith("…") and hostile.startswith(command[:-1]) and len(command) > 1000


@pytest.mark.parametrize("hostile", [
    ('"\x01\u2028𝄞' * 2500)[:10_000],  # escapes and multi-byte characters
    ('"\x01\u2028𝄞\ud800' * 2000)[:10_000],  # and a lone surrogate
])  # fmt: skip
def test_hostile_long_text_reaches_the_command_as_whole_json(tmp_path: Path, hostile: str) -> None:
    """Fields each cut at MAX_FIELD characters can still exceed MAX_PAYLOAD bytes once encoded
    (escapes, several fields): the strings are cut shorter, never the JSON."""
    _whole_json_test(tmp_path, hostile)


def test_an_interrupted_ceremony_end_is_an_event_too(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    repo = make_repo(tmp_path / "repo")
    out = tmp_path / "events.jsonl"
    make_plan(repo, [worker("W1")], integration_test="sleep 60")
    worker_cmd("run", "p", "W1", cwd=repo)
    configure(repo, f"cat >> {out}")
    merge = subprocess.Popen([sys.executable, "-m", "boss", "merge", "p"], cwd=repo, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    assert merge.stdout is not None
    for line in merge.stdout:
        if "baseline: running" in line:
            break
    time.sleep(0.5)
    merge.send_signal(signal.SIGINT)  # Ctrl-C
    assert merge.wait(60) == 130
    [ended] = received(out, 1)
    assert ended["event"] == "ceremony-ended" and ended["number"] == 1, ended
    assert (ended["outcome"], ended["step"]) == ("interrupted", "baseline"), ended
