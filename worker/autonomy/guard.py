"""The guard hook: its command line, its wire protocol, and `python -P -m worker.autonomy.guard`.

`python -P -m worker.autonomy.guard --agent claude|codex|gemini|opencode --plan P --worker W`
is what an agent CLI runs before each shell command or file edit of a worker (`hook_argv`,
`hook_command`). This module speaks the hook's protocol: it reads the JSON on stdin (Claude
Code PreToolUse, Codex PreToolUse, Gemini CLI BeforeTool, boss's OpenCode plugin), has the
call judged (`worker.autonomy.judgement`: the tiers, the checkpoint, the approval request, the
state-log line) and writes the answer each CLI understands:

- allow: exit 0 (Claude gets `permissionDecision: allow`, Gemini `{}`, the others nothing).
- block: exit 2 with the reason on stderr, which blocks in every CLI and is shown to the model.

It fails closed: any error inside blocks (exit 2; never exit 1, which Claude Code treats as a
non-blocking error), and the command line rendered into hook configs ends in `|| exit 2`, so
even a guard that cannot start blocks. It runs as `python -P -m` (not the click CLI) to start
fast, and `-P` keeps a `worker/` folder in the agent's worktree from shadowing this package.

Under `worker run` the agent (and so this hook) cannot write the plan's files or the git
directory: the worker serves the judgement and its side effects from its own process
(`worker.lifecycle.broker`), and with `BOSS_GUARD_SOCKET` set this hook only forwards its input there
and prints the answer (ask_broker; socket and json only, to stay fast: the judgement is not
even imported). Without it, it judges by itself, as `worker guard` run by hand does.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the guard 3 ms
if TYPE_CHECKING:
    import socket
    from collections.abc import Mapping

ALLOW, BLOCK = 0, 2
AGENTS = ("claude", "codex", "gemini", "opencode")  # the agent CLIs whose hooks run this guard
# What the guard judges for: the CLIs, and the built-in scripted agent's `shell:` steps, which
# ask the worker's broker themselves (worker.agents.scripted) and get the plain answer.
JUDGED = (*AGENTS, "scripted")

SOCKET_ENV = "BOSS_GUARD_SOCKET"  # the worker's broker (worker.lifecycle.broker), when it serves the guard
MAX_MESSAGE = 16 << 20  # bytes of one framed message: a Write call carries the whole file
# Under the hooks' own 120 s (worker.agents.enforce.HOOK_TIMEOUT), past which a CLI lets the call through.
BROKER_TIMEOUT = 100.0
FAIL_CLOSED = "(the command is blocked: the guard fails closed)"


class Outcome:
    """What the hook process answers: exit code, stdout (JSON for the CLI) and stderr."""

    __slots__ = ("code", "stderr", "stdout", "waiting")

    def __init__(self, code: int, stdout: str = "", stderr: str = "", waiting: str = "") -> None:
        self.code, self.stdout, self.stderr = code, stdout, stderr
        # The approval request a TIER 3 block waits on (run's `wait`): the broker waits for a
        # person's decision, then judges the call again. Never on the wire.
        self.waiting = waiting


def hook_argv(agent: str, plan: str, worker_id: str, *, policy: Path | None = None) -> list[str]:
    """The argv a hook configuration runs for this worker (this interpreter, fast entry point)."""
    argv = [sys.executable, "-P", "-m", "worker.autonomy.guard", "--agent", agent, "--plan", plan]
    argv += ["--worker", worker_id]
    return argv + (["--policy", str(policy)] if policy is not None else [])


def hook_command(agent: str, plan: str, worker_id: str, *, policy: Path | None = None) -> str:
    """hook_argv as one shell command line that blocks (exit 2) even if the guard cannot start."""
    import shlex

    return f"{shlex.join(hook_argv(agent, plan, worker_id, policy=policy))} || exit 2"


def run(
    payload: str,
    *,
    agent: str,
    plan: str,
    worker_id: str,
    policy: Path | None = None,
    env: Mapping[str, str] | None = None,
    wait: float = 0.0,
) -> Outcome:
    """Judge one hook call; any error blocks (fail closed).

    With `wait` (seconds, the broker's only), a TIER 3 call without an approval is logged as
    waiting that long for a person, and the block names its request in `Outcome.waiting`.
    """
    try:
        judged_env = dict(os.environ if env is None else env)
        if agent not in JUDGED:
            msg = f"--agent {agent!r}: must be one of {', '.join(JUDGED)}"
            raise ValueError(msg)
        tool, tool_input, hook_cwd = _read_hook_input(payload)
        from worker.autonomy.judgement import Judge

        judge = Judge(agent, plan, worker_id, policy, judged_env, wait=wait)
        allowed, reason = judge.decide(tool, tool_input, hook_cwd)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        reason = f"guard error: {type(e).__name__}: {first}" if first else f"guard error: {type(e).__name__}"
        return Outcome(BLOCK, "", f"{reason} {FAIL_CLOSED}\n")
    return _allow(agent, reason) if allowed else Outcome(BLOCK, "", reason + "\n", judge.waiting)


def _read_hook_input(text: str) -> tuple[str, dict[str, object], str]:
    """The tool's name, its input and the hook's working folder ("" if none) from a hook's JSON."""
    payload = json.loads(text)
    if not isinstance(payload, dict):
        msg = "the hook input is not a JSON object"
        raise ValueError(msg)
    tool = str(payload.get("tool_name") or "")
    tool_input = payload.get("tool_input") or {}
    if not isinstance(tool_input, dict):
        tool_input = {"command": tool_input}
    return tool, tool_input, str(payload.get("cwd") or "")


def _allow(agent: str, reason: str) -> Outcome:
    """An allow in the words of agent's CLI."""
    if agent == "claude":
        out = {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "allow",
                                      "permissionDecisionReason": reason}}  # fmt: skip
        return Outcome(ALLOW, json.dumps(out))
    if agent == "gemini":
        return Outcome(ALLOW, "{}")
    return Outcome(ALLOW)  # Codex rejects unknown fields and "ask": say nothing (nor to the scripted agent)


def read_message(sock: socket.socket, deadline: float, limit: int = MAX_MESSAGE) -> bytes:
    """One newline-ended message from sock (without the newline), read before deadline (time.monotonic).

    TimeoutError past the deadline, ValueError past `limit` bytes, EOFError when the peer
    closes first: the framing of the guard broker's protocol, one JSON object a line.
    """
    import time

    chunks: list[bytes] = []
    size = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise EOFError
        end = chunk.find(b"\n")
        size += len(chunk) if end < 0 else end
        if size > limit:
            msg = f"message larger than {limit} bytes"
            raise ValueError(msg)
        chunks.append(chunk if end < 0 else chunk[:end])
        if end >= 0:
            return b"".join(chunks)


def ask_broker(path: str, payload: str, timeout: float = BROKER_TIMEOUT) -> Outcome:
    """Have the worker's broker judge this hook call (worker.lifecycle.broker); any failure blocks."""
    import socket
    import time
    from contextlib import suppress  # pathlib has imported it already

    try:
        cwd = str(Path.cwd())
    except OSError:
        cwd = ""  # a folder removed under the shell: the broker judges from the worktree
    request = (json.dumps({"payload": payload, "cwd": cwd}) + "\n").encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            # A broker that refuses before reading it all (too large, too busy) says why first.
            with suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(request)
            reply = json.loads(read_message(sock, time.monotonic() + timeout))
    except (OSError, EOFError) as e:
        why = "no answer in time" if isinstance(e, TimeoutError) else f"{type(e).__name__}: {e}".rstrip(": ")
        why += "; is the worker that started this agent still running?" if isinstance(e, OSError) else ""
        return Outcome(
            BLOCK, "", f"guard error: no answer from the guard broker at {path} ({why}) {FAIL_CLOSED}\n"
        )
    except ValueError as e:
        return Outcome(
            BLOCK, "", f"guard error: the guard broker at {path} answered no JSON ({e}) {FAIL_CLOSED}\n"
        )
    reply = reply if isinstance(reply, dict) else {}
    code, out, err = reply.get("code"), reply.get("stdout"), reply.get("stderr")
    if code not in (ALLOW, BLOCK) or not isinstance(out, str) or not isinstance(err, str):
        return Outcome(
            BLOCK, "", f"guard error: the guard broker at {path} answered nonsense {FAIL_CLOSED}\n"
        )
    return Outcome(int(code), out, err)


def _parse_args(argv: list[str]) -> dict[str, str]:
    names = {"--agent": "agent", "--plan": "plan", "--worker": "worker", "--policy": "policy"}
    opts: dict[str, str] = {}
    it = iter(argv)
    for word in it:
        key, eq, value = word.partition("=")
        if key not in names:
            msg = f"unknown argument {word!r} (usage: --agent A --plan P --worker W [--policy FILE])"
            raise ValueError(msg)
        opts[names[key]] = value if eq else next(it, "")
    missing = [f"--{n}" for n in ("agent", "plan", "worker") if not opts.get(n)]
    if missing:
        msg = f"missing {', '.join(missing)}"
        raise ValueError(msg)
    return opts


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m worker.autonomy.guard`: never exits 1 (that would not block)."""
    try:
        opts = _parse_args(sys.argv[1:] if argv is None else argv)
        policy = Path(opts["policy"]) if opts.get("policy") else None
        payload, broker = sys.stdin.read(), os.environ.get(SOCKET_ENV)
        if broker:  # the broker knows the plan, the worker and the policy: the options are not sent
            outcome = ask_broker(broker, payload)
        else:
            outcome = run(
                payload, agent=opts["agent"], plan=opts["plan"], worker_id=opts["worker"], policy=policy
            )
    except Exception as e:
        outcome = Outcome(BLOCK, "", f"guard error: {e} {FAIL_CLOSED}\n")
    if outcome.stdout:
        sys.stdout.write(outcome.stdout + "\n")
    if outcome.stderr:
        sys.stderr.write(outcome.stderr)
    sys.stdout.flush()
    return outcome.code


if __name__ == "__main__":
    sys.exit(main())
