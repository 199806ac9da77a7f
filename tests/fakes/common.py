"""What every fake agent CLI shares: its argument parser, the "model", tool calls, records.

The "model" behind each fake is the worker's scripted agent: it looks for the
```agent-script``` block in the text the CLI actually handed to the model (prompt, system
prompt, message file...), so a prompt that never reached the CLI means nothing happens, and
it carries out step BOSS_ITERATION as a series of tool calls that the fake's own permission
rules may refuse. In a read-only (planning) run the model answers with FAKE_PLANNER_REPLY
(or the file FAKE_PLANNER_REPLY_FILE). Usage numbers are fixed: COST_USD, INPUT_TOKENS,
OUTPUT_TOKENS. With FAKE_CLI_RECORD set, each run appends one JSON line to that file: argv,
cwd, what stdin was, and the model's input.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import stat
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import yaml

from boss.core.errors import CommandError
from boss.core.proc import run as run_argv
from worker.agents.scripted import apply_step, load_script

COST_USD = 0.0123
INPUT_TOKENS = 1000
OUTPUT_TOKENS = 200
NO_PLAN = "I have no plan to offer."


class CliParser(argparse.ArgumentParser):
    """argparse that fails the way the emulated CLI's own parser does (message, exit code)."""

    def __init__(self, prog: str, *, exit_code: int, unknown: Callable[[list[str]], str], **kw: Any) -> None:
        super().__init__(prog=prog, allow_abbrev=False, **kw)
        self.exit_code = exit_code
        self.unknown = unknown

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {message}\n")
        sys.exit(self.exit_code)

    def parse(self, argv: list[str]) -> argparse.Namespace:
        args, extra = self.parse_known_args(argv)
        if extra:
            sys.stderr.write(self.unknown(extra) + "\n")
            sys.exit(self.exit_code)
        return args


def fail(message: str, code: int = 1) -> NoReturn:
    """Print message on stderr and exit with code."""
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.exit(code)


def stdin_kind() -> str:
    """What stdin is: devnull, tty, pipe, file, closed or other."""
    try:
        st = os.fstat(0)
    except OSError:
        return "closed"
    if stat.S_ISCHR(st.st_mode):
        if os.isatty(0):
            return "tty"
        return "devnull" if st.st_rdev == os.stat(os.devnull).st_rdev else "other"
    if stat.S_ISFIFO(st.st_mode):
        return "pipe"
    return "file" if stat.S_ISREG(st.st_mode) else "other"


def read_piped_stdin() -> str:
    """All of stdin unless it is a terminal, as the real CLIs read it (an open pipe blocks)."""
    if stdin_kind() in ("tty", "closed"):
        return ""
    return sys.stdin.read()


def emit(event: dict[str, Any]) -> None:
    """Print one JSON line and flush it, as a streaming CLI does."""
    print(json.dumps(event), flush=True)


def say(text: str, *, err: bool = False) -> None:
    """Print a line of console text and flush it."""
    print(text, file=sys.stderr if err else sys.stdout, flush=True)


def record(cli: str, argv: list[str], **info: Any) -> None:
    """Append what this run received to $FAKE_CLI_RECORD (tests read it)."""
    path = os.environ.get("FAKE_CLI_RECORD")
    if not path:
        return
    entry = {"cli": cli, "argv": argv, "cwd": os.getcwd(), "stdin": stdin_kind(), **info}
    with open(path, "a") as f:
        f.write(json.dumps(entry) + "\n")


def planner_reply() -> str:
    """The planner's answer: $FAKE_PLANNER_REPLY or the file $FAKE_PLANNER_REPLY_FILE."""
    if "FAKE_PLANNER_REPLY" in os.environ:
        return os.environ["FAKE_PLANNER_REPLY"]
    path = os.environ.get("FAKE_PLANNER_REPLY_FILE")
    return Path(path).read_text() if path else NO_PLAN


def new_id(prefix: str = "") -> str:
    """A random id, as the CLIs print them."""
    return prefix + uuid.uuid4().hex[:24] if prefix else str(uuid.uuid4())


def snapshot() -> str:
    """A 40-hex-digit id, like a git tree hash."""
    return (uuid.uuid4().hex + uuid.uuid4().hex)[:40]


def read_mentioned(text: str, roots: list[Path] | None = None) -> str:
    """The contents of files the text names by absolute path (the model's read tool).

    With roots, only files under one of them can be read (a workspace-bound read tool).
    """
    found = []
    for match in re.finditer(r"(/[^\s`'\"]+)", text):
        path = Path(match.group(1).rstrip(".,;:"))
        if not path.is_file():
            continue
        if roots is None or any(path.resolve().is_relative_to(r.resolve()) for r in roots):
            found.append(path.read_text())
    return "".join(f"\n\n{t}" for t in found)


def now_ms() -> int:
    """Milliseconds since the epoch."""
    return int(time.time() * 1000)


@dataclass
class Action:
    """One thing the model does: an edit, a shell command, a pause or a failure."""

    kind: str  # edit | shell | sleep | fail
    path: str = ""
    op: str = ""  # write | append | replace | delete
    step: dict[str, Any] = field(default_factory=dict)
    command: str = ""
    text: str = ""
    seconds: float = 0.0
    code: int = 0

    @property
    def value(self) -> Any:
        """The op's argument (content, [old, new], or None for delete)."""
        return None if self.op == "delete" else self.step[self.op][self.path]


def actions(step: dict[str, Any]) -> list[Action]:
    """A script step as tool calls, in the scripted agent's order (`print` is the answer)."""
    found = []
    for op in ("write", "append", "replace"):
        for rel, value in (step.get(op) or {}).items():
            found.append(Action("edit", path=str(rel), op=op, step={op: {rel: value}}))
    for rel in step.get("delete") or []:
        found.append(Action("edit", path=str(rel), op="delete", step={"delete": [rel]}))
    if step.get("run"):
        found.append(Action("shell", command=str(step["run"])))
    if step.get("sleep"):
        found.append(Action("sleep", seconds=float(step["sleep"])))
    if int(step.get("exit", 0)):
        found.append(Action("fail", code=int(step["exit"])))
    return found


@dataclass
class Model:
    """The scripted model: the step for this iteration, from the text the CLI gave it."""

    text: str
    step: dict[str, Any] | None
    problem: str = ""

    @classmethod
    def read(cls, text: str) -> Model:
        iteration = int(os.environ.get("BOSS_ITERATION") or 1)
        try:
            steps = load_script(text)
        except (ValueError, yaml.YAMLError) as e:
            return cls(text, None, f"I could not read the agent-script: {e}")
        if not steps:
            return cls(text, None, "Nothing to do: there is no agent-script in my instructions.")
        return cls(text, steps[min(iteration, len(steps)) - 1])

    def actions(self) -> list[Action]:
        return actions(self.step) if self.step else []

    def opening(self) -> str:
        """What the model says before its tool calls."""
        return "I will follow the agent-script." if self.step else "Let me read the task."

    def final_text(self) -> str:
        if self.step is None:
            return self.problem
        return str(self.step.get("print") or "Done.")


def apply_edit(action: Action, root: Path) -> str:
    """Carry out an edit in root; an error message, or "" when it worked."""
    try:
        apply_step(action.step, root)
    except (OSError, ValueError, TypeError) as e:
        return f"{action.op} {action.path}: {e}"
    return ""


def edit_kind(action: Action, root: Path) -> str:
    """add, update or delete: what the edit does to its file."""
    if action.op == "delete":
        return "delete"
    return "update" if (root / action.path).exists() else "add"


def shell(command: str, cwd: Path, timeout: float | None = None) -> tuple[int, str]:
    """Run a bash command as the agent's tool does: (exit code, stdout and stderr)."""
    try:
        res = run_argv(["bash", "-c", command], cwd=cwd, check=False, timeout=timeout)
    except CommandError as e:
        return e.returncode, e.stderr
    return res.returncode, res.stdout + res.stderr


def hook_command(
    command: str, payload: dict[str, Any], cwd: Path, timeout: float, env: dict[str, str]
) -> tuple[int | None, str, str]:
    """Run one command hook with payload as JSON on stdin: (exit code or None, stdout, stderr)."""
    try:
        res = run_argv(
            ["bash", "-c", command],
            cwd=cwd,
            env={**os.environ, **env},
            input_text=json.dumps(payload),
            check=False,
            timeout=timeout,
        )
    except CommandError:
        return None, "", "hook timed out"
    return res.returncode, res.stdout, res.stderr
