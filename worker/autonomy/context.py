"""The world a command line is judged in: its worktree, home and environment, and how the file
system is seen (real, or the stand-in of the policy's examples)."""

from __future__ import annotations

import os
from pathlib import Path

from worker.autonomy.shellparse import Record

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the guard 3 ms
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

SCRIPT_LIMIT = 256 * 1024


def read_script(path: str) -> str | None:
    """A script's text to judge; None when missing, unreadable or too large; NUL when binary."""
    try:
        with Path(path).open("rb") as f:
            data = f.read(SCRIPT_LIMIT + 1)
    except OSError:
        return None
    if len(data) > SCRIPT_LIMIT:
        return None
    if b"\0" in data:
        return "\0"
    return data.decode("utf-8", errors="replace")


class Context(Record):
    """Where a command runs and how the file system is seen (replaceable for policy examples)."""

    __slots__ = ("env", "exists", "home", "read_text", "realpath", "worktree")

    def __init__(
        self,
        worktree: str,
        home: str,
        env: Mapping[str, str] | None = None,
        realpath: Callable[[str], str] = os.path.realpath,
        exists: Callable[[str], bool] = os.path.lexists,
        read_text: Callable[[str], str | None] = read_script,
    ) -> None:
        self.worktree, self.home, self.env = worktree, home, {} if env is None else env
        self.realpath, self.exists, self.read_text = realpath, exists, read_text


def make_context(worktree: Path, env: Mapping[str, str] | None = None) -> Context:
    """A context for a real worktree (symlinks resolved) and environment (default: os.environ)."""
    env = dict(os.environ if env is None else env)
    home = env.get("HOME") or str(Path.home())
    return Context(os.path.realpath(worktree), os.path.realpath(home), env)
