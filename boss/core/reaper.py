"""The leader of every command run_group starts: a subreaper that stops what the command left.

It marks itself PR_SET_CHILD_SUBREAPER, forks and execs the command in its own process group,
and waits. Every orphan of the command's tree (a child in a new session, a double fork, one
that cleared its environment with `env -i`) is reparented to it, not to init, so it stays a
descendant of the run's leader for as long as the leader lives; this process reaps them as they
exit. When the command has exited, it stops every descendant left (SIGTERM, a short grace,
SIGKILL, with the groups they lead), reaps them and exits as the command did: its exit code, or
the same signal raised on itself, so Popen's returncode is what the command's would have been.

Being a process of its own is the point: a subreaper must reap with waitpid(-1), which in the
worker would also reap the children subprocess.Popen waits for. Here every child is the
command or one of its orphans.

SIGINT, SIGTERM and SIGHUP get a handler that does nothing, installed after the fork in this
process only (a handler, unlike SIG_IGN, is reset by exec): the group signals of run_group's
staged stop reach the command, and this process stays to clean up after it.

run_group starts it with spawn(): forked from the worker, not a new interpreter (12 ms less
per run; a worker iteration has three runs). The fork copies a process that may have other
threads (the worker's heartbeat), so the forked reaper does nothing but os calls, its own
signal handlers and a prctl before it execs or exits, and it exits through posix._exit (never a
patched os._exit: a measured test process's reaper would write coverage data into the run's
folder). A forked process keeps its parent's environment in /proc, so the reaper carries no run
marker: it is named `boss-<owner>` (/proc/PID/comm) instead, which a rerun looks for.

It also runs standalone, as `python -I -S reaper.py LC_CTYPE-SPEC ARGV...` (`argv()` builds it;
the tests use it): -I keeps boss's folder off sys.path, so this module imports the standard
library only. Python coerces a C locale by setting LC_CTYPE in its environment; LC_CTYPE-SPEC
is the command's own (`LC_CTYPE=value`, or `-` for none), restored before exec.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

# Every import is paid at each run's start: signal's enums and typing cost twice the rest.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
    from collections.abc import Mapping
    from typing import NoReturn
else:
    import _signal as signal  # signal's functions and numbers, without its enum classes

PR_SET_CHILD_SUBREAPER = 36
# The reaper's exits: posix's own, which a tool that patches os._exit (coverage saves its data
# there) does not see, so a reaper forked from a measured process writes nothing in the run's
# folder.
try:
    from posix import _exit
except ImportError:  # pragma: no cover - not POSIX: the reaper is not used
    from os import _exit
# How long descendants left by the command get between SIGTERM and SIGKILL: less than a stage
# of run_group's stop (boss.core.proc.STOP_STAGES), so a stopped command's leader exits within it.
GRACE = 1.0
SETTLE = (0.0005, 0.001, 0.002, 0.004)  # seconds: the pauses before leftovers are signalled
HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


PR_GET_DUMPABLE = 3  # harmless, no argument: tells whether prctl may be called at all
_SUPPORTED: list[bool] = []


def supported() -> bool:
    """True where a process can be made a subreaper (Linux, prctl allowed): asked once."""
    if not _SUPPORTED:
        ok = sys.platform.startswith("linux")
        if ok:
            try:
                import _ctypes

                program = _ctypes.dlopen(None, 0)  # type: ignore[arg-type]  # None: the program itself
                prctl = _ctypes.dlsym(program, "prctl")
                ok = _ctypes.call_function(prctl, (PR_GET_DUMPABLE,)) >= 0
            except (ImportError, OSError, AttributeError, TypeError):
                ok = False
        _SUPPORTED.append(ok)
    return _SUPPORTED[0]


def argv(command: list[str], env: Mapping[str, str]) -> list[str]:
    """The argv that runs command under the reaper; env is the environment it will run with."""
    ctype = env.get("LC_CTYPE")
    spec = "-" if ctype is None else f"LC_CTYPE={ctype}"
    here = os.path.abspath(__file__)  # noqa: PTH100 - no pathlib: every import costs each run's start
    return [sys.executable, "-I", "-S", here, spec, *command]


PR_SET_NAME = 15
NAME = "boss-reaper"  # what ps and /proc/PID/comm show for it (at most 15 bytes)


def _subreaper(name: str = NAME) -> bool:
    # _ctypes' own calls, not the ctypes package: its import alone costs 3 ms of each run's start.
    try:
        import _ctypes

        program = _ctypes.dlopen(None, 0)  # type: ignore[arg-type]  # None: the program itself
        prctl = _ctypes.dlsym(program, "prctl")
        _ctypes.call_function(prctl, (PR_SET_NAME, name.encode()[:15], 0, 0, 0))
        return int(_ctypes.call_function(prctl, (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))) == 0
    except (ImportError, OSError, AttributeError):
        try:
            import ctypes

            return int(ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
        except (ImportError, OSError, AttributeError):
            return False


def _exec(command: list[str], env: Mapping[str, str] | None = None) -> NoReturn:
    """Exec command, as subprocess would (SIGPIPE and SIGXFSZ back to their defaults)."""
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    try:
        if env is None:
            os.execvp(command[0], command)  # noqa: S606 - the user's argv, as Popen would run it
        os.execvpe(command[0], command, env)  # noqa: S606
    except OSError as e:
        # The words and codes run_group used when Popen itself failed: 126 found but not
        # executable, 127 not found.
        error = f"[Errno {e.errno}] {e.strerror}: {command[0]!r}"
        os.write(2, f"{command[0]}: cannot start: {error}\n".encode(errors="surrogateescape"))
        _exit(126 if isinstance(e, PermissionError) else 127)


def _nothing(signum: int, frame: object) -> None:
    """The reaper outlives the group's signals; the command gets them."""


def _wait(child: int) -> int:
    """Reap every child (adopted orphans too) until child exits; its wait status."""
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == child:
            return status


def _reap() -> bool:
    """Reap every child that has exited; True while some child is still running."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def descendants(root: int) -> list[tuple[int, int]]:
    """(pid, pgid) of every live descendant of root, from /proc's PPid links."""
    children: dict[int, list[tuple[int, int]]] = {}
    for name in os.listdir("/proc"):  # noqa: PTH208 - no pathlib (start-up time)
        if not name.isdigit():
            continue
        try:
            fd = os.open(f"/proc/{name}/stat", os.O_RDONLY)
            try:
                fields = os.read(fd, 4096).rsplit(b")", 1)[1].split()
            finally:
                os.close(fd)
        except (OSError, IndexError):
            continue
        if fields[0] not in (b"Z", b"X"):
            children.setdefault(int(fields[1]), []).append((int(name), int(fields[2])))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def _signal_descendants(sig: int) -> None:
    own_group = os.getpgrp()
    for pid, pgid in descendants(os.getpid()):
        try:
            if pgid == pid and pgid != own_group:  # a group it leads: its pipeline, its children
                os.killpg(pgid, sig)
            os.kill(pid, sig)
        except OSError:
            continue


def stop_descendants(grace: float = GRACE) -> None:
    """Stop and reap everything the command left: SIGTERM, grace seconds, then SIGKILL."""
    # Once the command has exited, whatever is left of its tree was reparented here: no child,
    # no descendant (and no /proc walk at the end of a run that left nothing).
    if not _reap():
        return
    # What is already on its way out (a sandbox's init, reparented here when bubblewrap exits
    # first) goes in a few milliseconds: wait that long before signalling anything.
    for pause in SETTLE:
        time.sleep(pause)
        if not _reap():
            return
    _signal_descendants(signal.SIGTERM)
    deadline = time.monotonic() + grace
    pause = 0.002
    while time.monotonic() < deadline:
        time.sleep(pause)
        pause = min(pause * 2, 0.02)
        if not _reap():
            return
    for _ in range(100):  # what is left, and what it starts meanwhile
        _signal_descendants(signal.SIGKILL)
        time.sleep(0.01)
        if not _reap():
            return


def _exit_as(status: int) -> NoReturn:
    """Exit as the command did: its exit code, or killed by the same signal."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the command's core, not ours
        except (ImportError, OSError, ValueError):
            pass
        if sig not in (signal.SIGKILL, signal.SIGSTOP):  # the two whose action is fixed
            signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
        os.kill(os.getpid(), sig)
        _exit(128 + sig)  # a signal whose default does not end a process
    _exit(os.waitstatus_to_exitcode(status))


def _lead(command: list[str], env: Mapping[str, str] | None, mask: object, name: str = NAME) -> NoReturn:
    """In the reaper's process: start command, wait for it, stop what it left, exit as it did.

    HANDLED are blocked (mask: the mask to give the command) until the handlers are in place.
    """
    for sig in HANDLED:
        signal.signal(sig, _nothing)
    if not _subreaper(name):
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # type: ignore[arg-type]
        _exec(command, env)  # the command itself leads its group, as without the reaper
    child = os.fork()
    if child == 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # type: ignore[arg-type]
        _exec(command, env)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # type: ignore[arg-type]
    status = _wait(child)
    stop_descendants()
    _exit_as(status)


class Spawned:
    """The reaper forked by spawn(): what run_group and stop_group use of a Popen."""

    def __init__(self, pid: int, args: list[str]) -> None:
        self.pid, self.args = pid, args
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """Its exit code (-N: killed by signal N) once it has exited, else None."""
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for it to exit (subprocess.TimeoutExpired after timeout seconds)."""
        if timeout is None:
            while self.returncode is None:
                _, status = os.waitpid(self.pid, 0)
                self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode
        deadline = time.monotonic() + timeout
        while (code := self.poll()) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                import subprocess

                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(min(left, 0.01))
        return code


def spawn(
    command: list[str], *, cwd: str, env: Mapping[str, str], output: int, name: str = NAME, hold: int = -1
) -> Spawned:
    """Start command under a reaper forked from this process (no interpreter to start).

    The reaper leads a new session and process group; its stdin is /dev/null, its stdout and
    stderr the file descriptor output. hold: a descriptor the reaper keeps open and the command
    does not get (the read end of run_group's output pipe: should the worker die, the command's
    writes fill the pipe and wait, to be stopped by the rerun, instead of failing with EPIPE).
    It touches nothing this process's other threads may hold (no Python-level I/O: only os
    calls), then forks and execs command and reaps as main() does.
    """
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
    try:
        import warnings

        with warnings.catch_warnings():  # Python 3.12 warns of fork() beside threads: see above
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:
            try:
                os.setsid()
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                os.dup2(output, 1)
                os.dup2(output, 2)
                if hold >= 0:
                    os.dup2(hold, 3)
                    os.set_inheritable(3, False)
                os.closerange(3 if hold < 0 else 4, os.sysconf("SC_OPEN_MAX"))
                try:
                    os.chdir(cwd)
                except OSError as e:
                    error = f"[Errno {e.errno}] {e.strerror}: {cwd!r}"
                    os.write(2, f"{command[0]}: cannot start: {error}\n".encode(errors="surrogateescape"))
                    _exit(127)
                _lead(command, dict(env), mask, name)
            finally:
                _exit(127)  # only if _lead raised: it never returns
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        raise
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    except BaseException:
        # A Ctrl-C that came while it forked: the caller never learns the pid, so the reaper's
        # group (the reaper, and the command if it started) goes now.
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        raise
    return Spawned(pid, command)


def main(args: list[str]) -> NoReturn:
    """Run the command args[1:] under this subreaper (args[0]: the command's LC_CTYPE)."""
    spec, command = args[0], args[1:]
    os.environ.pop("LC_CTYPE", None)
    if spec.startswith("LC_CTYPE="):
        os.environ["LC_CTYPE"] = spec.partition("=")[2]
    # A group signal that comes before the handlers are in place waits for them.
    _lead(command, None, signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED))


if __name__ == "__main__":
    main(sys.argv[1:])
