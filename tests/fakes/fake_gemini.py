"""Fake `gemini` (Gemini CLI) headless: its flags, folder trust, policy engine and stream-json.

Like the real CLI (packages/cli/src/config/config.ts, core/src/output/types.ts, policy
engine docs): yargs-style errors (`Unknown argument: x`, exit 1); `-p/--prompt` is appended
to piped stdin; no input fails (exit 42); an untrusted folder fails unless `--skip-trust` or
GEMINI_CLI_TRUST_WORKSPACE=true (exit 55, the code is not documented); `--approval-mode
plan` only answers (the planner's reply). Tools: edits are `write_file` / `replace`, `run` and
`delete` are `run_shell_command`. Decisions follow the policy engine: built-in defaults at
tier 1 (read tools allowed; edits allowed in autoEdit and yolo; shell asks; yolo allows
everything) and the `--policy` TOML files at the user tier 4 (`toolName`, `modes`,
`interactive`, `commandPrefix`, `commandRegex`, `argsPattern`, `decision`, `priority`,
`denyMessage`, `allowRedirection`); the highest priority wins; `ask_user` is a denial
headless; chained commands are split on && || ; and every part must be allowed.
`--output-format stream-json` prints init, message, tool_use, tool_result and result{stats}.

BeforeTool hooks (docs/hooks/reference.md) come from the system settings file
(GEMINI_CLI_SYSTEM_SETTINGS_PATH, skipped as 0.61.0 does unless it and every parent folder are
owned by root and not group/other-writable), ~/.gemini/settings.json and the workspace's
.gemini/settings.json, all of them; none run when the settings that win say
`hooksConfig.enabled: false`. As measured on 0.61.0, they run before the policy: the
matcher is a regex over the tool name, `timeout` is in milliseconds (default 60000), stdin is
{session_id, transcript_path, cwd, hook_event_name, timestamp, tool_name, tool_input}; exit 2
blocks with stderr as the reason, exit 0 with `decision` "deny" or "block" blocks with its
`reason`; any other exit or a timeout is a warning and the call goes on. Not modelled: other
events, `sequential`, `continue: false`, rewritten tool input.
"""

from __future__ import annotations

import json
import os
import re
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import (
    INPUT_TOKENS,
    OUTPUT_TOKENS,
    Action,
    CliParser,
    Model,
    apply_edit,
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
)

MODES = {"default": "default", "auto_edit": "autoEdit", "yolo": "yolo", "plan": "plan"}
READ_TOOLS = {"read_file", "read_many_files", "glob", "search_file_content", "list_directory"}
EDIT_TOOLS = {"write_file", "replace"}


def _unknown(extra: list[str]) -> str:
    names = [e.lstrip("-").split("=")[0] for e in extra]
    noun = "argument" if len(names) == 1 else "arguments"
    return f"Unknown {noun}: {', '.join(names)}"


def parser() -> CliParser:
    p = CliParser("gemini", exit_code=1, unknown=_unknown)
    p.add_argument("query", nargs="*")
    p.add_argument("-p", "--prompt")
    p.add_argument("-i", "--prompt-interactive")
    p.add_argument("-m", "--model")
    p.add_argument("-o", "--output-format", choices=["text", "json", "stream-json"],
                   default="text")  # fmt: skip
    p.add_argument("--approval-mode", choices=list(MODES))
    for flag in ("--skip-trust", "--list-sessions", "--raw-output", "--accept-raw-output-risk"):
        p.add_argument(flag, action="store_true")
    p.add_argument("-y", "--yolo", action="store_true")
    p.add_argument("-s", "--sandbox", action="store_true")
    p.add_argument("-d", "--debug", action="store_true")
    p.add_argument("-w", "--worktree", action="store_true")
    for flag in ("--policy", "--admin-policy", "--include-directories"):
        p.add_argument(flag, action="append", default=[])
    p.add_argument("--allowed-tools", nargs="+", default=[])
    p.add_argument("--allowed-mcp-server-names", nargs="+", default=[])
    p.add_argument("-e", "--extensions", nargs="+", default=[])
    p.add_argument("--session-id")
    p.add_argument("-r", "--resume")
    return p


def load_policies(paths: list[str]) -> list[dict[str, Any]]:
    """The [[rule]] tables of --policy files (or of the *.toml files in a folder)."""
    rules: list[dict[str, Any]] = []
    for item in paths:
        path = Path(item)
        files = sorted(path.glob("*.toml")) if path.is_dir() else [path]
        for file in files:
            try:
                data = tomllib.loads(file.read_text())
            except (OSError, tomllib.TOMLDecodeError) as e:
                fail(f"Error loading policy file {file}: {e}", 52)
            rules.extend(r for r in data.get("rule", []) if isinstance(r, dict))
    return rules


def before_tool_hooks(cwd: Path) -> list[dict[str, Any]]:
    """The BeforeTool matcher groups of every settings file (system settings win on `enabled`)."""
    files = [cwd / ".gemini" / "settings.json", Path.home() / ".gemini" / "settings.json"]
    system = os.environ.get("GEMINI_CLI_SYSTEM_SETTINGS_PATH")
    if system and _secure(Path(system)):
        files.append(Path(system))
    elif system:
        say(
            f"Security Warning: Skipping system settings file {system}: Parent directory is insecure",
            err=True,
        )
    groups: list[dict[str, Any]] = []
    enabled = True
    for file in files:  # lowest precedence first
        if not file.is_file():
            continue
        try:
            settings = json.loads(file.read_text())
        except (OSError, ValueError) as e:
            fail(f"Error in {file}: {e}", 52)
        enabled = (settings.get("hooksConfig") or {}).get("enabled", enabled)
        groups += [g for g in (settings.get("hooks") or {}).get("BeforeTool") or [] if isinstance(g, dict)]
    return groups if enabled is not False else []


def _secure(path: Path) -> bool:
    """What 0.61.0 asks of a system settings file: it and its parents root-owned, not g/o-writable."""
    for item in [path, *path.resolve().parents]:
        try:
            st = item.stat()
        except OSError:
            return False
        if st.st_uid != 0 or st.st_mode & 0o022:
            return False
    return True


def main(argv: list[str]) -> int:
    args = parser().parse(argv)
    if args.prompt is not None and args.query:
        fail("Cannot use both a positional prompt and the --prompt (-p) flag together")
    if args.yolo and args.approval_mode:
        fail("Cannot use both --yolo (-y) and --approval-mode together. "
             "Use --approval-mode=yolo instead.")  # fmt: skip
    mode = MODES["yolo" if args.yolo else args.approval_mode or "default"]
    piped = read_piped_stdin()
    given = args.prompt if args.prompt is not None else " ".join(args.query)
    prompt = "\n\n".join(p for p in (piped.strip(), given) if p)
    if not prompt.strip():
        fail("No input provided via stdin. Input can be provided by piping data into gemini "
             "or using the --prompt option.", 42)  # fmt: skip
    if not (args.skip_trust or os.environ.get("GEMINI_CLI_TRUST_WORKSPACE") == "true"):
        fail("Gemini CLI is not running in a trusted directory. To proceed, either use "
             "`--skip-trust`, set the `GEMINI_CLI_TRUST_WORKSPACE=true` environment variable, "
             "or trust this directory in interactive mode.", 55)  # fmt: skip
    rules = load_policies(args.policy)
    roots = [Path.cwd(), *(Path(d) for item in args.include_directories for d in item.split(","))]
    model_input = prompt + read_mentioned(prompt, roots)
    record("gemini", argv, input=model_input, prompt=prompt, mode=mode, policies=args.policy)
    return Gemini(args, mode, rules, before_tool_hooks(Path.cwd())).run(prompt, Model.read(model_input))


def _iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _hook_block(code: int | None, stdout: str, stderr: str) -> str | None:
    """Why one BeforeTool hook run blocks the call (None: it does not)."""
    if code == 2:
        return stderr.strip() or "Blocked by a BeforeTool hook"
    if code != 0 or not stdout.strip():
        return None
    try:
        data = json.loads(stdout)
    except ValueError:
        return None
    if isinstance(data, dict) and data.get("decision") in ("deny", "block"):
        return str(data.get("reason") or "Blocked by a BeforeTool hook")
    return None


def _listify(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


class Gemini:
    """One headless run: policy decisions, tool calls, stream-json events."""

    def __init__(
        self, args: Any, mode: str, rules: list[dict[str, Any]], hooks: list[dict[str, Any]]
    ) -> None:
        self.args = args
        self.mode = mode
        self.rules = rules
        self.hooks = hooks
        self.session = new_id()
        self.cwd = Path.cwd()
        self.calls = 0
        self.start = time.monotonic()
        self.text: list[str] = []

    def out(self, event: dict[str, Any]) -> None:
        if self.args.output_format == "stream-json":
            emit({"timestamp": _iso(), **event})

    def assistant(self, text: str) -> None:
        self.text.append(text)
        self.out({"type": "message", "role": "assistant", "content": text, "delta": True})

    def run(self, prompt: str, model: Model) -> int:
        self.out({"type": "init", "session_id": self.session, "model": self.args.model or "gemini-2.5-pro"})
        self.out({"type": "message", "role": "user", "content": prompt})
        if self.mode == "plan":
            self.assistant(planner_reply())
            return self.result()
        self.assistant(model.opening() + "\n")
        for action in model.actions():
            if action.kind == "sleep":
                time.sleep(action.seconds)
            elif action.kind == "fail":
                return self.result(f"the task failed (exit {action.code})")
            else:
                self.tool(action)
        self.assistant(model.final_text())
        return self.result()

    def tool(self, action: Action) -> None:
        self.calls += 1
        tool_id = f"{action.kind}-{self.calls}-{new_id()[:8]}"
        if action.kind == "shell" or action.op == "delete":
            command = action.command or f"rm -f {action.path}"
            name, params = "run_shell_command", {"command": command}
        elif action.op == "replace":
            old, new = action.value
            name = "replace"
            params = {"file_path": str(self.cwd / action.path), "old_string": old, "new_string": new}
        else:
            name, params = "write_file", {"file_path": str(self.cwd / action.path),
                                          "content": str(action.value)}  # fmt: skip
        self.out({"type": "tool_use", "tool_name": name, "tool_id": tool_id, "parameters": params})
        blocked = self.before_tool(name, params)  # hooks run before the policy (0.61.0)
        allowed, message = (False, blocked) if blocked is not None else self.decide(name, params)
        if not allowed:
            self.out({"type": "tool_result", "tool_id": tool_id, "status": "error",
                      "error": {"type": "permission_denied", "message": message}})  # fmt: skip
            return
        if action.kind == "shell":
            code, output = shell(action.command, self.cwd)
            status = "success" if code == 0 else "error"
        else:
            problem = apply_edit(action, self.cwd)
            status, output = ("error", problem) if problem else ("success", "OK")
        self.out({"type": "tool_result", "tool_id": tool_id, "status": status, "output": output})

    def before_tool(self, tool: str, params: dict[str, Any]) -> str | None:
        """Run the BeforeTool hooks that match tool; the reason when one blocks the call."""
        payload = {"session_id": self.session, "transcript_path": str(Path.home() / ".gemini" / "tmp"
                   / f"{self.session}.json"), "cwd": str(self.cwd), "hook_event_name": "BeforeTool",
                   "timestamp": _iso(), "tool_name": tool, "tool_input": params}  # fmt: skip
        for group in self.hooks:
            matcher = str(group.get("matcher") or "")
            try:
                if matcher not in ("", "*") and not re.fullmatch(matcher, tool):
                    continue
            except re.error:
                continue
            for hook in group.get("hooks") or []:
                if not isinstance(hook, dict) or hook.get("type", "command") != "command":
                    continue
                timeout = float(hook.get("timeout") or 60000) / 1000
                env = {"GEMINI_PROJECT_DIR": str(self.cwd), "GEMINI_SESSION_ID": self.session}
                code, stdout, stderr = hook_command(str(hook.get("command")), payload, self.cwd, timeout, env)
                reason = _hook_block(code, stdout, stderr)
                if reason is not None:
                    return reason
                if code not in (0, 2):
                    say(
                        f"Warning: hook {hook.get('name') or hook.get('command')} failed (exit {code})",
                        err=True,
                    )
        return None

    def decide(self, tool: str, params: dict[str, Any]) -> tuple[bool, str]:
        if tool != "run_shell_command":
            return self._one(tool, params, "")
        parts = [p.strip() for p in re.split(r"&&|\|\||;", params["command"]) if p.strip()]
        for part in parts or [""]:
            allowed, message = self._one(tool, {**params, "command": part}, part)
            if not allowed:
                return allowed, message
        return True, ""

    def _one(self, tool: str, params: dict[str, Any], command: str) -> tuple[bool, str]:
        # (priority, decision, message); default policies are tier 1, --policy files tier 4.
        options: list[tuple[float, str, str]] = []
        if tool in READ_TOOLS:
            options.append((1.050, "allow", ""))
        if tool in EDIT_TOOLS:
            ok = self.mode in ("autoEdit", "yolo")
            options.append((1.015, "allow", "") if ok else (1.010, "ask_user", ""))
        if tool == "run_shell_command":
            options.append((1.010, "ask_user", ""))
        if self.mode == "yolo":
            options.append((1.998, "allow", ""))
        for rule in self.rules:
            if self._matches(rule, tool, params, command):
                decision = str(rule.get("decision", "ask_user"))
                if decision == "allow" and ">" in command and not rule.get("allowRedirection"):
                    decision = "ask_user"
                priority = 4 + float(rule.get("priority", 0)) / 1000
                options.append((priority, decision, str(rule.get("denyMessage") or "")))
        if not options:
            return False, f"Tool {tool} is not allowed."
        _, decision, message = max(options, key=lambda o: o[0])
        if decision == "allow":
            return True, ""
        return False, message or f"Tool execution for {tool} was denied by policy ({decision})."

    def _matches(self, rule: dict[str, Any], tool: str, params: dict[str, Any], cmd: str) -> bool:
        names = _listify(rule.get("toolName"))
        if names and not any(n == tool or (n.endswith("*") and tool.startswith(n[:-1])) for n in names):
            return False
        if rule.get("modes") and self.mode not in _listify(rule.get("modes")):
            return False
        if rule.get("interactive") is True:
            return False
        prefixes = _listify(rule.get("commandPrefix"))
        if prefixes and not any(cmd == p or cmd.startswith(p + " ") for p in prefixes):
            return False
        if rule.get("commandRegex") and not re.match(str(rule["commandRegex"]), cmd):
            return False
        stable = json.dumps(params, sort_keys=True)
        return not (rule.get("argsPattern") and not re.search(str(rule["argsPattern"]), stable))

    def result(self, error: str = "") -> int:
        stats = {"total_tokens": INPUT_TOKENS + OUTPUT_TOKENS, "input_tokens": INPUT_TOKENS,
                 "output_tokens": OUTPUT_TOKENS, "cached": 0, "input": INPUT_TOKENS,
                 "duration_ms": int((time.monotonic() - self.start) * 1000),
                 "tool_calls": self.calls}  # fmt: skip
        event: dict[str, Any] = {"type": "result", "status": "error" if error else "success",
                                 "stats": stats}  # fmt: skip
        if error:
            event["error"] = {"type": "Error", "message": error}
        self.out(event)
        if self.args.output_format == "json":
            print(json.dumps({"session_id": new_id(), "response": "".join(self.text),
                              "stats": stats, **({"error": event["error"]} if error else {})}))  # fmt: skip
        elif self.args.output_format == "text":
            say("".join(self.text))
        return 1 if error else 0
