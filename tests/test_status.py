"""status.json: schema, atomic writes, unknown fields, and the CRASHED rule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from boss.core import status as st
from boss.core.errors import InputError


def test_write_read_round_trip_and_version_first(tmp_path):
    path = tmp_path / "W1" / "status.json"
    s = st.Status(plan="p", id="W1", state=st.SUCCESS, usage={"cost_usd": 0.5}, violations=["a"])
    st.write(path, s)
    assert st.read(path) == s
    assert next(iter(json.loads(path.read_text()))) == "version"
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_the_file_is_one_field_a_line_and_keeps_any_text(tmp_path):
    path = tmp_path / "status.json"
    reason = 'a "quoted" reason: naïve \\ path\nsecond line'
    s = st.Status(plan="p", id="W1", reason=reason, red={"exit_code": 1, "log": "é.log"}, violations=["x,y"])
    st.write(path, s)
    assert st.read(path) == s
    lines = path.read_text().splitlines()
    assert lines[0] == "{" and lines[-1] == "}" and len(lines) == len(json.loads(path.read_text())) + 2
    assert '  "red": {"exit_code": 1, "log": "é.log"},' in lines


def test_unknown_fields_are_ignored_and_hand_edits_are_named(tmp_path):
    path = tmp_path / "status.json"
    path.write_text(json.dumps({"plan": "p", "id": "W1", "state": "FAILED", "from_the_future": 1}))
    assert st.read(path).state == "FAILED"
    assert st.read(tmp_path / "absent.json") is None
    for text, problem in [
        ("{not json", "not valid JSON"),
        ("[]", "not a status object"),
        (json.dumps({"plan": "p", "id": "W1", "pid": "abc"}), "field pid: 'abc' is not a whole number"),
        (json.dumps({"plan": "p", "id": "W1", "iteration": True}), "field iteration"),
    ]:
        path.write_text(text)
        with pytest.raises(InputError, match=problem) as info:
            st.read(path)
        assert str(path) in str(info.value) and "delete it" in str(info.value)


def test_running_with_a_dead_process_reads_crashed():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    s = st.Status(plan="p", id="W1", state=st.RUNNING, pid=dead.pid, heartbeat=st.now_iso())
    assert st.effective_state(s, 120) == st.CRASHED


def test_running_with_a_stale_heartbeat_reads_crashed():
    old = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    s = st.Status(plan="p", id="W1", state=st.RUNNING, pid=os.getpid(), heartbeat=old)
    assert st.effective_state(s, 120) == st.CRASHED
    fresh = s.evolve(heartbeat=st.now_iso())
    assert st.effective_state(fresh, 120) == st.RUNNING


def test_final_and_missing_states_read_as_they_are():
    assert st.effective_state(None, 120) == st.PENDING
    for state in st.FINAL:
        assert st.effective_state(st.Status(plan="p", id="W1", state=state), 1) == state
    assert st.parse_iso("garbage") is None
