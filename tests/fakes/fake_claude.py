"""Fake `claude` (Claude Code) in print mode: its flags, permissions, hooks and output formats.

Like the real CLI: commander-style errors (`error: unknown option '--x'`, exit 1);
`--output-format stream-json` without `--verbose` fails with the real message; no prompt
(argv or piped stdin) fails; `text` prints the result, `json` one result object,
`stream-json` NDJSON (`system/init`, `assistant`, `user` tool results, `result` with
`total_cost_usd`, `usage`, `permission_denials`). Script edits are Write/Edit tool calls,
`delete` and `run` are Bash tool calls, all judged by claude_permissions. `--bare` without
ANTHROPIC_API_KEY ends in an error result (the real text differs by version). SIGTERM exits
143. FAKE_CLAUDE_FAIL=MESSAGE ends the run at once as the real CLI does when logged out (an
`is_error` result with that message, no tool call, exit 1). A PreToolUse `defer` stops the run
with `stop_reason: "tool_deferred"` and exit 0 (the exit code of a deferred run is not
documented).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any

import claude_permissions as perms
from common import (
    COST_USD,
    INPUT_TOKENS,
    OUTPUT_TOKENS,
    Action,
    CliParser,
    Model,
    apply_edit,
    emit,
    fail,
    new_id,
    planner_reply,
    read_piped_stdin,
    record,
    say,
    shell,
)

MODES = ["acceptEdits", "auto", "bypassPermissions", "default", "dontAsk", "plan"]
MODEL = "claude-sonnet-4-5-20250929"
# The tools 2.1.197 offers without --tools (read at a scripted server). It has no LS, MultiEdit
# or TodoWrite; Glob and Grep exist only when --tools names them.
TOOLS = ["Agent", "Bash", "CronCreate", "CronDelete", "CronList", "Edit", "EnterWorktree", "ExitWorktree",
         "NotebookEdit", "Read", "ReportFindings", "ScheduleWakeup", "SendMessage", "Skill", "TaskCreate",
         "TaskGet", "TaskList", "TaskOutput", "TaskStop", "TaskUpdate", "WebFetch", "WebSearch", "Workflow",
         "Write"]  # fmt: skip
WRITE_TOOLS = {"Bash", "Edit", "Write", "NotebookEdit"}


def parser() -> CliParser:
    p = CliParser("claude", exit_code=1, unknown=lambda extra: f"error: unknown option '{extra[0]}'")
    p.add_argument("prompt", nargs="?")
    p.add_argument("-p", "--print", action="store_true")
    p.add_argument("--output-format", choices=["text", "json", "stream-json"], default="text")
    p.add_argument("--input-format", choices=["text", "stream-json"], default="text")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--permission-mode", choices=MODES)
    p.add_argument("--max-turns", type=int)
    p.add_argument("--max-budget-usd", type=float)
    for flag in ("--system-prompt", "--system-prompt-file", "--append-system-prompt",
                 "--append-system-prompt-file", "--settings", "--setting-sources", "--model",
                 "--fallback-model", "--session-id", "--json-schema"):  # fmt: skip
        p.add_argument(flag)
    p.add_argument("-r", "--resume")
    p.add_argument("-c", "--continue", dest="cont", action="store_true")
    for flag in ("--bare", "--fork-session", "--no-session-persistence", "--strict-mcp-config",
                 "--dangerously-skip-permissions", "--include-partial-messages"):  # fmt: skip
        p.add_argument(flag, action="store_true")
    p.add_argument("--tools", nargs="+")
    p.add_argument("--allowedTools", "--allowed-tools", dest="allowed", nargs="+", default=[])
    p.add_argument("--disallowedTools", "--disallowed-tools", dest="disallowed", nargs="+", default=[])
    p.add_argument("--mcp-config", nargs="+")
    p.add_argument("--add-dir", nargs="+")
    return p


def _read(path: str, what: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        fail(f"Error: {what} file not found: {path}")


def load_settings(value: str | None) -> dict[str, Any]:
    """--settings: a JSON file or a JSON string."""
    if not value:
        return {}
    text = value if value.lstrip().startswith("{") else _read(value, "Settings")
    try:
        data = json.loads(text)
    except ValueError as e:
        fail(f"Error: Invalid settings JSON in {value}: {e}")
    if not isinstance(data, dict):
        fail(f"Error: Invalid settings in {value}: not an object")
    return data


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = parser().parse(argv)
    if not args.print:
        fail("fake claude: only print mode (-p) is modelled; the interactive UI needs a TTY")
    if args.output_format == "stream-json" and not args.verbose:
        fail("Error: When using --print, --output-format=stream-json requires --verbose")
    piped = read_piped_stdin()
    prompt = "\n".join(p for p in (piped.strip(), args.prompt or "") if p)
    if not prompt.strip():
        fail("Error: Input must be provided either through stdin or as a prompt argument when using --print")
    settings = load_settings(args.settings)
    system = [
        _read(args.system_prompt_file, "System prompt") if args.system_prompt_file else "",
        args.system_prompt or "",
        args.append_system_prompt or "",
        _read(args.append_system_prompt_file, "System prompt") if args.append_system_prompt_file else "",
    ]
    system_text = "\n\n".join(s for s in system if s)
    mode = args.permission_mode or (settings.get("permissions") or {}).get("defaultMode")
    mode = "bypassPermissions" if args.dangerously_skip_permissions else (mode or "default")
    record("claude", argv, input=f"{system_text}\n\n{prompt}", prompt=prompt, system=system_text,
           mode=mode, settings=args.settings)  # fmt: skip
    return Session(args, settings, mode).run(Model.read(f"{system_text}\n\n{prompt}"))


class Session:
    """One print-mode run: events out, tool calls judged and carried out."""

    def __init__(self, args: Any, settings: dict[str, Any], mode: str) -> None:
        self.args = args
        self.settings = settings
        self.mode = mode
        self.cwd = Path.cwd()
        self.id = new_id()
        self.rules = perms.Rules.build(settings, args.allowed, args.disallowed)
        self.tools = self._tools()
        self.denials: list[dict[str, Any]] = []
        self.turns = 1
        self.start = time.monotonic()
        self.events: list[dict[str, Any]] = []

    def _tools(self) -> list[str]:
        if self.args.tools is None:
            return list(TOOLS)
        names = [t for item in self.args.tools for t in item.replace(",", " ").split()]
        return [t for t in names if t]

    def out(self, event: dict[str, Any]) -> None:
        if self.args.output_format == "stream-json":
            emit(event)

    def assistant(self, content: list[dict[str, Any]]) -> None:
        usage = {"input_tokens": 500, "cache_creation_input_tokens": 0,
                 "cache_read_input_tokens": 0, "output_tokens": 100}  # fmt: skip
        message = {"id": new_id("msg_"), "type": "message", "role": "assistant",
                   "model": MODEL, "content": content, "stop_reason": None, "usage": usage}  # fmt: skip
        self.out({"type": "assistant", "message": message, "parent_tool_use_id": None,
                  "session_id": self.id, "uuid": new_id()})  # fmt: skip

    def tool_result(self, tool_use_id: str, content: str, is_error: bool) -> None:
        block = {"tool_use_id": tool_use_id, "type": "tool_result", "content": content,
                 "is_error": is_error}  # fmt: skip
        self.out({"type": "user", "message": {"role": "user", "content": [block]},
                  "parent_tool_use_id": None, "session_id": self.id, "uuid": new_id()})  # fmt: skip

    def run(self, model: Model) -> int:
        self.out({"type": "system", "subtype": "init", "cwd": str(self.cwd),
                  "session_id": self.id, "tools": self.tools, "mcp_servers": [],
                  "model": self.args.model or MODEL, "permissionMode": self.mode,
                  "slash_commands": [], "apiKeySource": "none", "output_style": "default",
                  "uuid": new_id()})  # fmt: skip
        keyless = not (os.environ.get("ANTHROPIC_API_KEY") or self.settings.get("apiKeyHelper"))
        if self.args.bare and keyless:
            return self.result("Not logged in · Please run /login", error="success")
        if os.environ.get("FAKE_CLAUDE_FAIL"):  # what the real CLI prints, logged out (2.1.197)
            return self.result(os.environ["FAKE_CLAUDE_FAIL"], error="success")
        if self.mode == "plan" or not (set(self.tools) & WRITE_TOOLS):
            text = planner_reply()
            self.assistant([{"type": "text", "text": text}])
            return self.result(text)
        self.assistant([{"type": "text", "text": model.opening()}])
        for action in model.actions():
            if action.kind == "sleep":
                time.sleep(action.seconds)
            elif action.kind == "fail":
                return self.result(f"The task failed (exit {action.code}).",
                                   error="error_during_execution")  # fmt: skip
            else:
                self.turns += 1
                if self.args.max_turns and self.turns > self.args.max_turns:
                    return self.result("Reached max turns", error="error_max_turns")
                deferred = self.call(action)
                if deferred is not None:
                    return self.result("", deferred=deferred)
        text = model.final_text()
        self.assistant([{"type": "text", "text": text}])
        return self.result(text)

    def tool_call(self, action: Action) -> tuple[str, dict[str, Any]]:
        path = str(self.cwd / action.path)
        if action.kind == "shell":
            return "Bash", {"command": action.command, "description": "Run the task's command"}
        if action.op == "delete":
            command = f"rm -f {shlex.quote(action.path)}"
            return "Bash", {"command": command, "description": f"Delete {action.path}"}
        if action.op == "replace":
            old, new = action.value
            return "Edit", {"file_path": path, "old_string": str(old), "new_string": str(new),
                            "replace_all": True}  # fmt: skip
        content = str(action.value)
        if action.op == "append" and Path(path).exists():
            content = Path(path).read_text() + content
        return "Write", {"file_path": path, "content": content}

    def call(self, action: Action) -> dict[str, Any] | None:
        """Make one tool call; the deferred tool use when a hook defers it."""
        name, tool_input = self.tool_call(action)
        use_id = new_id("toolu_")
        self.assistant([{"type": "tool_use", "id": use_id, "name": name, "input": tool_input}])
        decision, reason, tool_input = self.decide(name, tool_input, use_id)
        if decision == "defer":
            return {"id": use_id, "name": name, "input": tool_input}
        if decision != "allow":
            self.denials.append({"tool_name": name, "tool_use_id": use_id, "tool_input": tool_input})
            self.tool_result(use_id, reason or f"Permission to use {name} has been denied.", True)
            return None
        if name == "Bash" and action.kind == "shell":
            code, output = shell(tool_input["command"], self.cwd)
            self.tool_result(use_id, output or f"(exit {code})", code != 0)
        else:
            problem = apply_edit(action, self.cwd)
            self.tool_result(use_id, problem or f"Updated {action.path}", bool(problem))
        return None

    def decide(self, name: str, tool_input: dict[str, Any], use_id: str) -> tuple[str, str, dict[str, Any]]:
        """allow / deny / defer for one tool call, the reason, and the (maybe updated) input."""
        home = Path(os.environ.get("HOME", "/")).expanduser()
        payload = {
            "session_id": self.id,
            "transcript_path": str(home / ".claude" / "projects"
                                   / str(self.cwd).replace("/", "-") / f"{self.id}.jsonl"),
            "cwd": str(self.cwd),
            "permission_mode": self.mode,
            "hook_event_name": "PreToolUse",
            "tool_name": name,
            "tool_input": tool_input,
            "tool_use_id": use_id,
        }  # fmt: skip
        hooks = perms.pre_tool_use(self.settings, payload, self.cwd)
        if name == "Bash" and hooks.updated_input:
            tool_input = {**tool_input, **hooks.updated_input}
        target: str | Path = tool_input["command"] if name == "Bash" else Path(tool_input["file_path"])
        if hooks.decision == "deny":
            return "deny", f"{name} operation blocked by hook:\n- {hooks.reason}", tool_input
        rule = self.rules.verdict(name, target, self.cwd)
        if rule == "deny":
            return "deny", f"Permission to use {name} has been denied by a rule.", tool_input
        if hooks.decision == "defer":
            return "defer", "", tool_input
        if rule == "ask" or hooks.decision == "ask":
            return "deny", f"{name} needs approval, which print mode cannot ask for.", tool_input
        if hooks.decision == "allow" or self.mode == "bypassPermissions":
            return "allow", "", tool_input
        if isinstance(target, Path) and perms.protected(target, self.cwd):
            return "deny", f"{target} is a protected path.", tool_input
        if self.mode == "plan":
            return "deny", "Plan mode is read-only.", tool_input
        if rule == "allow":
            return "allow", "", tool_input
        if name == "Bash" and all(
            perms.read_only(perms.strip_prefixes(p)) for p in perms.split_command(str(target))
        ):
            return "allow", "", tool_input
        if self.mode == "acceptEdits" and (
            name != "Bash"
            or all(p.split()[0] in perms.ACCEPT_EDITS_BASH for p in perms.split_command(str(target)))
        ):
            return "allow", "", tool_input
        return "deny", f"Permission to use {name} has been denied ({self.mode} mode).", tool_input

    def result(self, text: str, *, error: str = "", deferred: dict[str, Any] | None = None) -> int:
        ms = int((time.monotonic() - self.start) * 1000)
        usage = {"input_tokens": INPUT_TOKENS, "cache_creation_input_tokens": 0,
                 "cache_read_input_tokens": 0, "output_tokens": OUTPUT_TOKENS,
                 "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
                 "service_tier": "standard"}  # fmt: skip
        model_usage = {self.args.model or MODEL: {
            "inputTokens": INPUT_TOKENS, "outputTokens": OUTPUT_TOKENS,
            "cacheReadInputTokens": 0, "cacheCreationInputTokens": 0, "webSearchRequests": 0,
            "costUSD": COST_USD, "contextWindow": 200000}}  # fmt: skip
        is_error = bool(error)
        event: dict[str, Any] = {
            "type": "result", "subtype": error or "success", "is_error": is_error,
            "duration_ms": ms, "duration_api_ms": ms, "num_turns": self.turns,
            "stop_reason": "tool_deferred" if deferred else "end_turn",
            "session_id": self.id, "total_cost_usd": COST_USD, "usage": usage,
            "modelUsage": model_usage, "permission_denials": self.denials, "uuid": new_id(),
        }  # fmt: skip
        if error and error != "success":
            event["errors"] = [text]
        else:
            event["result"] = text
        if deferred:
            event["deferred_tool_use"] = deferred
        if self.args.output_format == "stream-json":
            emit(event)
        elif self.args.output_format == "json":
            print(json.dumps(event), flush=True)
        else:
            say(text, err=is_error)
        return 1 if is_error else 0
