"""The guard: the hook an agent CLI runs before each shell command or file edit of a worker.

`python -P -m worker.autonomy.guard --agent claude|codex|gemini --plan P --worker W` reads the hook's
JSON on stdin (Claude Code PreToolUse, Codex PreToolUse, Gemini CLI BeforeTool), classifies
the command (or the file an edit touches) and answers:

- TIER 1: allow (exit 0; Claude gets `permissionDecision: allow`).
- TIER 2: checkpoint the worktree (`boss.core.checkpoint`), then allow.
- TIER 3: allow once if a person approved exactly this command (`boss approve`); otherwise
  record an approval request and block: exit 2 with the reason on stderr, which blocks in all
  three CLIs and is shown to the model.

It fails closed: any error inside blocks (exit 2; never exit 1, which Claude Code treats as a
non-blocking error), and the command line rendered into hook configs ends in `|| exit 2`, so
even a guard that cannot start blocks. Every decision is a state-log line (ACTION `guard`).
It runs as `python -P -m` (not the click CLI) to start fast, and `-P` keeps a `worker/`
folder in the agent's worktree from shadowing this package.

Under `worker run` the agent (and so this hook) cannot write the plan's files or the git
directory: the worker serves the judgement and its side effects from its own process
(`worker.lifecycle.broker`), and with `BOSS_GUARD_SOCKET` set this hook only forwards its input there
and prints the answer (ask_broker; socket and json only, to stay fast). Without it, it judges
by itself, as `worker guard` run by hand does.
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

    from boss.core.paths import PlanPaths
    from worker.autonomy.classify import Decision

ALLOW, BLOCK = 0, 2
AGENTS = ("claude", "codex", "gemini", "opencode")
SHELL_TOOLS = frozenset({"Bash", "run_shell_command", "shell", "local_shell", "exec_command"})
EDIT_TOOLS = frozenset({"Edit", "Write", "MultiEdit", "NotebookEdit", "write_file", "replace",
                        "apply_patch", "edit"})  # fmt: skip
PATH_KEYS = ("file_path", "notebook_path", "absolute_path", "path")
PATCH_HEADERS = {"*** Add File: ": "write", "*** Update File: ": "write",
                 "*** Delete File: ": "delete", "*** Move to: ": "write"}  # fmt: skip
# `[cd DIR &&] apply_patch <<'EOF'` ... `EOF`: a patch Codex's shell tool applies itself. ASCII
# blanks only, and a folder of plain characters or quotes without expansions: anything else
# (a `#` that makes the rest a comment, an expansion) could make bash run the body as commands.
PATCH_HEREDOC = (
    r"[ \t\n]*(?:cd[ \t]+(?P<dir>'[^'\n]*'|\"[^\"$`\\\n]*\"|[A-Za-z0-9_./@%+=:,-][A-Za-z0-9_./@%+=:,#-]*)"
    r"[ \t]*&&[ \t]*)?(?:apply_patch|applypatch)[ \t]*<<[ \t]*"
    r"(?P<quote>['\"]?)(?P<tag>[A-Za-z_][A-Za-z0-9_]*)(?P=quote)[ \t]*\n(?P<body>.*?)\n(?P=tag)[ \t\n]*"
)


SOCKET_ENV = "BOSS_GUARD_SOCKET"  # the worker's broker (worker.lifecycle.broker), when it serves the guard
MAX_MESSAGE = 16 << 20  # bytes of one framed message: a Write call carries the whole file
# Under the hooks' own 120 s (worker.agents.enforce.HOOK_TIMEOUT), past which a CLI lets the call through.
BROKER_TIMEOUT = 100.0
FAIL_CLOSED = "(the command is blocked: the guard fails closed)"


class Outcome:
    """What the hook process answers: exit code, stdout (JSON for the CLI) and stderr."""

    __slots__ = ("code", "stderr", "stdout")

    def __init__(self, code: int, stdout: str = "", stderr: str = "") -> None:
        self.code, self.stdout, self.stderr = code, stdout, stderr


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
) -> Outcome:
    """Judge one hook call; any error blocks (fail closed)."""
    try:
        return _Guard(agent, plan, worker_id, policy, dict(os.environ if env is None else env)).run(payload)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        reason = f"guard error: {type(e).__name__}: {first}" if first else f"guard error: {type(e).__name__}"
        return Outcome(BLOCK, "", f"{reason} {FAIL_CLOSED}\n")


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


def _short(text: str, limit: int = 160) -> str:
    # A quoted command keeps its runs of spaces: the state log shows what ran, exactly.
    from boss.core.statelog import excerpt

    return excerpt(text, limit)


class _Guard:
    def __init__(
        self, agent: str, plan: str, worker_id: str, policy: Path | None, env: dict[str, str]
    ) -> None:
        if agent not in AGENTS:
            msg = f"--agent {agent!r}: must be one of {', '.join(AGENTS)}"
            raise ValueError(msg)
        self.agent, self.plan, self.worker_id = agent, plan, worker_id
        self.policy_file, self.env = policy, env

    def run(self, text: str) -> Outcome:
        payload = json.loads(text)
        if not isinstance(payload, dict):
            msg = "the hook input is not a JSON object"
            raise ValueError(msg)
        tool = str(payload.get("tool_name") or "")
        tool_input = payload.get("tool_input") or {}
        if not isinstance(tool_input, dict):
            tool_input = {"command": tool_input}
        worktree, repo = self.locate(payload)
        from boss.core.paths import PlanPaths

        paths = PlanPaths.of(repo, self.plan)
        cwd = Path(str(payload.get("cwd") or worktree))
        subject, decision = self.judge(tool, tool_input, cwd, worktree, repo, paths)
        return self.act(subject, decision, worktree, cwd, paths)

    def locate(self, payload: dict[str, object]) -> tuple[Path, Path]:
        """The worktree (BOSS_WORKTREE, else the hook's cwd's checkout) and the main repository."""
        worktree_env, repo_env = self.env.get("BOSS_WORKTREE"), self.env.get("BOSS_REPO")
        if worktree_env and repo_env:
            return Path(worktree_env), Path(repo_env)
        from boss.core import git

        start = Path(worktree_env or str(payload.get("cwd") or Path.cwd()))
        worktree = Path(worktree_env) if worktree_env else git.toplevel(start)
        return worktree, Path(repo_env) if repo_env else git.main_root(worktree)

    def judge(
        self,
        tool: str,
        tool_input: dict[str, object],
        cwd: Path,
        worktree: Path,
        repo: Path,
        paths: PlanPaths,
    ) -> tuple[str, Decision]:
        from worker.autonomy import classify as cl
        from worker.autonomy.context import make_context
        from worker.autonomy.policy_file import load_policy

        overlay = self.policy_file or paths.agent_config_dir(self.worker_id) / "policy.yaml"
        policy = load_policy(repo, [overlay])
        ctx = make_context(worktree, self.env)
        if tool in SHELL_TOOLS:
            command = tool_input.get("command")
            # Only Codex applies a patch sent through its shell tool itself (argv
            # `["apply_patch", PATCH]` or a bare here-document); any other CLI runs it with bash.
            shell_patch = patch_in_shell(command) if self.agent == "codex" else None
            if isinstance(command, list):
                import shlex

                command = shlex.join(str(c) for c in command)
            if not isinstance(command, str):
                return tool, cl.Decision(3, f"{tool}: no command to judge", "cannot-parse")
            folder = tool_input.get("dir_path") or tool_input.get("directory")
            run_cwd = cwd / str(folder) if folder else cwd
            if shell_patch is None:
                return command, cl.classify(command, run_cwd, worktree, policy, context=ctx)
            folder, patch = shell_patch
            tool, tool_input, cwd = "apply_patch", {"input": patch}, run_cwd / folder if folder else run_cwd
        if tool in EDIT_TOOLS:
            targets = _edit_targets(tool_input)
            subject = f"{tool} {' '.join(p for p, _ in targets)}".strip()
            if not targets:
                return subject, cl.Decision(3, f"{tool}: cannot tell which file it changes", "cannot-parse")
            decisions = [
                cl.classify_path(p, cwd, worktree, policy, tool=tool, kind=k, context=ctx) for p, k in targets
            ]
            top = max(decisions, key=lambda d: d.tier)
            parts = tuple(p for d in decisions for p in d.parts)
            return subject, cl.Decision(top.tier, top.reason, top.rule, parts)
        return tool, cl.Decision(1, f"{tool}: not a shell or file-changing tool", "other-tool")

    def act(self, subject: str, decision: Decision, worktree: Path, cwd: Path, paths: PlanPaths) -> Outcome:
        why = f"{_short(subject)} (rule {decision.rule})"
        if decision.tier == 1:
            self.log(paths, f"tier1 allowed: {why}")
            return self.allow(f"TIER 1: {decision.reason}")
        message = f"boss checkpoint before: {_short(subject, 200)}"
        if decision.tier == 2:
            cp = self.checkpoint(worktree, message)
            self.log(paths, f"tier2 allowed after checkpoint {cp}: {why}", cp)
            return self.allow(f"TIER 2 (checkpoint {cp}): {decision.reason}")
        from boss.core import approvals

        folder = paths.approvals_dir
        used = approvals.consume(folder, self.worker_id, subject)
        if used is not None:
            cp = self.checkpoint(worktree, message)
            self.log(paths, f"tier3 allowed once by approval {used.id} after checkpoint {cp}: {why}", cp)
            return self.allow(f"TIER 3 approved by a person ({used.id}): {decision.reason}")
        refused = approvals.denied(folder, self.worker_id, subject)
        if refused is not None:
            self.log(paths, f"tier3 blocked (denied as {refused.id}): {why}", f"approvals/{refused.id}.json")
            note = f": {refused.decision_reason}" if refused.decision_reason else ""
            return self.block(
                f"BLOCKED (TIER 3): {decision.reason}. A person already denied this command"
                f" ({refused.id}){note}. Do not retry it or work around it."
            )
        req = approvals.request(
            folder, plan=self.plan, worker=self.worker_id, command=subject, reason=decision.reason,
            rule=decision.rule, tier=decision.tier, cwd=str(cwd),
        )  # fmt: skip
        self.log(paths, f"tier3 blocked: {why}; approval request {req.id}", f"approvals/{req.id}.json")
        return self.block(
            f"BLOCKED (TIER 3): {decision.reason}. It needs a person's approval: request {req.id} is"
            f" recorded (`boss approve {req.id} --plan {self.plan}`); once approved, exactly this"
            " command runs once on a later run. Do not try another way to do the same thing:"
            " continue without it, or stop and say what you need."
        )

    def checkpoint(self, worktree: Path, message: str) -> str:
        """Checkpoint the worktree (imported here: git and subprocess only on this path)."""
        from boss.core import checkpoint

        return checkpoint.take(worktree, self.plan, self.worker_id, message).ref

    def allow(self, reason: str) -> Outcome:
        if self.agent == "claude":
            out = {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "allow",
                                          "permissionDecisionReason": reason}}  # fmt: skip
            return Outcome(ALLOW, json.dumps(out))
        if self.agent == "gemini":
            return Outcome(ALLOW, "{}")
        return Outcome(ALLOW)  # Codex rejects unknown fields and "ask": say nothing

    def block(self, reason: str) -> Outcome:
        return Outcome(BLOCK, "", reason + "\n")

    def log(self, paths: PlanPaths, result: str, artifacts: str = "") -> None:
        import time

        from boss.core import statelog

        strategy, iteration = self.env.get("BOSS_STRATEGY"), self.env.get("BOSS_ITERATION")
        iteration_id = (
            f"{self.worker_id}.s{strategy}.i{iteration}" if strategy and iteration else self.worker_id
        )
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        statelog.append(paths.log, statelog.Event(now, "RUNNING", iteration_id, "guard", result, artifacts))


def _edit_targets(tool_input: dict[str, object]) -> list[tuple[str, str]]:
    """(path, write|delete) of every file a file tool changes; patches name theirs in headers."""
    found: list[tuple[str, str]] = []
    for key in PATH_KEYS:
        value = tool_input.get(key)
        if isinstance(value, str) and value:
            found.append((value, "write"))
    if found:
        return found
    texts = [v for v in tool_input.values() if isinstance(v, str)]
    texts += [i for v in tool_input.values() if isinstance(v, list) for i in v if isinstance(i, str)]
    for text in texts:
        for line in text.splitlines():
            for header, kind in PATCH_HEADERS.items():
                if line.startswith(header) and line[len(header) :].strip():
                    found.append((line[len(header) :].strip(), kind))
    return found


def patch_in_shell(command: object) -> tuple[str, str] | None:
    """(folder, patch) when the command is only a patch Codex applies itself, else None.

    The forms: the argv `["apply_patch", PATCH]`, and the line `[cd DIR &&] apply_patch <<'EOF'`
    ... `EOF`. Anything more (a second command, a here-document that expands `$` or backquotes,
    a body that ends the here-document early, a folder with expansions or a `#`) is not a bare
    patch: None, and the line is judged as the shell command it is.
    """
    if isinstance(command, list):
        bare = len(command) == 2 and command[0] in ("apply_patch", "applypatch")
        return ("", str(command[1])) if bare and isinstance(command[1], str) else None
    if not isinstance(command, str) or ("apply_patch" not in command and "applypatch" not in command):
        return None
    import re

    found = re.fullmatch(PATCH_HEREDOC, command, re.S | re.ASCII)
    if found is None:
        return None
    tag, body, folder = found["tag"], found["body"], found["dir"] or ""
    if not found["quote"] and any(c in body for c in "$`\\"):
        return None  # an unquoted here-document expands: it may run more than a patch
    if any(line.strip() == tag for line in body.splitlines()):
        return None  # the here-document ends early: what follows would run as commands
    if folder.startswith("#") or re.search(r"[$`\\*?\[{~]", folder):
        return None
    return folder[1:-1] if folder[:1] in "'\"" and len(folder) > 1 else folder, body


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
