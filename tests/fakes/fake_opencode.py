"""Fake `opencode` (OpenCode): `opencode run` with its flags, permissions and JSON events.

Like the real CLI (packages/opencode/src/cli/cmd/run.ts): yargs-style errors (exit 1); only
`run` is headless; the message words are joined, each one holding a space wrapped in double
quotes with its quotes escaped, and piped stdin is read to its end and appended (an open pipe
hangs); an empty message fails ("You must provide a message or a command"); `--dir` changes
directory; `--file` attaches files (missing: exit 1). Permissions come from OPENCODE_CONFIG,
the project's opencode.json, OPENCODE_CONFIG_CONTENT and OPENCODE_PERMISSION, after the
defaults (everything allowed, external_directory and doom_loop ask): `{tool: action}` or
`{tool: {pattern: action}}`, `*` and `?` wildcards, last match wins; bash commands are split
on && || ; | and checked part by part; edits outside --dir also need external_directory.
`ask` is rejected in `run` unless `--auto`. Plugins named in the configs' `plugin` lists
(file URLs) run before each tool call, as OpenCode runs them: their `tool.execute.before` hook
(run here through node, so boss's real guard plugin runs) gets `{tool}` and `{args}`, and a
throw fails the call with the thrown message. The `plan` agent cannot edit (it only answers:
the planner's reply). `--format json` prints step_start, tool_use, text, step_finish (cost and
tokens) and error; like the real one (1.18.33), no `done` event.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from common import (
    Action,
    CliParser,
    Model,
    apply_edit,
    emit,
    fail,
    new_id,
    now_ms,
    planner_reply,
    read_piped_stdin,
    record,
    say,
    shell,
    snapshot,
)

DEFAULTS: list[tuple[str, str, str]] = [
    ("*", "*", "allow"),
    ("external_directory", "*", "ask"),
    ("doom_loop", "*", "ask"),
    ("read", "*.env", "deny"),
]
RUN_DENIED = [("question", "*", "deny"), ("plan_enter", "*", "deny"), ("plan_exit", "*", "deny")]
PLAN_AGENT = [("edit", "*", "deny"), ("edit", ".opencode/plans/*.md", "allow")]
# Step 1 (tool calls) and step 2 (the answer); together: $0.0123, 1000 in, 200 out.
STEPS = [
    (0.01, {"input": 500, "output": 100, "reasoning": 20, "cache": {"read": 100, "write": 0}}),
    (0.0023, {"input": 400, "output": 80, "reasoning": 0, "cache": {"read": 0, "write": 0}}),
]
TOTAL = (0.0123, {"input": 900, "output": 180, "reasoning": 20, "cache": {"read": 100, "write": 0}})


def _unknown(extra: list[str]) -> str:
    names = [e.lstrip("-").split("=")[0] for e in extra]
    return f"Unknown argument{'s' if len(names) > 1 else ''}: {', '.join(names)}"


def parser() -> CliParser:
    p = CliParser("opencode run", exit_code=1, unknown=_unknown)
    p.add_argument("message", nargs="*")
    for flag in ("--command", "--model", "--agent", "--title", "--attach", "--password",
                 "--username", "--dir", "--variant", "--session", "--port"):  # fmt: skip
        short = {"--model": "-m", "--password": "-p", "--username": "-u", "--session": "-s"}
        p.add_argument(*([short[flag]] if flag in short else []), flag)
    p.add_argument("--format", choices=["default", "json"], default="default")
    p.add_argument("-f", "--file", nargs="+", action="extend", default=[])
    for flag in ("--continue", "--fork", "--share", "--thinking", "--auto", "--yolo",
                 "--dangerously-skip-permissions", "--print-logs"):  # fmt: skip
        p.add_argument(*(["-c"] if flag == "--continue" else []), flag, action="store_true")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARN", "ERROR"])
    return p


def quote_words(words: list[str]) -> str:
    """run.ts: a word holding a space is wrapped in double quotes, its quotes escaped."""
    return " ".join('"' + w.replace('"', '\\"') + '"' if " " in w else w for w in words)


def unquote_for_model(message: str) -> str:
    """What the model makes of a quoted message: the text inside, quotes unescaped."""
    if message.startswith('"') and message.endswith('"'):
        return message[1:-1].replace('\\"', '"')
    return message


def _jsonc(text: str) -> Any:
    text = re.sub(r"^\s*//.*$", "", text, flags=re.M)
    return json.loads(text)


def permission_rules() -> list[tuple[str, str, str]]:
    """The permission rules, in order, from the config files and the environment."""
    sources: list[Any] = []
    if os.environ.get("OPENCODE_CONFIG"):
        sources.append(_jsonc(Path(os.environ["OPENCODE_CONFIG"]).read_text()).get("permission"))
    project = Path("opencode.json")
    if project.is_file():
        sources.append(_jsonc(project.read_text()).get("permission"))
    if os.environ.get("OPENCODE_CONFIG_CONTENT"):
        sources.append(_jsonc(os.environ["OPENCODE_CONFIG_CONTENT"]).get("permission"))
    if os.environ.get("OPENCODE_PERMISSION"):
        sources.append(_jsonc(os.environ["OPENCODE_PERMISSION"]))
    rules = list(DEFAULTS)
    for source in sources:
        if isinstance(source, str):
            rules.append(("*", "*", source))
        for tool, value in (source or {}).items() if isinstance(source, dict) else []:
            if isinstance(value, str):
                rules.append((tool, "*", value))
            else:
                rules.extend((tool, pattern, action) for pattern, action in value.items())
    return rules


def plugins() -> list[str]:
    """The plugin file URLs of every config source, in order."""
    sources = [os.environ.get("OPENCODE_CONFIG") and Path(os.environ["OPENCODE_CONFIG"]).read_text(),
               Path("opencode.json").read_text() if Path("opencode.json").is_file() else None,
               os.environ.get("OPENCODE_CONFIG_CONTENT")]  # fmt: skip
    return [
        p for text in sources if text for p in _jsonc(text).get("plugin") or [] if p.startswith("file://")
    ]


# Loads a plugin module, calls each exported plugin, and runs its tool.execute.before hook.
NODE_HOOK = """
const [url, tool, args, directory] = process.argv.slice(1)
const mod = await import(url)
for (const plugin of Object.values(mod)) {
  const hooks = await plugin({ directory, worktree: directory })
  const before = hooks && hooks["tool.execute.before"]
  if (before) await before({ tool, sessionID: "ses_fake", callID: "call_fake" }, { args: JSON.parse(args) })
}
"""


def plugin_error(tool: str, args: dict[str, Any], cwd: Path) -> str | None:
    """The message a plugin's tool.execute.before threw, or None when every plugin let it run."""
    for url in plugins():
        proc = subprocess.run(["node", "--input-type=module", "-e", NODE_HOOK, url, tool, json.dumps(args), str(cwd)],
                              capture_output=True, text=True, check=False)  # fmt: skip
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("Error: ")]
            return lines[0][len("Error: ") :] if lines else proc.stderr.strip()
    return None


def wildcard(pattern: str, text: str) -> bool:
    """OpenCode's Wildcard.match: * and ?, a trailing ' *' also matching no arguments."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    if pattern.endswith(" *"):
        regex = regex[: -len(re.escape(" ") + ".*")] + r"(\s.*)?"
    return re.fullmatch(regex, text, re.S) is not None


def evaluate(rules: list[tuple[str, str, str]], permission: str, target: str) -> str:
    """The last matching rule's action."""
    action = "ask"
    for tool, pattern, verdict in rules:
        if wildcard(tool, permission) and wildcard(pattern, target):
            action = verdict
    return action


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "run":
        fail("fake opencode: only `opencode run` is modelled; the TUI needs a terminal")
    args = parser().parse(argv[1:])
    auto = args.auto or args.yolo or args.dangerously_skip_permissions
    message = quote_words(args.message)
    if args.dir:
        try:
            os.chdir(args.dir)
        except OSError:
            fail(f"Error: Failed to change directory to {args.dir}")
    attached = []
    for name in args.file:
        if not Path(name).exists():
            fail(f"Error: File not found: {name}")
        attached.append(Path(name).read_text())
    piped = read_piped_stdin()
    message = message + "\n" + piped if piped and message else message or piped
    if not message.strip() and not args.command:
        fail("Error: You must provide a message or a command")
    model_input = "\n\n".join([unquote_for_model(message), *attached])
    record("opencode", argv, input=model_input, message=message, agent=args.agent)
    return OpenCode(args, auto).run(Model.read(model_input))


class OpenCode:
    """One `run`: permission checks, tool calls, JSON events."""

    def __init__(self, args: Any, auto: bool) -> None:
        self.args = args
        self.auto = auto
        self.cwd = Path.cwd()
        self.session = new_id("ses_")
        self.message = new_id("msg_")
        rules = permission_rules() + RUN_DENIED
        self.rules = rules + (PLAN_AGENT if args.agent == "plan" else [])

    def out(self, kind: str, **data: Any) -> None:
        if self.args.format == "json":
            emit({"type": kind, "timestamp": now_ms(), "sessionID": self.session, **data})

    def part(self, kind: str, **data: Any) -> dict[str, Any]:
        return {"id": new_id("prt_"), "sessionID": self.session, "messageID": self.message,
                "type": kind, **data}  # fmt: skip

    def text(self, text: str) -> None:
        self.out("text", part=self.part("text", text=text, time={"start": now_ms(), "end": now_ms()}))
        if self.args.format != "json":
            say(text)

    def step(self, cost: float, tokens: dict[str, Any], reason: str) -> None:
        self.out("step_finish", part=self.part("step-finish", reason=reason, snapshot=snapshot(),
                                              cost=cost, tokens=tokens))  # fmt: skip

    def run(self, model: Model) -> int:
        self.out("step_start", part=self.part("step-start", snapshot=snapshot()))
        if self.args.agent == "plan":
            self.text(planner_reply())
            return self.done(*TOTAL)
        acts = model.actions()
        tools = [a for a in acts if a.kind in ("edit", "shell")]
        self.text(model.opening())
        for action in acts:
            if action.kind == "sleep":
                time.sleep(action.seconds)
            elif action.kind == "fail":
                self.out("error", error={"name": "UnknownError",
                                         "data": {"message": f"the task failed (exit {action.code})"}})  # fmt: skip
                return 1
            else:
                self.tool(action)
        if not tools:
            self.text(model.final_text())
            return self.done(*TOTAL)
        self.step(*STEPS[0], reason="tool-calls")
        self.out("step_start", part=self.part("step-start", snapshot=snapshot()))
        self.text(model.final_text())
        return self.done(*STEPS[1])

    def tool(self, action: Action) -> None:
        if action.kind == "shell" or action.op == "delete":
            command = action.command or f"rm -f {action.path}"
            name, data, checks = "bash", {"command": command}, self.bash_checks(command)
        else:
            name = "edit" if action.op == "replace" else "write"
            path = (self.cwd / action.path).resolve()
            data = {"filePath": str(path)}
            checks = [("edit", action.path)]
            if not path.is_relative_to(self.cwd.resolve()):
                checks.insert(0, ("external_directory", str(path.parent)))
        verdicts = [(p, t, evaluate(self.rules, p, t)) for p, t in checks]
        state: dict[str, Any] = {"input": data, "time": {"start": now_ms(), "end": now_ms()}}
        args = {"command": data["command"], "description": "run"} if name == "bash" else {
            "filePath": action.path, "oldString": "", "newString": ""}  # fmt: skip
        thrown = plugin_error(name, args, self.cwd)
        if thrown is not None:  # plugins run before the permission checks
            state.update(status="error", error=thrown)
        elif any(v == "deny" for _, _, v in verdicts):
            state.update(status="error", error="The user has specified a rule which prevents "
                         "you from using this specific tool call.")  # fmt: skip
        elif any(v == "ask" for _, _, v in verdicts) and not self.auto:
            if self.args.format != "json":
                say(
                    f"! permission requested: {name} ({command if name == 'bash' else action.path}); auto-rejecting"
                )
            state.update(status="error", error="The user rejected permission to use this "
                         "specific tool call.")  # fmt: skip
        elif name == "bash":
            code, output = shell(action.command, self.cwd) if action.kind == "shell" else (
                0, apply_edit(action, self.cwd))  # fmt: skip
            state.update(status="completed", output=output, title=command,
                         metadata={"exit": code})  # fmt: skip
        else:
            problem = apply_edit(action, self.cwd)
            state.update(status="error", error=problem) if problem else state.update(
                status="completed", output="", title=action.path, metadata={})  # fmt: skip
        self.out("tool_use", part=self.part("tool", callID=new_id("call_"), tool=name, state=state))

    def bash_checks(self, command: str) -> list[tuple[str, str]]:
        parts = [p.strip() for p in re.split(r"&&|\|\||;|\|", command) if p.strip()]
        return [("bash", p) for p in parts or [command]]

    def done(self, cost: float, tokens: dict[str, Any]) -> int:
        self.step(cost, tokens, reason="stop")
        return 0
