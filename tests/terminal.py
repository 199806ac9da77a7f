"""Drive a command through a pseudo-terminal, as a person at a terminal would.

`run_in_pty(argv, cwd, env, answers)` starts argv with a new pty as its stdin, stdout and
stderr (its controlling terminal, so `isatty()` is true and Ctrl-C could reach it), reads what it
prints, and each time the text so far contains the next prompt of `answers`, types that answer.
"""

from __future__ import annotations

import fcntl
import os
import select
import subprocess
import termios
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def _take_the_terminal() -> None:
    """In the child, after setsid: make the pty (its stdin) the session's controlling terminal,
    so a typed Ctrl-C (\x03) sends SIGINT to its foreground process group, as in a shell."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def run_in_pty(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    answers: Sequence[tuple[str, str]] = (),
    timeout: float = 300,
) -> tuple[int, str]:
    """Run argv on a pseudo-terminal, answering each (prompt, answer) in turn; (exit code, output)."""
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(
            list(argv), cwd=cwd, env=dict(env), stdin=slave, stdout=slave, stderr=slave,
            start_new_session=True, close_fds=True, preexec_fn=_take_the_terminal,
        )  # fmt: skip
    finally:
        os.close(slave)
    out = b""
    pending = list(answers)
    typed_at = 0  # what was read when the last answer was typed: a prompt counts once
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every process holding the terminal has closed it
                    chunk = b""
                if not chunk:
                    break
                out += chunk
            if pending and pending[0][0].encode() in out[typed_at:]:
                os.write(master, pending.pop(0)[1].encode())
                typed_at = len(out)
            if not ready and proc.poll() is not None:
                break
        else:
            proc.kill()
            msg = f"{argv[:3]} still running after {timeout}s; output so far:\n{out.decode(errors='replace')}"
            raise AssertionError(msg)
        code = proc.wait(timeout=30)
    finally:
        os.close(master)
    return code, out.decode(errors="replace").replace("\r\n", "\n")
