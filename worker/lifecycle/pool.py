"""The worker pool: the one process run_workers.sh starts its workers from.

A worker is a Python process that spends ~60 ms of CPU importing before it does anything, and
when a plan starts, every worker pays it at once: eight workers on two cores wait ~0.25 s for
each other. The pool imports once, opens the plan once, and forks each worker from there. Which
worker starts when stays in run_workers.sh; the pool only starts, skips and reports.

The protocol, one line per message (worker ids are manifest ids, [A-Za-z][A-Za-z0-9_-]*):

    pool -> events fd:  `state ID STATE` for every worker, then `ready` (the Dask engine's pool
                        first says `jobs N`: the -j to use when none was given)
    script -> stdin:    `run ID`, or `skip ID REASON...`, or `end`
    pool -> events fd:  `done ID CODE` when a worker ends (its exit code; 128+N if killed by N)

On `end` the pool waits for its workers and prints the plan's summary; at end of input without
`end` it waits for them and says nothing. SIGTERM (run_workers.sh's Ctrl-C handling) is passed
to every worker, which stops its agent and records FAILED "interrupted"; a `run` after it is
refused. SIGINT is ignored: a terminal's Ctrl-C reaches the workers directly.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
from pathlib import Path
from types import FrameType

from boss.core import git
from boss.core.config import Config
from boss.core.errors import BossError
from boss.core.exits import outcome, report_error, say
from boss.core.manifest import Manifest
from boss.core.paths import PlanPaths
from boss.core.proc import HELD_SIGNALS
from boss.core.statusview import rows, summary
from worker.lifecycle.budget import plan_refusal, refuse_start
from worker.lifecycle.command import EXIT_CODES, skip_worker
from worker.lifecycle.run import run_worker
from worker.lifecycle.signals import install_stop_signals
from worker.lifecycle.startup import exclude_tool_files

INTERRUPTED = 130


class Pool:
    """Forked workers of one plan, and the events the script reads."""

    def __init__(self, paths: PlanPaths, m: Manifest, config: Config, events: int) -> None:
        self.paths, self.m, self.config = paths, m, config
        self.events = events
        self.children: dict[int, str] = {}
        self.stopping = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    def emit(self, *words: object) -> None:
        # If the script is gone, the workers still finish and record their states.
        with contextlib.suppress(BrokenPipeError):
            os.write(self.events, (" ".join(map(str, words)) + "\n").encode())

    def serve(self) -> int:
        """Report the states, then take commands until `end` or end of input."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGCHLD, _nothing)
        signal.set_wakeup_fd(self._wake_w)
        self._prewarm()
        for r in rows(self.paths, self.m, self.config):
            self.emit("state", r.id, r.state)
        self.emit("ready")
        ended = False
        buffer = b""
        open_input = True
        while True:
            self._reap()
            if not (open_input or self.busy()):
                break
            if not open_input:
                select.select([self._wake_r], [], [])
                self._drain_wakeups()
                continue
            readable, _, _ = select.select([0, self._wake_r], [], [])
            if self._wake_r in readable:
                self._drain_wakeups()
            if 0 not in readable:
                continue
            chunk = os.read(0, 4096)
            if not chunk:
                open_input = False
                continue
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.strip() == b"end":
                    ended, open_input = True, False
                    break
                self._command(line.decode(errors="replace"))
        if ended:
            text = summary(self.paths, self.m, self.config, interrupted=self.stopping)
            sys.stdout.write("\n".join(text) + "\n")
            sys.stdout.flush()
        return INTERRUPTED if self.stopping else 0

    def busy(self) -> bool:
        """Whether a worker still runs (the Dask engine's pool has no children: worker.engine)."""
        return bool(self.children)

    def _prewarm(self) -> None:
        """Do once, before any fork, what every worker would otherwise do for itself."""
        from worker.agents import cli_config as agentconfig
        from worker.agents import registry as agent_clis  # noqa: F401  (a worker imports them late)

        git.identity_env()
        agentconfig.patterns(self.paths.repo)
        exclude_tool_files(self.paths)

    def _command(self, line: str) -> None:
        verb, _, rest = line.strip().partition(" ")
        worker_id, _, reason = rest.partition(" ")
        if verb == "run" and worker_id:
            self._start(worker_id)
        elif verb == "skip" and worker_id:
            try:
                skip_worker(self.paths, self.m, worker_id, reason)
                sys.stdout.write(f"{worker_id}: SKIPPED ({reason})\n")
                sys.stdout.flush()
            except BossError as e:
                report_error(e)
        elif line.strip():
            say(f"Error: worker pool: unknown command {line.strip()!r}")

    def _start(self, worker_id: str) -> None:
        if self.stopping:
            self.emit("done", worker_id, INTERRUPTED)
            return
        if why := plan_refusal(self.paths, self.m):  # the plan's budget_usd is spent
            refuse_start(self.paths, self.m, worker_id, why)
            sys.stdout.write(f"{worker_id}: not started: {why}\n")
            sys.stdout.flush()
            self.emit("done", worker_id, 1)
            return
        sys.stdout.flush()
        sys.stderr.flush()
        # Signals wait across the fork: until the child has a worker's handlers, a SIGTERM would
        # run the pool's (which signals the other workers) in it.
        before = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child ends in os._exit; coverage saves it (patch _exit)
            code = 1
            try:
                self._become_worker()
                self._name(worker_id)
                code = outcome(lambda: self._run(worker_id, before))
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
        self.children[pid] = worker_id

    def _become_worker(self) -> None:
        """Undo what is the pool's in a freshly forked child: signals, pipes, standard input."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        install_stop_signals()
        for fd in (self._wake_r, self._wake_w, self.events):
            os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)

    def _name(self, worker_id: str) -> None:
        """`ps -o comm` and top show each forked worker as `worker ID`, not as the pool."""
        with contextlib.suppress(OSError):
            Path("/proc/self/comm").write_text(f"worker {worker_id}"[:15])

    def _run(self, worker_id: str, mask: set[int | signal.Signals]) -> int:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a signal that came meanwhile stops it now
        state = run_worker(self.paths, self.m, self.config, worker_id)
        return EXIT_CODES[state]

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:  # pragma: no cover - every child is ours and reaped here
                self.children.clear()
                return
            if pid == 0:
                return
            worker_id = self.children.pop(pid, None)
            if worker_id is not None:
                code = os.waitstatus_to_exitcode(status)
                self.emit("done", worker_id, code if code >= 0 else 128 - code)

    def _drain_wakeups(self) -> None:
        os.set_blocking(self._wake_r, False)
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def _stop(self, signum: int, frame: FrameType | None) -> None:  # noqa: ARG002
        self.stopping = True
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):  # ended between reap and here
                os.kill(pid, signal.SIGTERM)


def _nothing(signum: int, frame: FrameType | None) -> None:
    """SIGCHLD only needs to wake the pool's select (through the wakeup fd)."""


def serve(paths: PlanPaths, m: Manifest, config: Config, events: int) -> int:
    """Run the pool for one plan, reporting on the events file descriptor."""
    return Pool(paths, m, config, events).serve()
