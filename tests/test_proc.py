"""boss.core.proc and boss.core.lock: argv runs, process groups, timeouts, stalls, locks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from boss.core import proc, reaper
from boss.core.errors import CommandError
from boss.core.lock import LockBusy, locked


def test_run_captures_and_raises_with_command_code_and_output():
    assert proc.run([sys.executable, "-c", "print('hi')"]).stdout == "hi\n"
    with pytest.raises(CommandError) as info:
        proc.run([sys.executable, "-c", "import sys; print('out'); sys.exit('boom')"])
    message = str(info.value)
    assert "exit 1" in message and "boom" in message and "out" in message
    assert proc.run(["false"], check=False).returncode == 1


def test_run_reports_a_missing_program_and_a_timeout():
    with pytest.raises(CommandError, match="not found"):
        proc.run(["no-such-program-xyz"])
    with pytest.raises(CommandError, match="timed out"):
        proc.run(["sleep", "5"], timeout=0.2)


def test_run_group_timeout_stops_the_whole_group(tmp_path):
    pidfile = tmp_path / "child.pid"
    script = f"sleep 30 & echo $! > {pidfile}; wait"
    start = time.monotonic()
    out = proc.run_shell(script, cwd=tmp_path, env=os.environ, log_path=tmp_path / "log", timeout=0.5)
    assert out.timed_out and time.monotonic() - start < 10
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 3
    while proc.pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not proc.pid_alive(child)


def test_run_group_stall_detection(tmp_path):
    script = "echo started; sleep 30"
    out = proc.run_shell(script, cwd=tmp_path, env=os.environ, log_path=tmp_path / "log", stall=0.5)
    assert out.stalled and not out.timed_out
    assert "started" in (tmp_path / "log").read_text()


def test_run_group_exit_codes_stdin_and_signal(tmp_path):
    log = tmp_path / "log"
    out = proc.run_shell("read x; echo got=$?; exit 3", cwd=tmp_path, env=os.environ, log_path=log)
    assert out.exit_code == 3 and "got=1" in log.read_text()  # stdin is closed
    out = proc.run_shell("kill -9 $$", cwd=tmp_path, env=os.environ, log_path=log)
    assert out.killed_by_signal == 9
    missing = proc.run_group(["/no/such/binary"], cwd=tmp_path, env=os.environ, log_path=log)
    assert missing.exit_code == 127 and "cannot start" in log.read_text()
    (tmp_path / "plain.txt").write_text("not a program\n")
    denied = proc.run_group([str(tmp_path / "plain.txt")], cwd=tmp_path, env=os.environ, log_path=log)
    assert denied.exit_code == 126 and "cannot start" in log.read_text()
    started: list[int] = []
    proc.run_shell("true", cwd=tmp_path, env=os.environ, log_path=log, on_start=started.append)
    assert started and started[0] > 0


def test_stop_left_by_and_pid_alive():
    assert proc.stop_left_by("wNOBODY") == []
    assert proc.pid_alive(os.getpid())
    assert not proc.pid_alive(0)


DAEMON = """
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        open(sys.argv[1], "w").write(str(os.getpid()))
        time.sleep(60)
    os._exit(0)
time.sleep(60)
"""


@pytest.mark.parametrize("how", ["stall", "timeout"])
def test_run_group_stops_a_daemon_that_left_the_group(tmp_path, how):
    from worker_helpers import kill_tagged

    pidfile = tmp_path / "daemon.pid"
    limit = {"stall": 0.6} if how == "stall" else {"timeout": 0.6}
    try:
        out = proc.run_group([sys.executable, "-c", DAEMON, str(pidfile)], cwd=tmp_path, env=os.environ,
                             log_path=tmp_path / "log", **limit)  # fmt: skip
        assert out.stalled if how == "stall" else out.timed_out
        daemon = int(pidfile.read_text())
        deadline = time.monotonic() + 3
        while proc.pid_alive(daemon) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not proc.pid_alive(daemon)
    finally:
        kill_tagged()


def test_lock_excludes_and_times_out(tmp_path):
    lock = tmp_path / "x.lock"
    with locked(lock, 1, "busy"), pytest.raises(LockBusy, match="busy"), locked(lock, 0.1, "busy"):
        pass
    with locked(lock, 0, "busy"):  # released after the block
        pass


def test_shared_holders_exclude_only_an_exclusive_one(tmp_path):
    lock = tmp_path / "s.lock"
    with (
        locked(lock, 0, "busy", shared=True),
        locked(lock, 0, "busy", shared=True),
        pytest.raises(LockBusy),
        locked(lock, 0.05, "busy"),
    ):
        pass


def test_run_group_waits_on_a_pidfd_and_sees_the_exit_at_once(tmp_path, monkeypatch):
    # The timeout and stall checks run every POLL_SECONDS; the exit must not wait for one, and
    # the wait is the kernel's (a pidfd), not a polling loop of short sleeps.
    opened: list[int] = []
    real = os.pidfd_open

    def spy(pid: int, flags: int = 0) -> int:
        opened.append(pid)
        return real(pid, flags)

    monkeypatch.setattr(os, "pidfd_open", spy)
    monkeypatch.setattr(time, "sleep", lambda s: pytest.fail(f"polled with sleep({s})"))
    # A long poll interval: an exit seen only at the next poll would take 10 s; a loaded machine
    # (tests beside this one) may take a second to start bash and sleep, never ten.
    monkeypatch.setattr(proc, "POLL_SECONDS", 10.0)
    out = proc.run_shell(
        "sleep 0.2; exit 4", cwd=tmp_path, env=os.environ, log_path=tmp_path / "log", timeout=60
    )
    assert out.exit_code == 4 and out.elapsed < proc.POLL_SECONDS
    assert len(opened) == 1


def test_run_group_without_pidfd_still_waits_times_out_and_stalls(tmp_path, monkeypatch):
    # An old kernel (before Linux 5.3) has no pidfd: subprocess's own wait does the job.
    def no_pidfd(pid: int) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    log = tmp_path / "log"
    assert proc.run_shell("exit 5", cwd=tmp_path, env=os.environ, log_path=log).exit_code == 5
    assert proc.run_shell("sleep 30", cwd=tmp_path, env=os.environ, log_path=log, timeout=0.3).timed_out
    stalled = proc.run_shell("echo x; sleep 30", cwd=tmp_path, env=os.environ, log_path=log, stall=0.3)
    assert stalled.stalled and not stalled.timed_out


def test_run_group_exit_codes_and_messages_are_the_commands(tmp_path):
    log = tmp_path / "log"

    def run(*argv: str) -> proc.Outcome:
        return proc.run_group(list(argv), cwd=tmp_path, env=os.environ, log_path=log)

    assert run("true").exit_code == 0
    assert run("bash", "-c", "exit 3").exit_code == 3
    assert run("bash", "-c", "kill -TERM $$").killed_by_signal == signal.SIGTERM
    assert run("bash", "-c", "kill -KILL $$").exit_code == -signal.SIGKILL
    assert run("/no/such/binary").exit_code == 127
    assert log.read_text() == (
        "/no/such/binary: cannot start: [Errno 2] No such file or directory: '/no/such/binary'\n"
    )
    (tmp_path / "plain.txt").write_text("not a program\n")
    assert run(str(tmp_path / "plain.txt")).exit_code == 126
    assert (
        log.read_text()
        == f"{tmp_path}/plain.txt: cannot start: [Errno 13] Permission denied: '{tmp_path}/plain.txt'\n"
    )


@pytest.mark.skipif(not reaper.supported(), reason="needs a subreaper")
def test_the_command_runs_under_the_reaper_as_it_would_alone(tmp_path):
    log = tmp_path / "log"
    leaders: list[int] = []
    script = "cat /proc/$PPID/comm; echo ctype=${LC_CTYPE-unset}; yes | head -1 >/dev/null; echo pipe=${PIPESTATUS[0]}"
    env = {k: v for k, v in os.environ.items() if k != "LC_CTYPE"}
    proc.run_group(["bash", "-c", script], cwd=tmp_path, env=env, log_path=log, on_start=leaders.append)
    parent, ctype, pipe = log.read_text().splitlines()
    assert parent.startswith("boss-")  # the reaper leads the group: on_start shows its pid
    assert ctype == "ctype=unset"  # not the C.UTF-8 Python coerces a C locale to
    assert pipe == "pipe=141"  # SIGPIPE is the default again, as subprocess leaves it
    proc.run_group(["bash", "-c", "echo $LC_CTYPE"], cwd=tmp_path, env={**env, "LC_CTYPE": "C"}, log_path=log)
    assert log.read_text() == "C\n"
    assert leaders and leaders[0] > 0


def test_without_a_subreaper_the_command_leads_its_group(tmp_path, monkeypatch):
    monkeypatch.setattr(reaper, "supported", lambda: False)
    log = tmp_path / "log"
    assert proc.run_shell("exit 3", cwd=tmp_path, env=os.environ, log_path=log).exit_code == 3
    assert proc.run_group(["/no/such/binary"], cwd=tmp_path, env=os.environ, log_path=log).exit_code == 127
    assert "cannot start" in log.read_text()


# The reaper's main(), imported (so coverage sees it), as `python -I -S reaper.py` runs it.
MAIN = "import sys; from boss.core import reaper; reaper.main(sys.argv[1:])"


@pytest.mark.skipif(not reaper.supported(), reason="needs a subreaper")
def test_reaper_main_exits_as_the_command_and_stops_what_it_left(tmp_path):
    pidfile = tmp_path / "pid"

    def main(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", MAIN, *args], capture_output=True, text=True, timeout=30)

    left = f"setsid bash -c 'trap \"\" TERM; echo $$ > {pidfile}; while :; do sleep 0.1; done' & "
    script = left + f"while [ ! -s {pidfile} ]; do sleep 0.02; done; exit 4"
    assert main("-", "bash", "-c", script).returncode == 4
    stubborn = int(pidfile.read_text())  # it ignored SIGTERM: SIGKILL after the grace
    assert not proc.pid_alive(stubborn)
    assert main("LC_CTYPE=C", "bash", "-c", "kill -TERM $$").returncode == -signal.SIGTERM
    missing = main("-", "/no/such/binary")
    assert missing.returncode == 127 and "/no/such/binary: cannot start:" in missing.stderr
