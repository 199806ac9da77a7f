"""Fake `codex` (Codex CLI): `codex exec` with its flags, prompt rules, sandbox and JSONL events.

Like the real CLI (codex-rs/exec/src/cli.rs, lib.rs, exec_events.rs): clap-style errors
(exit 2); only `exec` runs headless (the TUI needs a terminal); outside a git repository
without `--skip-git-repo-check` it exits 1; the prompt comes from argv, or from stdin when it
is missing or `-`, with the exact messages and exit 1 when there is none; with a prompt and a
non-terminal stdin, stdin is read to its end and appended as a `<stdin>` block (an open pipe
hangs, as the real one does). `--json` prints `thread.started`, `turn.started`, `item.*`
(`agent_message`, `file_change`, `command_execution`), and `turn.completed{usage}` or
`turn.failed` (exit 1). The sandbox: `read-only` (the default) refuses every edit and declines
commands, and the model only answers (the planner's reply); `workspace-write` allows edits
under -C and --add-dir; commands are not sandboxed here (no network or write jail).

PreToolUse hooks given with `-c hooks.PreToolUse=[...]` (or `-c 'hooks={PreToolUse=[...]}'`)
run before each shell command (`tool_name` "Bash", `tool_input.command` the command line) and
each edit (`apply_patch`, `tool_input.command` the patch), as codex-rs/hooks does
(events/pre_tool_use.rs, engine/discovery.rs, config/hook_config.rs): they are on unless
`features.hooks` (or its old alias `features.codex_hooks`) is false; hooks from `-c` are not
managed, so, untrusted, they are skipped without a word unless `--dangerously-bypass-hook-trust`
is given; the matcher is a regex over the tool name; `timeout` is in seconds (default 600);
exit 2 with a reason on stderr, or exit 0 with `permissionDecision: "deny"` or `decision:
"block"`, blocks the call: as 0.171.0 does, a blocked call emits no JSON item, only an
`ERROR codex_core::tools::router: error=Command blocked by PreToolUse hook: ...` line on stderr
(and the reason in the model's tool output); any other
exit, exit 2 without a reason, `ask`, unknown fields or a timeout are hook failures and the
call goes on. Not modelled: hooks.json and config.toml hooks, persisted trust, execpolicy
`.rules` files. Commands are shown as `/bin/bash -lc ...` unless `-c allow_login_shell=false`
(then `/bin/bash -c`), as the real items do.
"""

from __future__ import annotations

import json
import os
import re
import time
import tomllib
from pathlib import Path
from typing import Any

from common import (
    INPUT_TOKENS,
    OUTPUT_TOKENS,
    Action,
    CliParser,
    Model,
    apply_edit,
    edit_kind,
    emit,
    fail,
    hook_command,
    new_id,
    planner_reply,
    read_mentioned,
    read_piped_stdin,
    record,
    say,
    shell,
    stdin_kind,
)

from boss.core import git

SANDBOXES = ["read-only", "workspace-write", "danger-full-access"]
MODEL = "gpt-5-codex"
HOOK_FIELDS = {"continue", "decision", "reason", "stopReason", "suppressOutput", "systemMessage",
               "hookSpecificOutput"}  # fmt: skip
PRE_TOOL_USE_FIELDS = {"hookEventName", "permissionDecision", "permissionDecisionReason", "updatedInput",
                       "additionalContext"}  # fmt: skip
USAGE = (
    "Usage: codex exec [OPTIONS] [PROMPT]\n       codex exec [OPTIONS] <COMMAND> [ARGS]\n\n"
    "For more information, try '--help'."
)


def parser() -> CliParser:
    p = CliParser(
        "codex exec",
        exit_code=2,
        unknown=lambda extra: f"error: unexpected argument '{extra[0]}' found\n\n{USAGE}",
    )
    p.add_argument("prompt", nargs="?")
    p.add_argument("--json", "--experimental-json", action="store_true")
    p.add_argument("-o", "--output-last-message")
    p.add_argument("--output-schema")
    for flag in ("--skip-git-repo-check", "--ephemeral", "--ignore-user-config",
                 "--ignore-rules", "--oss", "--full-auto"):  # fmt: skip
        p.add_argument(flag, action="store_true")
    p.add_argument("--dangerously-bypass-approvals-and-sandbox", "--yolo", dest="yolo",
                   action="store_true")  # fmt: skip
    p.add_argument("--dangerously-bypass-hook-trust", dest="bypass_hook_trust", action="store_true")
    p.add_argument("--color", choices=["always", "never", "auto"], default="auto")
    p.add_argument("-m", "--model")
    p.add_argument("--local-provider")
    p.add_argument("-p", "--profile")
    p.add_argument("-s", "--sandbox", choices=SANDBOXES)
    p.add_argument("-C", "--cd")
    p.add_argument("--add-dir", action="append", default=[])
    p.add_argument("-i", "--image", action="append", default=[])
    p.add_argument("-c", "--config", action="append", default=[])
    return p


def overrides(items: list[str]) -> dict[str, Any]:
    """-c key=value pairs; the value is parsed as TOML, else taken as a string."""
    found: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            fail(f"Error: Invalid override (missing '='): {item}")
        try:
            found[key.strip()] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            found[key.strip()] = raw
    return found


def session_hooks(args: Any, config: dict[str, Any]) -> list[dict[str, Any]]:
    """The PreToolUse matcher groups given with -c that run: hooks on, and trust bypassed."""
    if False in (config.get("features.hooks"), config.get("features.codex_hooks")):
        return []
    nested = config.get("hooks")
    groups = config.get("hooks.PreToolUse", nested.get("PreToolUse") if isinstance(nested, dict) else None)
    if groups is None:
        return []
    if not isinstance(groups, list) or not all(
        isinstance(g, dict) and isinstance(g.get("hooks", []), list) for g in groups
    ):
        say("warning: failed to parse TOML hooks in /<session-flags>/config.toml", err=True)
        return []
    return groups if args.bypass_hook_trust else []  # untrusted: skipped without a word


def block_reason(code: int | None, stdout: str, stderr: str) -> str | None:
    """Why one PreToolUse hook run blocks the call; None: it does not (or the hook failed)."""
    if code == 2:
        return stderr.strip() or None  # no reason on stderr: a hook failure, not a block
    if code != 0 or not stdout.strip():
        return None
    try:
        data = json.loads(stdout)
    except ValueError:
        return None
    specific = (data.get("hookSpecificOutput") or {}) if isinstance(data, dict) else None
    if not isinstance(specific, dict) or set(data) - HOOK_FIELDS or set(specific) - PRE_TOOL_USE_FIELDS:
        return None  # invalid output: the hook failed, the call goes on
    if specific.get("permissionDecision") == "deny":
        return str(specific.get("permissionDecisionReason") or "blocked by a PreToolUse hook")
    if data.get("decision") == "block":
        return str(data.get("reason") or "blocked by a PreToolUse hook")
    return None  # allow, and "ask" (not supported: a failure), let the call go on


def patch_text(action: Action, root: Path) -> str:
    """The apply_patch input the model sends for an edit."""
    if action.op == "delete":
        body = f"*** Delete File: {action.path}\n"
    elif action.op == "replace":
        old, new = (str(v) for v in action.value)
        lines = [f"-{line}" for line in old.splitlines()] + [f"+{line}" for line in new.splitlines()]
        body = f"*** Update File: {action.path}\n@@\n" + "".join(f"{line}\n" for line in lines)
    else:
        verb = "Update File" if (root / action.path).exists() else "Add File"
        added = "".join(f"+{line}\n" for line in str(action.value).splitlines())
        body = f"*** {verb}: {action.path}\n" + ("@@\n" if verb == "Update File" else "") + added
    return f"*** Begin Patch\n{body}*** End Patch\n"


def resolve_prompt(arg: str | None) -> str:
    """The prompt as codex exec resolves it (argv, `-`, or piped stdin)."""
    if arg is not None and arg != "-":
        if stdin_kind() != "tty":
            say("Reading additional input from stdin...", err=True)
            piped = read_piped_stdin()
            if piped.strip():
                return f"{arg}\n\n<stdin>\n{piped}\n</stdin>"
        return arg
    if stdin_kind() == "tty" and arg != "-":
        fail("No prompt provided. Either specify one as an argument or pipe the prompt into stdin.")
    if arg != "-":
        say("Reading prompt from stdin...", err=True)
    text = read_piped_stdin()
    if not text.strip():
        fail("No prompt provided via stdin.")
    return text


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("exec", "e"):
        fail("Error: stdin is not a terminal")
    args = parser().parse(argv[1:])
    if args.full_auto:
        say("warning: `--full-auto` is deprecated; use `--sandbox workspace-write` instead.", err=True)
    config = overrides(args.config)
    if args.cd:
        try:
            os.chdir(args.cd)
        except OSError as e:
            fail(f"Error: cannot change to {args.cd}: {e}")
    cwd = Path.cwd()
    in_repo = git.git(cwd, "rev-parse", "--is-inside-work-tree", check=False).returncode == 0
    if not (in_repo or args.skip_git_repo_check or args.yolo):
        fail("Not inside a trusted directory and --skip-git-repo-check was not specified.")
    prompt = resolve_prompt(args.prompt)
    sandbox = "danger-full-access" if args.yolo else (
        args.sandbox or str(config.get("sandbox_mode") or "read-only"))  # fmt: skip
    model_input = prompt + read_mentioned(prompt)  # reads are not sandboxed
    record("codex", argv, input=model_input, prompt=prompt, sandbox=sandbox, config=config)
    run = Run(args, sandbox, cwd, session_hooks(args, config))
    run.shell_flag = "-c" if config.get("allow_login_shell") is False else "-lc"
    return run.go(Model.read(model_input))


class Run:
    """One exec run: JSONL (or human) events out, edits checked against the sandbox."""

    def __init__(self, args: Any, sandbox: str, cwd: Path, hooks: list[dict[str, Any]]) -> None:
        self.args = args
        self.sandbox = sandbox
        self.cwd = cwd
        self.hooks = hooks
        self.thread_id = new_id()
        self.turn_id = new_id()
        self.roots = [cwd, *(Path(d).resolve() for d in args.add_dir)]
        self.items = 0
        self.last = ""
        self.shell_flag = "-lc"

    def item_id(self) -> str:
        self.items += 1
        return f"item_{self.items - 1}"

    def out(self, event: dict[str, Any]) -> None:
        if self.args.json:
            emit(event)

    def message(self, text: str) -> None:
        self.last = text
        self.out({"type": "item.completed",
                  "item": {"id": self.item_id(), "type": "agent_message", "text": text}})  # fmt: skip
        if not self.args.json:
            say(f"codex\n{text}", err=True)

    def writable(self, path: Path) -> bool:
        if self.sandbox == "danger-full-access":
            return True
        if self.sandbox == "read-only":
            return False
        path = path.resolve()
        for root in (r.resolve() for r in self.roots):
            if path.is_relative_to(root):
                # .git stays read-only even inside a writable root.
                return ".git" not in path.relative_to(root).parts
        return False

    def go(self, model: Model) -> int:
        self.out({"type": "thread.started", "thread_id": self.thread_id})
        self.out({"type": "turn.started"})
        if self.sandbox == "read-only":
            return self.finish(planner_reply())
        self.message(model.opening())
        for action in model.actions():
            if action.kind == "sleep":
                time.sleep(action.seconds)
            elif action.kind == "fail":
                self.out({"type": "turn.failed",
                          "error": {"message": f"the task failed (exit {action.code})"}})  # fmt: skip
                return 1
            elif action.kind == "shell":
                self.command(action.command)
            else:
                self.edit(action)
        return self.finish(model.final_text())

    def pre_tool_use(self, tool: str, tool_input: dict[str, Any]) -> str | None:
        """Run the PreToolUse hooks that match tool; the reason when one blocks the call."""
        payload = {"session_id": self.thread_id, "turn_id": self.turn_id, "transcript_path": None,
                   "cwd": str(self.cwd), "hook_event_name": "PreToolUse",
                   "model": self.args.model or MODEL, "permission_mode": "default", "tool_name": tool,
                   "tool_input": tool_input, "tool_use_id": new_id("call_")}  # fmt: skip
        reasons = []
        for group in self.hooks:
            matcher = str(group.get("matcher") or "")
            try:
                if matcher not in ("", "*") and not re.fullmatch(matcher, tool):
                    continue
            except re.error:
                continue  # an invalid matcher: its group is skipped with a warning
            for hook in group.get("hooks") or []:
                if isinstance(hook, dict) and hook.get("type") == "command" and hook.get("command"):
                    timeout = float(hook.get("timeout") or 600)
                    reason = block_reason(*hook_command(str(hook["command"]), payload, self.cwd, timeout, {}))
                    reasons += [reason] if reason else []
        return reasons[0] if reasons else None

    def edit(self, action: Action) -> None:
        kind = edit_kind(action, self.cwd)
        target = self.cwd / action.path
        patch = patch_text(action, self.cwd)
        blocked = self.pre_tool_use("apply_patch", {"command": patch})
        if blocked is not None:
            self.blocked(blocked, patch)
            return
        status = "completed" if self.writable(target) and not apply_edit(action, self.cwd) else "failed"
        self.out({"type": "item.completed", "item": {
            "id": self.item_id(), "type": "file_change",
            "changes": [{"path": str(target), "kind": kind}], "status": status}})  # fmt: skip

    def command(self, command: str) -> None:
        item = {"id": self.item_id(), "type": "command_execution",
                "command": f"/bin/bash {self.shell_flag} {command!r}", "aggregated_output": "",
                "exit_code": None, "status": "in_progress"}  # fmt: skip
        blocked = self.pre_tool_use("Bash", {"command": command})
        if blocked is not None:
            self.blocked(blocked, command)
            return
        self.out({"type": "item.started", "item": item})
        code, output = shell(command, self.cwd)
        item = {**item, "aggregated_output": output, "exit_code": code,
                "status": "completed" if code == 0 else "failed"}  # fmt: skip
        self.out({"type": "item.completed", "item": item})

    def blocked(self, reason: str, command: str) -> None:
        """A call the hook blocked: no item at all, one error line on stderr (as 0.171.0 does)."""
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
        say(f"{now} ERROR codex_core::tools::router: error=Command blocked by PreToolUse hook: {reason}."
            f" Command: {command}", err=True)  # fmt: skip

    def finish(self, text: str) -> int:
        self.message(text)
        usage = {"input_tokens": INPUT_TOKENS, "cached_input_tokens": 0,
                 "output_tokens": OUTPUT_TOKENS}  # fmt: skip
        self.out({"type": "turn.completed", "usage": usage})
        if self.args.output_last_message:
            Path(self.args.output_last_message).write_text(self.last)
        if not self.args.json:
            print(self.last, flush=True)
        return 0
