"""The state log: append-only, parseable, and whole under many concurrent writers."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from boss.core import statelog

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from boss.core import statelog
    log, who, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    for i in range(count):
        statelog.append(log, statelog.Event("2026-11-25T10:00:00Z", "RUNNING", f"{who}.s1.i{i}",
                        "test", "x" * 600 + f" | pipe \\\\ back\\nnew {who}-{i}", f"workers/{who}/a"))
    """
)


def test_dozens_of_concurrent_writers_lose_and_tear_no_line(tmp_path):
    log = tmp_path / "plan" / "log"
    writers, count = 40, 25
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(log), f"W{n}", str(count)])
        for n in range(writers)
    ]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    lines = log.read_text().splitlines()
    assert lines[0] == statelog.HEADER
    assert len(lines) == 1 + writers * count
    events = statelog.read(log)
    assert len(events) == writers * count
    seen = {(e.worker, e.iteration_id) for e in events}
    assert len(seen) == writers * count
    for e in events:
        assert e.result.endswith(f"new {e.worker}-{e.iteration_id.rsplit('i', 1)[1]}")
        assert " | pipe \\ back\n" in e.result


def test_fields_with_separators_round_trip(tmp_path):
    log = tmp_path / "log"
    event = statelog.Event("t", "S", "W1.s1.i1", "act|ion", "a | b\\c\nd", "art")
    statelog.append(log, event)
    assert statelog.read(log) == [event]
    assert log.read_text().count("\n") == 2


def test_worker_of_merge_events_and_malformed_lines(tmp_path):
    assert statelog.Event("t", "S", "merge.W3", "merge", "", "").worker == "W3"
    assert statelog.Event("t", "S", "W3.s1.i2", "agent", "", "").worker == "W3"
    assert statelog.parse("not a log line") is None
    assert statelog.parse("") is None
    assert statelog.read(tmp_path / "missing") == []


def test_a_quoted_command_keeps_its_runs_of_spaces(tmp_path):
    log = tmp_path / "log"
    command = "printf '%s\\n' 'a    b'  |  grep -c '    '"
    event = statelog.Event("t", "RUNNING", "W1.s1.i1", "guard", statelog.excerpt(f"TIER 1: {command}"), "")
    statelog.append(log, event)
    assert statelog.read(log)[0].result == f"TIER 1: {command}"
    assert statelog.excerpt("x" * 200, 20) == "x" * 17 + "..."


def test_read_since_an_earlier_size_gives_only_what_came_after(tmp_path):
    log = tmp_path / "log"
    assert statelog.size(log) == 0
    statelog.append(log, statelog.Event("t", "S", "W1", "a", "first", ""))
    mark = statelog.size(log)
    statelog.append(log, statelog.Event("t", "S", "W1", "b", "second\u2028line", ""))
    assert [e.result for e in statelog.read(log, since=mark)] == ["second\u2028line"]
    assert len(statelog.read(log)) == 2
