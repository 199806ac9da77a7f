"""The guard broker: the guard's judgement and its side effects, served from the worker process.

An agent runs in a sandbox where the plan's files (state log, approvals) and the git directory
are read-only, so the guard hook it starts before each tool call (`worker.autonomy.guard`) cannot write
its decision, take a TIER 2 checkpoint or record an approval request. The worker (`worker run`,
outside the sandbox) serves it instead: `with serve(facts) as endpoint:` listens on a Unix
socket in a fresh private folder for the length of one agent run, and the hook, given
`BOSS_GUARD_SOCKET`, sends the hook's input and its own folder and prints the answer.

The judgement uses only what the worker knows (`Facts`: plan, worker, worktree, agent,
strategy, iteration, environment); the request supplies the hook's input, and a working folder
that counts only inside the worktree (anything else is judged from the worktree's root).
One request a connection, one JSON object a line each way (`worker.autonomy.guard.read_message`):
`{"payload": STDIN, "cwd": DIR}` in, `{"code": 0|2, "stdout": ..., "stderr": ...}` out. A
client that sends nothing, too much or garbage gets a block; none can hold the worker up.

When the worker's own environment has `BOSS_APPROVAL_WAIT=SECONDS` (what `boss do --watch` sets
on a terminal; at most WAIT_MAX), a TIER 3 call without an approval waits that long for a
person's decision on its request, outside the judging lock, before it is judged again: approved,
it runs once; denied or still pending, it is blocked as it would have been at once.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from boss.core import approvals
from boss.core.errors import InputError, StateError
from boss.core.paths import PlanPaths
from worker.agents.profile import AgentRun
from worker.autonomy import guard

SOCKET_NAME = "guard.sock"
READ_SECONDS = 10.0  # for the whole request: the hook has read its input before it connects
SEND_SECONDS = 10.0
MAX_REQUEST = guard.MAX_MESSAGE  # bytes
MAX_CLIENTS = 32  # connections served at once; more are refused (an agent's parallel calls are few)
STOP_SECONDS = 60.0  # for judgements under way when the run ends: their log lines count (check_guard)
POLL_SECONDS = 1.0  # how soon the accepting thread notices the stop if the wake-up call failed
STALE_SECONDS = 60.0  # a socket folder older than this whose socket refuses is a dead worker's
SUN_PATH_MAX = 107  # bytes of an AF_UNIX path, its final NUL aside (Linux; macOS allows 103)
WAIT_ENV = "BOSS_APPROVAL_WAIT"  # the worker's environment: seconds a TIER 3 call waits for a person
# The answer must reach the hook before its broker timeout (guard.BROKER_TIMEOUT, 100 s) and the
# CLIs' hook timeout (120 s), judging again and a checkpoint included.
WAIT_MAX = 90.0
WAIT_POLL = 0.2  # how often a waiting call reads its request


@dataclass(frozen=True)
class Facts:
    """What the worker knows of one agent run: all a judgement uses besides the hook's input."""

    agent: str
    plan: str
    worker_id: str
    repo: Path
    worktree: Path
    strategy: int
    iteration: int
    env: Mapping[str, str] = field(default_factory=dict, repr=False)  # the agent's: API keys, no repr
    policy: Path | None = None  # None: the worker's overlay in its agent folder (worker.agents.enforce)
    wait: float = 0.0  # seconds a TIER 3 call waits for a person's decision (approval_wait)

    @classmethod
    def of(cls, agent: str, run: AgentRun, env: Mapping[str, str]) -> Facts:
        """The facts of an agent run the worker is about to start with env; the wait comes from
        the worker's own environment, never from anything the agent can write."""
        return cls(
            agent, run.plan, run.worker_id, run.repo, run.worktree, run.strategy, run.iteration, env,
            wait=approval_wait(os.environ),
        )  # fmt: skip

    def guard_env(self) -> dict[str, str]:
        """The environment the guard judges with: the agent's, with the worker's own BOSS_* facts."""
        return {
            **self.env,
            "BOSS_PLAN": self.plan,
            "BOSS_WORKER": self.worker_id,
            "BOSS_REPO": str(self.repo),
            "BOSS_WORKTREE": str(self.worktree),
            "BOSS_STRATEGY": str(self.strategy),
            "BOSS_ITERATION": str(self.iteration),
        }


@dataclass(frozen=True)
class Endpoint:
    """Where a broker listens: `path`, the socket, in `dir`, a folder of its own (mode 0700)."""

    dir: Path

    @property
    def path(self) -> Path:
        """The socket."""
        return self.dir / SOCKET_NAME

    def env(self) -> dict[str, str]:
        """What the agent's environment needs for its guard hooks to reach this broker."""
        return {guard.SOCKET_ENV: str(self.path)}


@contextmanager
def serve(facts: Facts) -> Iterator[Endpoint]:
    """Serve the guard for one agent run; stopped, and its folder removed, when the block ends."""
    server = _Server(facts)
    try:
        yield server.endpoint
    finally:
        server.stop()


def approval_wait(environ: Mapping[str, str]) -> float:
    """Seconds from BOSS_APPROVAL_WAIT, at most WAIT_MAX; 0 (no wait) when unset, not a number or not > 0."""
    try:
        seconds = float(environ.get(WAIT_ENV, "") or 0)
    except ValueError:
        return 0.0
    return min(seconds, WAIT_MAX) if seconds > 0 else 0.0  # NaN is not > 0


def judge(facts: Facts, request: bytes, *, wait: bool = False) -> guard.Outcome:
    """The answer to one request, its side effects done (log line, checkpoint, approval request).

    With `wait`, a TIER 3 block on a new or pending request names it in `Outcome.waiting`
    (logged as waiting facts.wait seconds for a person) instead of being the final answer.
    """
    try:
        message = json.loads(request)
    except ValueError:
        message = None
    if not isinstance(message, dict) or not isinstance(message.get("payload"), str):
        return refuse('the request is not {"payload": TEXT, "cwd": DIR}')
    payload = _with_cwd(message["payload"], message.get("cwd"), facts.worktree)
    env = facts.guard_env()
    return guard.run(
        payload, agent=facts.agent, plan=facts.plan, worker_id=facts.worker_id, policy=facts.policy, env=env,
        wait=facts.wait if wait else 0.0,
    )  # fmt: skip


def refuse(why: str) -> guard.Outcome:
    """A block for a request the broker could not judge."""
    return guard.Outcome(guard.BLOCK, "", f"guard error: {why} {guard.FAIL_CLOSED}\n")


def inside(path: object, worktree: Path) -> str | None:
    """path, resolved, when it is an absolute path in the worktree (symlinks followed); else None."""
    if not isinstance(path, str) or not Path(path).is_absolute():
        return None
    try:
        real, root = os.path.realpath(path), os.path.realpath(worktree)
    except (OSError, ValueError):  # a NUL in the path
        return None
    return real if real == root or real.startswith(root.rstrip(os.sep) + os.sep) else None


def _with_cwd(text: str, client_cwd: object, worktree: Path) -> str:
    """The hook's input with the folder it is judged from: the hook's (else the client's) when
    in the worktree, else the worktree's root. Input that is no JSON object is left for the
    guard to refuse."""
    try:
        payload = json.loads(text)
    except ValueError:
        return text
    if not isinstance(payload, dict):
        return text
    payload["cwd"] = inside(payload.get("cwd") or client_cwd, worktree) or str(worktree)
    return json.dumps(payload)


def _folder() -> Path:
    """A new private folder for the socket, with a path short enough for AF_UNIX."""
    # mkdtemp: a new random name, mode 0700, in $TMPDIR; in /tmp when $TMPDIR is too long.
    for parent in (None, "/tmp"):  # noqa: S108
        folder = Path(tempfile.mkdtemp(prefix="boss-guard-", dir=parent))
        if len(os.fsencode(folder / SOCKET_NAME)) <= SUN_PATH_MAX:
            sweep(folder.parent)
            return folder
        folder.rmdir()
    msg = (
        f"{folder}: too long a path for the guard's socket (at most {SUN_PATH_MAX} bytes); set a short TMPDIR"
    )
    raise StateError(msg)


def sweep(parent: Path, older: float = STALE_SECONDS) -> list[Path]:
    """Remove the socket folders in parent that a worker killed with -9 left: a socket nobody
    listens on, untouched for `older` seconds (a broker between bind and listen refuses too)."""
    removed = []
    for folder in parent.glob("boss-guard-*"):
        try:
            if time.time() - folder.stat().st_mtime < older:
                continue
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(1.0)
                probe.connect(str(folder / SOCKET_NAME))
        except ConnectionRefusedError:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        except OSError:  # alive, not ours, not a broker's, or gone already: not touched
            continue
    return removed


def _hung_up(conn: socket.socket) -> bool:
    """Whether the client closed its end (or the broker shut down reading): it sends nothing
    after its request, so a readable socket with no data left is a closed one."""
    try:
        readable, _, _ = select.select([conn], [], [], 0)
        return bool(readable) and conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except (OSError, ValueError):
        return True


class _Server:
    """A listening socket, the thread that accepts, and one thread a connection."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts
        self.endpoint = Endpoint(_folder())
        self.stopping = threading.Event()
        # One judgement at a time: checkpoint numbering reads then writes refs, and the shell
        # parser (bashlex, PLY tables) keeps state in module objects. A judgement takes
        # milliseconds; only the reading of requests, which a client can stall, is parallel.
        self.judging = threading.Lock()
        self.slots = threading.BoundedSemaphore(MAX_CLIENTS)
        self.lock = threading.Lock()  # guards `open`
        self.open: dict[socket.socket, threading.Thread] = {}
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.listener.bind(str(self.endpoint.path))
            self.listener.listen(MAX_CLIENTS)
            self.listener.settimeout(POLL_SECONDS)
        except OSError:
            self.listener.close()
            shutil.rmtree(self.endpoint.dir, ignore_errors=True)
            raise
        self.acceptor = threading.Thread(target=self.accept, name="boss-guard-broker", daemon=True)
        self.acceptor.start()

    def accept(self) -> None:
        with self.listener:
            while not self.stopping.is_set():
                try:
                    conn, _ = self.listener.accept()
                except TimeoutError:
                    continue
                except OSError:  # out of descriptors, say: the client's hook blocks on its own
                    time.sleep(POLL_SECONDS)
                    continue
                if self.stopping.is_set():
                    conn.close()
                    break
                if not self.slots.acquire(blocking=False):
                    self.answer(conn, refuse(f"more than {MAX_CLIENTS} guard calls at once"))
                    conn.close()
                    continue
                worker = threading.Thread(
                    target=self.handle, args=(conn,), name="boss-guard-call", daemon=True
                )
                with self.lock:
                    self.open[conn] = worker
                worker.start()

    def handle(self, conn: socket.socket) -> None:
        try:
            try:
                request = guard.read_message(conn, time.monotonic() + READ_SECONDS, MAX_REQUEST)
            except TimeoutError:
                outcome = refuse(f"no whole request within {READ_SECONDS:g}s")
            except ValueError as e:
                outcome = refuse(f"the request is too large: {e}")
            except (OSError, EOFError):
                outcome = refuse("the connection closed before a whole request")
            else:
                with self.judging:
                    outcome = judge(self.facts, request, wait=self.facts.wait > 0)
                if outcome.waiting:  # a person may decide: wait, without the lock, then judge again
                    self.await_decision(conn, outcome.waiting)
                    with self.judging:
                        outcome = judge(self.facts, request)
            self.answer(conn, outcome)
        except Exception as e:  # never a traceback in the worker's output: the client blocks
            self.answer(conn, refuse(f"broker error: {type(e).__name__}"))
        finally:
            with self.lock:
                self.open.pop(conn, None)
                conn.close()
            self.slots.release()

    def await_decision(self, conn: socket.socket, req_id: str) -> None:
        """Return once request req_id is no longer pending, facts.wait has passed, the broker
        stops, or the client has hung up (its agent run is over)."""
        folder = PlanPaths.of(self.facts.repo, self.facts.plan).approvals_dir
        deadline = time.monotonic() + self.facts.wait
        while True:
            try:
                if approvals.load(folder, req_id).status != approvals.PENDING:
                    return
            except InputError:  # removed meanwhile: judged again, it is recorded anew
                return
            if _hung_up(conn):
                return
            left = deadline - time.monotonic()
            if left <= 0 or self.stopping.wait(min(WAIT_POLL, left)):
                return

    def answer(self, conn: socket.socket, outcome: guard.Outcome) -> None:
        reply = {"code": outcome.code, "stdout": outcome.stdout, "stderr": outcome.stderr}
        with suppress(OSError):  # the client is gone: it blocked on its own
            conn.settimeout(SEND_SECONDS)
            conn.sendall((json.dumps(reply) + "\n").encode())

    def stop(self) -> None:
        """Stop accepting, end pending reads, wait for judgements under way, remove the folder."""
        self.stopping.set()
        with suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as wake:
            wake.settimeout(POLL_SECONDS)
            wake.connect(str(self.endpoint.path))  # accept() returns now, not at its next poll
        self.acceptor.join()
        with self.lock:
            for conn in self.open:
                with suppress(OSError):
                    conn.shutdown(socket.SHUT_RD)  # a reader gets EOF; an answer can still go out
            workers = list(self.open.values())
        deadline = time.monotonic() + STOP_SECONDS
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        shutil.rmtree(self.endpoint.dir, ignore_errors=True)
