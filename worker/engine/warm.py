"""A warm process on each node that forks the node's worker runs (worker.engine.node).

A fresh `python -P -m worker run` spends ~0.2 s of CPU importing the lifecycle before it does
anything, and on a node whose tasks start together every run pays it at once. The local pool
(worker.lifecycle.pool) forks its workers from a process that imported once; a Dask worker
cannot be forked (it runs threads, and a fork may copy another thread's held lock). So each node
process starts one helper, `python -P -m worker.engine.warm`: single-threaded, it imports the
lifecycle once and forks every run from there. A run is then what `python -P -m worker ARGS`
would be: its own directory, environment and output file, standard input empty, the default
signal handlers, no folder of the run on the import path (an agent's `json.py` stays its own),
and it ends as one would (its exit code, a SystemExit's message, atexit functions run, an
uncaught Ctrl-C its SIGINT). What differs: `ps` shows it by the name asked for (`worker W3`, as
the local pool names its workers), its /proc cmdline and environ are the helper's (its
environment is the one asked for), and every run has the helper's hash seed. A run is known by
its pid and start time: once its helper is gone, a pid given to another process is not the run.
The helper runs any module that way (the node asks only for `worker`; the tests, for probes).

The protocol, one JSON object per line on the helper's standard input and output:

    node -> helper:  {"module": M, "args": [...], "cwd": DIR, "env": {...}, "out": FILE, "name": N}
                     start a run (N: its name in ps and top, as the local pool names its workers)
                     {"signal": PID, "number": N}   signal a run the helper has not reaped yet
    helper -> node:  {"pid": PID}    in reply to each start, in order ({"pid": 0}: it failed)
                     {"pid": PID, "code": CODE}    when a run ends (-N if killed by N, as Popen says)

At end of its input the helper exits; runs it started go on, as Popen's would.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import runpy
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import IO, Any, NoReturn, cast

from boss.core import proctree
from boss.core.errors import StateError

HELPER = [sys.executable, "-P", "-m", "worker.engine.warm"]
GONE = -1  # the code of a run whose helper ended before telling it
UNKNOWN = -1  # the reply to a start its helper never answered
LOOK = 0.5  # seconds between looks at a run whose helper is gone


class Run:
    """A run forked by the helper, waited on as a Popen is. Known by its pid and start time, so a
    pid reused after the run ended is never taken for it."""

    def __init__(self, helper: Helper, pid: int) -> None:
        self.helper, self.pid = helper, pid
        self.known = proctree.read(pid)  # read at once: the run has not been reaped yet, or is ending
        self.returncode: int | None = None

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.helper.changed:
            while not self._ended():
                left = LOOK if deadline is None else min(LOOK, deadline - time.monotonic())
                if left <= 0:
                    raise subprocess.TimeoutExpired(HELPER, timeout or 0.0)
                self.helper.changed.wait(left)
        return self.returncode if self.returncode is not None else GONE

    def _ended(self) -> bool:
        """Whether its end is known (under the helper's condition)."""
        if self.returncode is None:
            code = self.helper.codes.pop(self.pid, None)
            if code is None and self.helper.gone and not self._running():
                code = GONE  # its helper ended first: the run's own code is lost, not its end
            self.returncode = code
        return self.returncode is not None

    def _running(self) -> bool:
        """Whether the run itself still runs (not another process given its pid since)."""
        return self.known is not None and proctree.same(self.known)

    def terminate(self) -> None:
        """SIGTERM to the run, through its helper (which signals only a run it has not reaped);
        its helper gone, to the run itself while it still runs."""
        with self.helper.changed:
            if self._ended():
                return
        if not self.helper.send({"signal": self.pid, "number": int(signal.SIGTERM)}) and self._running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)


class Helper:
    """The node process's side of one helper: starts runs, hears their ends."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(HELPER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.requests, self.replies = cast("IO[bytes]", self.proc.stdin), cast("IO[bytes]", self.proc.stdout)
        self.codes: dict[int, int] = {}
        self.pids: queue.Queue[int] = queue.Queue()
        self.changed = threading.Condition()
        self.gone = False
        self.writing = threading.Lock()  # a start and its reply, one at a time: replies come in order
        self.sending = threading.Lock()  # one message at a time on the pipe
        threading.Thread(target=self._hear, name="boss-warm", daemon=True).start()

    def start(
        self, module: str, args: list[str], cwd: str, env: dict[str, str], out: str, name: str = ""
    ) -> Run | None:
        """A run of `python -P -m MODULE ARGS`; None when nothing was started (the helper was gone,
        or could not fork: start it some other way). StateError when the helper ended between the
        request and its reply: a run may have started, and a second one must not."""
        asked = {"module": module, "args": args, "cwd": cwd, "env": env, "out": out, "name": name}
        with self.writing:
            if not self.send(asked):
                return None
            pid = self.pids.get()
        if pid == UNKNOWN:
            msg = "the node's warm helper ended while it started the run (run the worker again)"
            raise StateError(msg)
        return Run(self, pid) if pid > 0 else None

    def send(self, message: dict[str, Any]) -> bool:
        try:
            with self.sending:
                self.requests.write(json.dumps(message).encode() + b"\n")
                self.requests.flush()
        except (OSError, ValueError):
            return False
        return True

    def _hear(self) -> None:
        try:
            for line in self.replies:
                try:
                    message = json.loads(line)
                    pid, code = int(message["pid"]), message.get("code")
                    code = None if code is None else int(code)
                except (ValueError, TypeError, KeyError, AttributeError):
                    continue  # not the helper's (nothing else writes there)
                with self.changed:
                    if code is None:
                        self.codes.pop(pid, None)  # an earlier run's end at this pid is not this one's
                        self.pids.put(pid)
                    else:
                        self.codes[pid] = code
                        self.changed.notify_all()
        finally:
            with self.changed:
                self.gone = True
                self.changed.notify_all()
            self.pids.put(UNKNOWN)  # a start waiting for its reply gets none
            self.proc.wait()


_helper: Helper | None = None
_made = threading.Lock()


def ready() -> Helper | None:
    """This process's helper, started now if it has none (or its last one ended): a node starts
    it at the top of a task, so its imports overlap the task's git work. None if it cannot start."""
    global _helper
    with _made:
        if _helper is None or _helper.gone:
            with contextlib.suppress(OSError):
                _helper = Helper()
        return _helper


def start(
    args: list[str], cwd: str, env: dict[str, str], out: str, fork: bool = True, name: str = ""
) -> Run | subprocess.Popen[bytes]:
    """`python -P -m worker ARGS` in cwd with env, its output in the file out: with fork, forked by
    this process's helper (started the first time, again if it ended) and shown as name, else
    started afresh."""
    helper = ready() if fork else None
    run = helper.start("worker", args, cwd, env, out, name) if helper is not None else None
    if run is not None:
        return run
    with Path(out).open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-P", "-m", "worker", *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
            stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip


# The helper's side.


def serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    """Fork a run for each start request, until end of input; report each run's end."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the node's, and the runs'
    signal.signal(signal.SIGCHLD, _nothing)
    signal.set_wakeup_fd(wake_w)
    children: set[int] = set()

    def reply(message: dict[str, int]) -> None:
        replies.write(json.dumps(message).encode() + b"\n")
        replies.flush()

    buffer, open_input = b"", True
    while open_input:
        readable, _, _ = select.select([requests.fileno(), wake_r], [], [])
        if wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 512)
            _reap(children, reply)
        if requests.fileno() not in readable:
            continue
        chunk = os.read(requests.fileno(), 65536)
        open_input = bool(chunk)
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            message = json.loads(line)
            if "signal" in message:
                if int(message["signal"]) in children:  # not reaped: the pid is still the run's
                    os.kill(int(message["signal"]), int(message["number"]))
                continue
            _prewarm(message["env"], message["cwd"])
            pid = _fork(message, (requests.fileno(), replies.fileno(), wake_r, wake_w))
            if pid > 0:
                children.add(pid)
            reply({"pid": pid})
            _reap(children, reply)


def _reap(children: set[int], reply: Any) -> None:
    while children:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            return
        children.discard(pid)
        reply({"pid": pid, "code": os.waitstatus_to_exitcode(status)})


_warmed: dict[str, str] | None = None  # the environment _prewarm last asked in


def _prewarm(env: dict[str, str], cwd: str) -> None:
    """Ask once here what every run asks once (git's identity fallback, whether the sandbox's tool
    works) so the runs forked after inherit the answers instead of asking again: with the runs'
    environment, in a run's folder (a fresh repository of the node, as every run's is); asked
    again when the environment changes. A probe that fails, or anything that raises, is not kept:
    each run then asks for itself (a passing failure never takes the sandbox from later runs).
    With BOSS_SANDBOX=off in the runs' environment bubblewrap is not probed."""
    global _warmed
    if env == _warmed:
        return
    from boss.core import git, sandbox

    git.forget_identity()
    sandbox.probe.cache_clear()
    saved, here = dict(os.environ), Path.cwd()
    try:
        os.environ.clear()
        os.environ.update(env)
        os.chdir(cwd)
        git.identity_env()
        tool = sandbox.tool_path()
        failed = tool is not None and sandbox.mode_of("") != "off" and bool(sandbox.probe(tool))
        if failed:
            sandbox.probe.cache_clear()  # never handed on: this run probes for itself, the next start again
        _warmed = None if failed else dict(env)
    except Exception:  # each run asks for itself
        git.forget_identity()
        sandbox.probe.cache_clear()
        _warmed = None
    finally:
        os.environ.clear()
        os.environ.update(saved)
        os.chdir(here)


def _fork(request: dict[str, Any], mine: tuple[int, ...]) -> int:
    try:
        out = os.open(request["out"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError:
        return 0
    sys.stdout.flush()
    try:
        pid = os.fork()
    except OSError:
        os.close(out)
        return 0
    if pid != 0:
        os.close(out)
        return pid
    code = 1  # pragma: no cover - the child ends in os._exit
    try:
        signal.set_wakeup_fd(-1)
        for number in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(number, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        null = os.open(os.devnull, os.O_RDONLY)
        for fd, target in ((null, 0), (out, 1), (out, 2)):
            os.dup2(fd, target)
        for fd in (*mine, null, out):
            if fd > 2:
                os.close(fd)
        if request.get("name"):
            with contextlib.suppress(OSError):
                Path("/proc/self/comm").write_text(str(request["name"])[:15])
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = [request["module"], *request["args"]]
        code = _main(request["module"])
    finally:
        _exit(code)


def _main(module: str) -> int:  # pragma: no cover - runs in a forked child
    """Run module as `python -m` does, and end as it would: its exit code (a SystemExit's message
    printed), an uncaught error's traceback and 1, an uncaught Ctrl-C's traceback and SIGINT."""
    import traceback

    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        print(e.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        traceback.print_exc()
        return -signal.SIGINT
    except BaseException:  # what an uncaught error does to `python -m`
        traceback.print_exc()
        return 1
    return 0


def _exit(code: int) -> NoReturn:  # pragma: no cover - runs in a forked child
    """End the forked run: its atexit functions run and its output flushed, as at a Python's end;
    a negative code is the signal it dies of."""
    with contextlib.suppress(Exception):
        atexit._run_exitfuncs()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code & 0xFF)


def _nothing(signum: int, frame: FrameType | None) -> None:
    """SIGCHLD only needs to wake the select (through the wakeup fd)."""


def main() -> None:
    """`python -P -m worker.engine.warm`: import the lifecycle, then serve."""
    import worker.agents.cli_config
    import worker.agents.registry
    import worker.lifecycle.command
    import worker.lifecycle.run  # noqa: F401

    serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
