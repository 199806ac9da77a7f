"""Every process a run started, wherever it went: found by a marker in its environment.

Agent CLIs (Claude Code, Gemini CLI, OpenCode) start each shell command of the model in a new
session, outside the agent's process group, so a group kill misses them; a double fork or a
dead worker leaves them reparented. Three ways find them anyway:

- On Linux every run's leader is boss.core.reaper, a subreaper: the orphans of the command's tree
  are reparented to it, not to init, so its descendants (a walk of PPid links) are everything
  the run started that still lives, whatever session it moved to or environment it cleared.
  The reaper stops them itself when the command exits; the walk here is for the stops that
  do not wait for that (a timeout, Ctrl-C, a rerun after `kill -9` of the worker).
- Every run gets `BOSS_RUN_ID=<owner>:<nonce>` in its environment, and children inherit it
  wherever they move. /proc/PID/environ is the environment a process was started with, so a
  process is found by it until it execs with a cleared environment: the backstop when the
  reaper itself was killed.
- The descendants of every marked process are the run's too: a rerun after `kill -9` finds
  the dead run's reaper by its marker, and under it what cleared its environment (`env -i`).

Only processes of this user are read (another user's environ is unreadable anyway), only at
stop time, and this process and its ancestors are never signalled. A process found earlier is
signalled only if it is still the same process (pid and start time); so is the leader walked,
whose pid is free for reuse once it is reaped. A rerun after `kill -9` stops what the dead run
left by the owner part of the marker alone: a status file's `child_pgid`, which an agent can
forge, decides nothing.

The subreaper is its own process, not the worker: reaping adopted orphans needs waitpid(-1),
which in the worker would also reap the children subprocess.Popen waits for (the pool runs
several), leaving Popen's wait with ECHILD and a wrong exit code.

Without /proc (not Linux) nothing is found and callers get the group kill alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MARKER = "BOSS_RUN_ID"
PROC = Path("/proc")
# How long stopped processes get between SIGTERM and SIGKILL.
GRACE = 2.0


@dataclass(frozen=True)
class Process:
    """One process, as /proc/PID/stat tells it."""

    pid: int
    ppid: int
    pgid: int
    start: int  # clock ticks after boot: with the pid, it names one process across pid reuse
    zombie: bool


def supported() -> bool:
    """True where processes can be listed (/proc)."""
    return (PROC / "self" / "stat").is_file()


def owner(*parts: str) -> str:
    """An owner name for markers: the same parts (repo, plan, worker) give the same name."""
    return "w" + hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def new_marker(owner_name: str) -> str:
    """A marker for one run of owner_name: `<owner>:<nonce>`."""
    return f"{owner_name}:{secrets.token_hex(8)}"


def read(pid: int) -> Process | None:
    """The process pid, or None when it is gone or unreadable."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
        fields = text.rsplit(")", 1)[1].split()
        return Process(pid, int(fields[1]), int(fields[2]), int(fields[19]), fields[0] in "ZX")
    except (OSError, IndexError, ValueError):
        return None


def _pids() -> list[int]:
    try:
        return [int(e.name) for e in PROC.iterdir() if e.name.isdigit()]
    except OSError:
        return []


def table() -> dict[int, Process]:
    """Every process there is, by pid."""
    return {p.pid: p for pid in _pids() if (p := read(pid)) is not None}


def descendants(leader: int, procs: dict[int, Process]) -> list[Process]:
    """The live descendants of leader in procs (a PPid walk), leader excluded."""
    children: dict[int, list[Process]] = {}
    for p in procs.values():
        children.setdefault(p.ppid, []).append(p)
    found, todo = [], [leader]
    while todo:
        for child in children.get(todo.pop(), []):
            if child.pid != leader and not child.zombie:
                found.append(child)
                todo.append(child.pid)
    return found


def reaper_name(owner_name: str) -> str:
    """The name (/proc/PID/comm) of owner's reapers: forked, they keep the environment of the
    process that forked them, so their name, not a marker, tells them."""
    return f"boss-{owner_name}"[:15]


def marked(needle: str) -> list[Process]:
    """Processes of this user whose environment holds `BOSS_RUN_ID=<needle>...` at an entry's start.

    A full marker ends the needle with NUL for an exact match; `<owner>:` matches every run of
    that owner, and that owner's reapers (by name: see reaper_name).
    """
    key = b"\0" + f"{MARKER}={needle}".encode()
    name = (reaper_name(needle[:-1]) + "\n").encode() if needle.endswith(":") else b""
    uid, found = os.getuid(), []
    for pid in _pids():
        environ = _environ(pid, uid)
        if not environ:
            continue
        if key in b"\0" + environ or (name and _comm(pid) == name):
            p = read(pid)
            if p is not None and not p.zombie:
                found.append(p)
    return found


def _comm(pid: int) -> bytes:
    try:
        fd = os.open(f"/proc/{pid}/comm", os.O_RDONLY)
    except OSError:
        return b""
    try:
        return os.read(fd, 64)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _environ(pid: int, uid: int) -> bytes:
    """The environment pid was started with, if it runs as uid ("" otherwise).

    os.open and os.read, not open(): this runs for every process at the end of every run.
    """
    try:
        fd = os.open(f"/proc/{pid}/environ", os.O_RDONLY)
    except OSError:
        return b""
    try:
        if os.fstat(fd).st_uid != uid:
            return b""
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return b""
    finally:
        os.close(fd)


def protected() -> set[int]:
    """This process and its ancestors: never signalled."""
    keep, pid = {0, 1}, os.getpid()
    while pid > 1 and pid not in keep:
        keep.add(pid)
        p = read(pid)
        pid = p.ppid if p is not None else 0
    return keep


def same(p: Process) -> bool:
    """Whether p still runs: the same pid, not a zombie, the same start (not a reused pid)."""
    now = read(p.pid)
    return now is not None and not now.zombie and now.start == p.start


def _send(procs: Iterable[Process], sig: int, keep: set[int]) -> None:
    own_group = os.getpgrp()
    for p in procs:
        if p.pid in keep or not same(p):
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            # A group it leads was started by it (its pipeline, its own children).
            if p.pgid == p.pid and p.pgid != own_group:
                os.killpg(p.pgid, sig)
            os.kill(p.pid, sig)


class Sweep:
    """The processes of one run: gathered while it runs, signalled and stopped when it ends.

    `needle` is a run's full marker (then a NUL is added: an exact match) or `<owner>:`.
    """

    def __init__(self, needle: str, leader: int = 0) -> None:
        self.needle = needle if needle.endswith(":") else needle + "\0"
        # With its start time: once reaped, its pid may name a stranger, whose tree is not ours.
        self.leader = read(leader) if leader > 0 and supported() else None
        self.known: dict[tuple[int, int], Process] = {}

    def gather(self) -> list[Process]:
        """Add the marked processes, the leader's descendants and theirs; return the live ones known."""
        if not supported():
            return []
        found = marked(self.needle)
        roots = [*found, self.leader] if self.leader is not None and same(self.leader) else found
        if roots:
            procs = table()
            for root in roots:
                found += descendants(root.pid, procs)
        for p in found:
            self.known[(p.pid, p.start)] = p
        return [p for p in self.known.values() if same(p)]

    def signal(self, sig: int) -> None:
        """Send sig to every process gathered so far and still there (and the groups they lead)."""
        _send(self.gather(), sig, protected())

    def stop(self, grace: float = GRACE) -> list[int]:
        """Stop every process of the run in stages (SIGTERM, then SIGKILL); the pids stopped."""
        keep = protected()
        live = [p for p in self.gather() if p.pid not in keep]
        stopped = {p.pid for p in live}
        if not live:
            return []
        _send(live, signal.SIGTERM, keep)
        deadline = time.monotonic() + grace
        while live and time.monotonic() < deadline:
            time.sleep(0.02)
            live = [p for p in live if same(p)]
        for _ in range(3):  # what is left, and what it started meanwhile
            live = [p for p in self.gather() if p.pid not in keep]
            if not live:
                break
            stopped |= {p.pid for p in live}
            _send(live, signal.SIGKILL, keep)
            time.sleep(0.02)
        return sorted(stopped)


def stop_owner(owner_name: str, grace: float = GRACE) -> list[int]:
    """Stop every process any run of owner_name left (a rerun after a crash), with every
    descendant of those (what the dead run's reaper adopted); the pids stopped."""
    return Sweep(f"{owner_name}:").stop(grace)
