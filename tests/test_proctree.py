"""boss.core.proctree: every process a run started is found and stopped, wherever it went."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from worker_helpers import kill_tagged

from boss.core import proc, proctree, reaper

pytestmark = pytest.mark.skipif(not proctree.supported(), reason="needs /proc")


@pytest.fixture(autouse=True)
def kill_what_the_test_left():
    yield
    kill_tagged()


def gone(pid: int, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while proc.pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not proc.pid_alive(pid)


def wait_for_file(path: Path, within: float = 10.0) -> int:
    deadline = time.monotonic() + within
    while not (path.exists() and path.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return int(path.read_text().split()[0])


def shell(tmp_path: Path, script: str, **kw) -> proc.Outcome:
    return proc.run_shell(script, cwd=tmp_path, env=os.environ, log_path=tmp_path / "log", **kw)


# A child in a new session (as Claude Code, Gemini CLI and OpenCode run commands), a daemon
# that double-forked to init, and a child in a new session that ignores SIGTERM.
ESCAPES = {
    "setsid": "setsid sleep 60 & echo $! > {pid}",
    "double fork": "(setsid bash -c 'sleep 60 & echo $! > {pid}' &) ",
    "ignores SIGTERM": "setsid bash -c 'trap \"\" TERM; echo $$ > {pid}; while :; do sleep 0.1; done' &",
}


@pytest.mark.parametrize("escape", sorted(ESCAPES))
def test_a_timeout_stops_what_left_the_group(tmp_path, escape):
    pidfile = tmp_path / "pid"
    script = (
        ESCAPES[escape].format(pid=pidfile) + f"\nwhile [ ! -s {pidfile} ]; do sleep 0.02; done; sleep 60"
    )
    out = shell(tmp_path, script, timeout=1.0)
    assert out.timed_out
    assert gone(wait_for_file(pidfile))


@pytest.mark.parametrize("escape", sorted(ESCAPES))
def test_a_run_that_ends_leaves_nothing_behind(tmp_path, escape):
    pidfile = tmp_path / "pid"
    script = ESCAPES[escape].format(pid=pidfile) + f"\nwhile [ ! -s {pidfile} ]; do sleep 0.02; done; exit 0"
    assert shell(tmp_path, script).exit_code == 0
    assert gone(wait_for_file(pidfile))


def test_an_interrupted_run_stops_what_left_the_group(tmp_path):
    pidfile = tmp_path / "pid"
    script = ESCAPES["ignores SIGTERM"].format(pid=pidfile) + "\nsleep 60"

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    try:
        with pytest.raises(KeyboardInterrupt):
            shell(tmp_path, script, timeout=30)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)
    assert gone(wait_for_file(pidfile))


def test_every_child_carries_the_marker_of_its_owner(tmp_path):
    shell(tmp_path, f"echo $BOSS_RUN_ID > {tmp_path / 'id'}", owner="wOWNER")
    owner, nonce = (tmp_path / "id").read_text().strip().split(":")
    assert owner == "wOWNER" and len(nonce) == 16
    assert proctree.owner("repo", "p", "W1") == proctree.owner("repo", "p", "W1")
    assert proctree.owner("repo", "p", "W1") != proctree.owner("repo", "p", "W2")


def spawn(env: dict[str, str], *argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(list(argv or ("sleep", "60")), env=env, start_new_session=True)


def test_stop_owner_stops_only_its_owners_processes():
    plain = {k: v for k, v in os.environ.items() if k != proctree.MARKER}
    mine = [spawn({**plain, proctree.MARKER: f"wMINE:{n}"}) for n in range(2)]
    other = spawn({**plain, proctree.MARKER: "wMINEX:1"})  # an owner that only starts the same
    stranger = spawn(plain)
    try:
        time.sleep(0.2)
        stopped = proctree.stop_owner("wMINE", grace=1)
        assert sorted(p.pid for p in mine) == stopped
        assert all(p.wait(timeout=5) == -signal.SIGTERM for p in mine)
        assert other.poll() is None and stranger.poll() is None
        assert proctree.stop_owner("wMINE") == []
    finally:
        for p in [*mine, other, stranger]:
            p.kill()
            p.wait()


def test_it_never_stops_itself_or_its_ancestors(tmp_path):
    env = {**os.environ, proctree.MARKER: "wSELF:1"}
    sibling = spawn(env)
    code = "from boss.core import proctree; print(proctree.stop_owner('wSELF', grace=1))"
    try:
        # The child and the shell that starts it carry the marker: they are the ones stopping.
        res = subprocess.run(["bash", "-c", f"{sys.executable} -c {code!r}; echo survived"], env=env,
                             capture_output=True, text=True, timeout=30)  # fmt: skip
        assert res.stdout.splitlines() == [f"[{sibling.pid}]", "survived"]
        assert sibling.wait(timeout=5) == -signal.SIGTERM
    finally:
        sibling.kill()
        sibling.wait()


def test_a_recycled_pid_is_not_signalled():
    env = {**os.environ, proctree.MARKER: "wRECYCLE:1"}
    child = spawn(env)
    try:
        sweep = proctree.Sweep("wRECYCLE:")
        [found] = sweep.gather()
        assert found.pid == child.pid
        # the same pid with another start time is another process
        sweep.known = {
            (found.pid, found.start + 1): proctree.Process(found.pid, 0, 0, found.start + 1, False)
        }
        assert [p.pid for p in sweep.gather()] == [child.pid]  # found again by its marker
        proctree._send([proctree.Process(found.pid, 0, 0, found.start + 1, False)], signal.SIGKILL, set())
        assert child.poll() is None
    finally:
        child.kill()
        child.wait()


def test_descendants_walk_the_parent_links():
    procs = {
        p.pid: p
        for p in [
            proctree.Process(10, 1, 10, 0, False),
            proctree.Process(11, 10, 10, 0, False),
            proctree.Process(12, 11, 12, 0, False),
            proctree.Process(13, 11, 13, 0, True),
            proctree.Process(14, 1, 14, 0, False),
        ]
    }
    assert sorted(p.pid for p in proctree.descendants(10, procs)) == [11, 12]


def test_without_proc_a_run_gets_the_group_kill_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(proctree, "PROC", tmp_path / "no-proc")
    assert not proctree.supported()
    assert proctree.stop_owner("wNONE") == []
    pidfile = tmp_path / "pid"
    out = shell(tmp_path, f"sleep 60 & echo $! > {pidfile}; wait", timeout=0.5)
    assert out.timed_out and gone(wait_for_file(pidfile))


def test_a_stop_costs_a_few_milliseconds():
    proctree.Sweep("wCOST:1").stop()
    start = time.perf_counter()
    for _ in range(10):
        proctree.Sweep("wCOST:1").stop()
    per_stop = (time.perf_counter() - start) / 10
    assert per_stop < 0.05, f"{per_stop * 1000:.1f} ms for {len(proctree.table())} processes"


# `setsid -f env -i`: a new session and a cleared environment, so neither the group nor the
# marker (nor conftest's BOSS_TEST_TAG) finds it; only the run's reaper, whose descendant it is.
CLEARED = "setsid -f env -i /bin/sh -c 'echo $$ > {pid}; exec /bin/sleep {arg}'"


def by_argv(*argv: str) -> list[int]:
    """Live processes whose argv is exactly argv."""
    want = "\0".join(argv).encode() + b"\0"
    found = []
    for pid in proctree._pids():
        with contextlib.suppress(OSError):
            if (proctree.PROC / str(pid) / "cmdline").read_bytes() == want and proc.pid_alive(pid):
                found.append(pid)
    return found


@pytest.fixture
def stray():
    """A unique argument for a `sleep` that clears its environment: killed by pid, if it survived."""
    arg = f"1231.{secrets.randbelow(10**6):06d}"
    yield arg
    for pid in by_argv("/bin/sleep", arg):
        os.kill(pid, signal.SIGKILL)


def cleared(tmp_path: Path, arg: str, then: str) -> str:
    pidfile = tmp_path / "pid"
    return CLEARED.format(pid=pidfile, arg=arg) + f"\nwhile [ ! -s {pidfile} ]; do sleep 0.02; done; {then}"


@pytest.mark.parametrize("then", ["exit 0", "exit 3"])
def test_a_run_that_ends_stops_what_cleared_its_environment(tmp_path, stray, then):
    out = shell(tmp_path, cleared(tmp_path, stray, then))
    assert out.exit_code == int(then.split()[1]) and not out.timed_out
    assert gone(wait_for_file(tmp_path / "pid")) and not by_argv("/bin/sleep", stray)


def test_a_timeout_stops_what_cleared_its_environment(tmp_path, stray):
    out = shell(tmp_path, cleared(tmp_path, stray, "sleep 60"), timeout=1.0)
    assert out.timed_out
    assert gone(wait_for_file(tmp_path / "pid")) and not by_argv("/bin/sleep", stray)


def test_an_interrupt_stops_what_cleared_its_environment(tmp_path, stray):
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    try:
        with pytest.raises(KeyboardInterrupt):
            shell(tmp_path, cleared(tmp_path, stray, "sleep 60"), timeout=30)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)
    assert gone(wait_for_file(tmp_path / "pid")) and not by_argv("/bin/sleep", stray)


WORKER = """
import os, sys
from pathlib import Path
from boss.core import proc
proc.run_shell(sys.argv[1], cwd=Path(sys.argv[2]), env=os.environ, log_path=Path(sys.argv[2]) / "log",
               owner=sys.argv[3])
"""


@pytest.mark.skipif(not reaper.supported(), reason="needs a subreaper")
def test_the_rerun_after_kill_9_stops_what_cleared_its_environment(tmp_path, stray):
    owner = proctree.owner(str(tmp_path), "p", "W1")
    script = cleared(tmp_path, stray, "sleep 60")
    worker = subprocess.Popen([sys.executable, "-c", WORKER, script, str(tmp_path), owner])
    try:
        sleeper = wait_for_file(tmp_path / "pid")
        worker.kill()  # the worker dies; its reaper, the shell and the sleep live on
        worker.wait()
        assert proc.pid_alive(sleeper)
        stopped = proc.stop_left_by(owner)
        assert sleeper in stopped
        assert gone(sleeper) and not by_argv("/bin/sleep", stray)
        assert proc.stop_left_by(owner) == []
    finally:
        worker.kill()
        worker.wait()


def test_a_leader_whose_pid_names_another_process_is_not_walked():
    # The run's leader was reaped and its pid reused: the walk must not reach the stranger's tree.
    stranger = subprocess.Popen(["bash", "-c", "sleep 60 & wait"], start_new_session=True)
    try:
        deadline = time.monotonic() + 5
        while not proctree.descendants(stranger.pid, proctree.table()) and time.monotonic() < deadline:
            time.sleep(0.02)
        [child] = proctree.descendants(stranger.pid, proctree.table())
        assert [p.pid for p in proctree.Sweep("wREUSE:1", stranger.pid).gather()] == [child.pid]
        sweep = proctree.Sweep("wREUSE:1", stranger.pid)
        assert sweep.leader is not None
        sweep.leader = dataclasses.replace(sweep.leader, start=sweep.leader.start - 1)
        assert sweep.gather() == [] and sweep.stop(grace=0.1) == []
        assert proc.pid_alive(child.pid) and stranger.poll() is None
    finally:
        os.killpg(stranger.pid, signal.SIGKILL)
        stranger.wait()


def test_stop_owner_stops_the_descendants_of_what_it_finds(stray):
    plain = {k: v for k, v in os.environ.items() if k != proctree.MARKER}
    marked = spawn({**plain, proctree.MARKER: "wTREE:1"}, "bash", "-c", f"env -i /bin/sleep {stray} & wait")
    try:
        deadline = time.monotonic() + 5
        while not by_argv("/bin/sleep", stray) and time.monotonic() < deadline:
            time.sleep(0.02)
        [sleeper] = by_argv("/bin/sleep", stray)
        assert sorted(proctree.stop_owner("wTREE", grace=1)) == sorted([marked.pid, sleeper])
        assert gone(sleeper)
    finally:
        marked.kill()
        marked.wait()
