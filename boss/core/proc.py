"""The one subprocess wrapper: argv runs, and the user's own commands in their own process group."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from boss.core import proctree, reaper, runlog
from boss.core.errors import CommandError

# Stages of stopping a process group: interrupt, terminate, kill (tox's interrupt()).
STOP_STAGES: tuple[tuple[signal.Signals, float], ...] = (
    (signal.SIGINT, 2.0),
    (signal.SIGTERM, 2.0),
    (signal.SIGKILL, 5.0),
)


class Confinement(Protocol):
    """What confines a run (boss.core.sandbox.Confinement): argv wrapped to run inside it."""

    def wrap(self, argv: Sequence[str], env: Mapping[str, str]) -> list[str]: ...


class Child(Protocol):
    """A started run's leader: a subprocess.Popen, or a boss.core.reaper.Spawned."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


@dataclass(frozen=True)
class Result:
    """What an argv run returned."""

    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Outcome:
    """How a command run in its own process group ended."""

    exit_code: int
    elapsed: float
    timed_out: bool = False
    stalled: bool = False
    halted: bool = False  # stopped because its follower said so (run_group's `follow`)

    @property
    def killed_by_signal(self) -> int:
        """The signal number that ended the command (0 when it exited)."""
        if self.exit_code < 0:
            return -self.exit_code
        if self.exit_code > 128 and self.exit_code - 128 in (2, 6, 9, 11, 15):
            return self.exit_code - 128
        return 0


def run(
    argv: list[str],
    *,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    input_text: str | None = None,
    timeout: float | None = None,
    error: type[CommandError] = CommandError,
) -> Result:
    """Run argv to completion with captured output; raise `error` on a non-zero exit if check."""
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            input=input_text,
            stdin=None if input_text is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as e:
        raise error(argv, 127, "", f"{argv[0]}: not found ({e})") from e
    except subprocess.TimeoutExpired as e:
        raise error(argv, 124, "", f"timed out after {timeout}s") from e
    if check and proc.returncode != 0:
        raise error(argv, proc.returncode, proc.stdout, proc.stderr)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def stop_group(proc: Child, sweep: proctree.Sweep | None = None) -> None:
    """Stop a process group in stages (interrupt, terminate, kill) until its leader is gone,
    then every process of the run that left the group (sweep: see boss.core.proctree)."""
    for sig, grace in STOP_STAGES:
        if sweep is not None:
            # First: it gathers the leader's descendants while the leader still has them (a
            # SIGKILL to the group ends the reaper, and its adoptees would go to init).
            sweep.signal(sig)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        break
    _stop_leftovers(proc, sweep)


def _stop_leftovers(proc: Child, sweep: proctree.Sweep | None) -> None:
    """The leader is gone: nothing it left in its group, or elsewhere with its marker, survives."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if sweep is not None:
        sweep.stop()


# How often a running group's timeout and output are checked; its exit is seen at once.
POLL_SECONDS = 0.5


@contextlib.contextmanager
def _exit_waiter(proc: Child, wake: int = -1) -> Iterator[Callable[[float], int | None]]:
    """A function that waits up to N seconds for proc to exit and returns its code, or None.

    A pidfd wakes the wait the moment the process exits, with no polling in between (eight
    workers polling every few milliseconds cost a core a measurable share). Where the kernel
    has no pidfd, it falls back to subprocess's own polling wait.
    """
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = -1

    def wait(seconds: float) -> int | None:
        if pidfd >= 0:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            if wake >= 0:  # a follower's halt wakes the wait too
                poller.register(wake, select.POLLIN)
            if not poller.poll(seconds * 1000):
                return None
        try:
            return proc.wait(timeout=0 if pidfd >= 0 else seconds)
        except subprocess.TimeoutExpired:
            return None

    try:
        yield wait
    finally:
        if pidfd >= 0:
            os.close(pidfd)


def run_group(
    argv: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log_path: Path,
    timeout: float | None = None,
    stall: float | None = None,
    on_start: Callable[[int], None] | None = None,
    owner: str = "boss",
    confine: Confinement | None = None,
    log_cap: int = runlog.DEFAULT_CAP,
    follow: Callable[[bytes], bool] | None = None,
) -> Outcome:
    """Run argv in a new process group, stdin closed, stdout+stderr to log_path.

    The command writes to a pipe; log_path gets at most log_cap bytes of it (boss.core.runlog).

    The group is stopped in stages when it runs past `timeout` seconds, or when its output
    has not grown for `stall` seconds. KeyboardInterrupt (Ctrl-C, or SIGTERM turned into one
    by the caller) stops the group too and is re-raised. However it ends, every process the
    run started is stopped, wherever it went: on Linux argv runs under boss.core.reaper, a
    subreaper that leads the group, adopts every orphan of the command's tree and stops them
    when the command exits; each process also carries `BOSS_RUN_ID=<owner>:<nonce>` in its
    environment (boss.core.proctree), and `proctree.stop_owner(owner)` finds what a killed worker
    left, with the descendants of each process it finds. With `confine`, argv runs inside that
    sandbox (boss.core.sandbox), and its processes die with it. `follow` sees the output as it
    comes (boss.core.runlog.Pump); when it returns True the group is stopped at once (`halted`).
    """
    if confine is not None:
        argv = confine.wrap(argv, env)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    marker = proctree.new_marker(owner)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        read_fd, write_fd = runlog.pipe()
    except BaseException:
        os.close(log_fd)
        raise
    wake_r, wake_w = os.pipe() if follow is not None else (-1, -1)
    pump = runlog.Pump(read_fd, log_fd, log_cap, follow, wake_w)
    try:
        try:
            run_env = {**env, proctree.MARKER: marker}
            if reaper.supported():
                name = proctree.reaper_name(owner)
                proc: Child = reaper.spawn(
                    argv, cwd=str(cwd), env=run_env, output=write_fd, name=name, hold=read_fd
                )
            else:
                proc = subprocess.Popen(
                    argv, cwd=cwd, env=run_env, stdin=subprocess.DEVNULL, stdout=write_fd,
                    stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
        except OSError as e:
            # As a shell would say it: 126 found but not executable, 127 not found.
            os.write(write_fd, f"{argv[0]}: cannot start: {e}\n".encode())
            return Outcome(126 if isinstance(e, PermissionError) else 127, time.monotonic() - start)
        finally:
            os.close(write_fd)  # the command holds it now: the pipe ends when the run's tree does
        outcome = _watch(proc, marker, pump, start, timeout, stall, on_start, wake_r)
    finally:
        try:
            pump.close()
        finally:
            os.close(log_fd)
            for fd in (wake_r, wake_w):
                if fd >= 0:
                    os.close(fd)
    return outcome


def _watch(
    proc: Child,
    marker: str,
    pump: runlog.Pump,
    start: float,
    timeout: float | None,
    stall: float | None,
    on_start: Callable[[int], None] | None,
    wake: int = -1,
) -> Outcome:
    """Wait for a started run to end, stopping it on timeout, stall, halt or Ctrl-C (see run_group)."""
    timed_out = stalled = halted = False
    last_seen, last_growth = 0, start
    sweep = proctree.Sweep(marker, proc.pid)
    try:
        if on_start is not None:
            on_start(proc.pid)
        with _exit_waiter(proc, wake) as wait_exit:
            while True:
                now = time.monotonic()
                tick = POLL_SECONDS if stall is None else min(POLL_SECONDS, stall / 2)
                if timeout is not None:
                    tick = min(tick, max(start + timeout - now, 0.0))
                code = wait_exit(tick)
                if code is not None:
                    break
                now = time.monotonic()
                if pump.halted:
                    halted = True
                elif timeout is not None and now - start >= timeout:
                    timed_out = True
                elif stall is not None:
                    # Output counted as it comes, not the log's size: a capped log stops growing.
                    seen = pump.seen
                    if seen != last_seen:
                        last_seen, last_growth = seen, now
                    elif now - last_growth > stall:
                        stalled = True
                if timed_out or stalled or halted:
                    stop_group(proc, sweep)
                    code = proc.returncode if proc.returncode is not None else -9
                    break
        # Children the command left behind, in its group or out of it, die with it. A reaper
        # that exited by itself stopped them already (code < 0: it was killed, maybe before).
        if not (reaper.supported() and code >= 0 and not (timed_out or stalled or halted)):
            _stop_leftovers(proc, sweep)
    except BaseException:
        _stop_despite_signals(proc, sweep)
        raise
    return Outcome(code, time.monotonic() - start, timed_out, stalled, halted)


HELD_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
_T = TypeVar("_T")


def _retrying(call: Callable[[], _T]) -> _T:
    """call(), again whenever a pending Ctrl-C/SIGTERM handler raises out of it (it is the one
    being handled: only a path that is already stopping holds signals)."""
    while True:
        try:
            return call()
        except KeyboardInterrupt:
            continue


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait (blocked in this thread) until the block ends.

    For a critical step of stopping: a second signal (Ctrl-C, and the pool's SIGTERM right
    behind it) must not cut it short. Python runs a handler that was already pending when the
    mask changes, so that raise is absorbed and the block still goes up. Other threads must
    block these signals themselves (the worker's heartbeat does), or the kernel delivers them
    there. When the block ends, a signal that came meanwhile takes effect.
    """
    before = _retrying(lambda: signal.pthread_sigmask(signal.SIG_BLOCK, ()))
    held = HELD_SIGNALS - before
    _retrying(lambda: signal.pthread_sigmask(signal.SIG_BLOCK, held))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


def _stop_despite_signals(proc: Child, sweep: proctree.Sweep) -> None:
    """stop_group that a second Ctrl-C or SIGTERM cannot cut short and leave the group running."""
    with signals_held():
        stop_group(proc, sweep)


def run_shell(
    command: str,
    *,
    cwd: Path,
    env: Mapping[str, str],
    log_path: Path,
    timeout: float | None = None,
    stall: float | None = None,
    on_start: Callable[[int], None] | None = None,
    owner: str = "boss",
    confine: Confinement | None = None,
    log_cap: int = runlog.DEFAULT_CAP,
) -> Outcome:
    """Run the user's own command string with bash, the one place a shell string is run."""
    return run_group(
        ["bash", "-c", command],
        cwd=cwd,
        env=env,
        log_path=log_path,
        timeout=timeout,
        stall=stall,
        on_start=on_start,
        owner=owner,
        confine=confine,
        log_cap=log_cap,
    )


def stop_left_by(owner: str) -> list[int]:
    """Stop every process a crashed run of owner left (found by its marker); the pids stopped."""
    return proctree.stop_owner(owner)


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists (and is not a zombie we can see)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError, IndexError):
        if stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True
