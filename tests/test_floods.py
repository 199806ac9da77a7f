"""Floods: a command that prints gigabytes leaves a capped log and the worker's memory flat."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time

from conftest import git, make_repo
from worker_helpers import make_plan, worker

from boss.core import proc, runlog
from boss.core import status as st
from boss.core.config import load_config

FLOOD = 300_000_000
MEASURE = """
import json, os, resource, sys, time
from pathlib import Path
from boss.core import proc
start = time.monotonic()
out = proc.run_shell(sys.argv[1], cwd=Path.cwd(), env=os.environ, log_path=Path(sys.argv[2]))
print(json.dumps({
    "exit": out.exit_code,
    "elapsed": time.monotonic() - start,
    "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
}))
"""


def measured(tmp_path, command: str) -> dict:
    """Run command through run_shell in a fresh interpreter; its exit, time and peak RSS."""
    log = tmp_path / "flood.log"
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, command, str(log)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_a_300_mb_flood_leaves_a_capped_log_and_flat_memory(tmp_path):
    baseline = measured(tmp_path, "echo hi")
    flood = measured(tmp_path, f"yes | head -c {FLOOD}; echo THE-END")
    log = tmp_path / "flood.log"
    size = log.stat().st_size
    assert runlog.DEFAULT_CAP - 1000 < size <= runlog.DEFAULT_CAP + 200
    # The peak of the process that ran it grows by the tail it keeps, not by the output.
    assert flood["maxrss_kb"] - baseline["maxrss_kb"] < 20_000, (baseline, flood)
    assert flood["exit"] == 0 and flood["elapsed"] < 30
    with log.open("rb") as f:
        f.seek(size - runlog.TAIL_MAX - 200)
        end = f.read()
    dropped = FLOOD + len("THE-END\n") - runlog.DEFAULT_CAP
    assert runlog.capped_line(runlog.DEFAULT_CAP, dropped) in end
    assert end.endswith(b"y\ny\nTHE-END\n")  # the tail, where a test's verdict is, is kept


def test_head_line_and_tail_of_a_capped_log(tmp_path):
    log = tmp_path / "log"
    script = "for i in $(seq 1 2000); do echo line-$i; done"
    out = proc.run_shell(script, cwd=tmp_path, env=os.environ, log_path=log, log_cap=4000)
    assert out.exit_code == 0
    text = log.read_text()
    assert text.startswith("line-1\nline-2\n")
    assert text.endswith("line-1999\nline-2000\n")
    total = sum(len(f"line-{i}\n") for i in range(1, 2001))
    assert f"[boss] output capped at {4000 / runlog.MB:g} MB: {total - 4000} bytes dropped\n" in text
    assert len(text) < 4000 + 100


def test_output_under_the_cap_is_kept_whole_and_unmarked(tmp_path):
    log = tmp_path / "log"
    out = proc.run_shell(
        "printf 'a\\0b'; echo; exit 4", cwd=tmp_path, env=os.environ, log_path=log, log_cap=100
    )
    assert out.exit_code == 4
    assert log.read_bytes() == b"a\0b\n"


def test_a_flood_past_the_cap_is_output_not_a_stall(tmp_path):
    log = tmp_path / "log"
    script = "for i in $(seq 1 30); do head -c 100000 /dev/zero; sleep 0.05; done; echo done"
    out = proc.run_shell(script, cwd=tmp_path, env=os.environ, log_path=log, stall=1.0, log_cap=10_000)
    assert not out.stalled and out.exit_code == 0
    assert log.read_bytes().endswith(b"done\n")
    quiet = proc.run_shell("head -c 100000 /dev/zero; sleep 30", cwd=tmp_path, env=os.environ, log_path=log,
                           stall=0.5, log_cap=10_000)  # fmt: skip
    assert quiet.stalled
    assert b"[boss] output capped" in log.read_bytes()


def test_a_grandchild_that_floods_after_the_command_exits_is_stopped(tmp_path):
    log = tmp_path / "log"
    start = time.monotonic()
    out = proc.run_shell("(setsid yes > /dev/stdout &) ; echo started", cwd=tmp_path, env=os.environ,
                         log_path=log, log_cap=1000)  # fmt: skip
    assert out.exit_code == 0 and time.monotonic() - start < 15
    assert log.stat().st_size < 1200


def test_the_reader_reads_head_and_tail_of_a_long_log(tmp_path):
    log = tmp_path / "log"
    log.write_bytes(b"HEAD\n" + b"x" * 20_000_000 + b"\nTAIL\n")
    text = runlog.read(log, head=1000, tail=1000)
    assert text.startswith("HEAD\n") and text.endswith("\nTAIL\n")
    assert f"[boss] {20_000_011 - 2000} bytes of this log not read" in text
    assert len(text) < 2100
    assert runlog.read(tmp_path / "missing") == ""
    (tmp_path / "bad").write_bytes(b"\xff\xfeok")
    assert runlog.read(tmp_path / "bad") == "\ufffd\ufffdok"


def test_a_worker_whose_agent_and_test_flood_stays_flat(tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "repo", {"src/a.py": "x = 1\n", "README.md": "r\n"})
    monkeypatch.chdir(repo)
    (repo / ".boss").mkdir()
    (repo / ".boss/config.yaml").write_text("log_cap_mb: 20\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "config")
    flood = f"yes | head -c {FLOOD}"
    w = worker(
        "W1",
        test=f"{flood}; test -f src/done.txt",
        steps=[{"run": flood, "write": {"src/done.txt": "x"}}],
    )
    paths, _ = make_plan(repo, [w])
    assert load_config(repo).log_cap == 20 * runlog.MB
    wrapper = (
        "import resource, subprocess, sys\n"
        "code = subprocess.run([sys.executable, '-m', 'worker', 'run', sys.argv[1], 'W1']).returncode\n"
        "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", wrapper, paths.plan], capture_output=True, text=True, check=True
    )
    code, maxrss_kb = map(int, done.stdout.split())
    assert code == 0, done.stderr
    assert time.monotonic() - start < 120
    assert st.read(paths.status("W1")).state == st.SUCCESS
    # Reading a 300 MB log whole would have taken 300 MB or more.
    assert maxrss_kb < 120_000
    attempts = paths.attempts("W1")
    for log in (attempts / "s1i1" / "agent.log", attempts / "red" / "test.log"):
        assert log.stat().st_size <= 20 * runlog.MB + 200
        assert b"[boss] output capped at 20 MB" in log.read_bytes()[-runlog.TAIL_MAX - 200 :]


def test_a_writer_that_outlives_the_run_does_not_hold_the_worker(tmp_path):
    read_fd, write_fd = runlog.pipe()
    log_fd = os.open(tmp_path / "log", os.O_WRONLY | os.O_CREAT, 0o644)
    pump = runlog.Pump(read_fd, log_fd, 10_000)
    stop = threading.Event()

    def flood() -> None:
        with contextlib.suppress(OSError):  # the read end closes under it: EPIPE
            while not stop.is_set():
                os.write(write_fd, b"x" * 4096)

    writer = threading.Thread(target=flood, daemon=True)
    writer.start()
    time.sleep(0.2)
    start = time.monotonic()
    pump.close(timeout=0.5)
    assert time.monotonic() - start < 3
    stop.set()
    os.close(log_fd)
    with contextlib.suppress(OSError):
        os.close(write_fd)  # the writer sees EPIPE or finishes its last write
    writer.join(5)
    assert b"[boss] output capped" in (tmp_path / "log").read_bytes()
