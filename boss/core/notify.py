"""The `notify` setting (`.boss/config.yaml`): a person's own command, run on the events a
person waits for (an approval needed, a worker ended, a ceremony ended) with the event as JSON
on its standard input.

The command is the user's (trusted); the event's fields come partly from agents (a command, a
reason), so they reach it on stdin only, never inside the command line. It never blocks or
fails the caller: the command starts in its own session, a thread waits for it at most
NOTIFY_TIMEOUT seconds (then its process group is killed), and any problem is one line on stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

APPROVAL, WORKER_ENDED, CEREMONY_ENDED = "approval-needed", "worker-ended", "ceremony-ended"
EVENTS = (APPROVAL, WORKER_ENDED, CEREMONY_ENDED)
NOTIFY_TIMEOUT = 10.0
MAX_FIELD = 4000  # an agent's text is cut here: the event stays small (a pipe's buffer holds it)
MAX_PAYLOAD = 60 * 1024


def _cut(value: Any, limit: int = MAX_FIELD) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "…"
    if isinstance(value, dict):
        return {str(k): _cut(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut(v, limit) for v in value]
    return value


def event_json(event: str, plan: str, **fields: Any) -> str:
    """The event as the command reads it: one JSON object on one line, in ASCII (an agent's
    text may hold anything, lone surrogates included), at most MAX_PAYLOAD bytes: the strings
    are cut before encoding, shorter until it fits, so the JSON stays whole."""
    data = {"event": event, "plan": plan, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    limit = MAX_FIELD
    while limit >= 16:
        text = json.dumps({**data, **_cut(fields, limit)}) + "\n"
        if len(text) <= MAX_PAYLOAD:
            return text
        limit //= 2
    return json.dumps({**data, "cut": "the event's fields were too long to send"}) + "\n"


def _say(problem: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # stderr closed: nowhere to say it
        print(f"boss: notify: {problem}", file=sys.stderr, flush=True)


def emit(repo: Path, event: str, plan: str, **fields: Any) -> threading.Thread | None:
    """Run the project's notify command, if any, on this event; the thread waiting for it (None
    when there is no command). Never raises."""
    try:
        from boss.core.config import load_config

        command = load_config(repo).notify
    except Exception as e:  # a broken config is reported by every command; not the caller's problem
        _say(f"not run ({type(e).__name__}: {e})")
        return None
    if not command:
        return None
    return run(command, event_json(event, plan, **fields), repo)


def _limit(timeout: float) -> list[str]:
    """coreutils' timeout in front of the command: it stops the command's process group even
    when the caller (a worker ending) has exited before the command did."""
    import shutil

    found = shutil.which("timeout")
    return [found, "-s", "KILL", f"{timeout + 1:g}"] if found else []


def run(command: str, payload: str, cwd: Path, timeout: float = NOTIFY_TIMEOUT) -> threading.Thread | None:
    """Start `bash -c command` in cwd with payload on stdin; a daemon thread waits for it."""
    try:
        proc = subprocess.Popen(
            [*_limit(timeout), "bash", "-c", command], cwd=cwd, stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
    except OSError as e:
        _say(f"{command!r} could not start: {e.strerror}")
        return None

    # The event goes into the pipe now (it is small: a pipe's buffer holds it), so it reaches the
    # command even when the caller, a worker ending, exits before the command reads it.
    try:
        assert proc.stdin is not None  # noqa: S101 - Popen with stdin=PIPE
        proc.stdin.write(payload.encode("utf-8", "replace"))
        proc.stdin.close()
    except OSError:  # it exited without reading its input: its own business
        pass
    proc.stdin = None

    def wait() -> None:
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            _say(f"{command!r} took more than {timeout:g}s and was stopped")
            return
        if proc.returncode != 0:
            tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] if err else []
            _say(f"{command!r} exited {proc.returncode}" + (f": {tail[0][:200]}" if tail else ""))

    thread = threading.Thread(target=wait, name="boss-notify", daemon=True)
    thread.start()
    return thread
