"""OpenCode: `opencode run --format json --dir <worktree>` (JSONL with cost and tokens).

Enforcement: boss's guard plugin (`opencode_guard.js`, a `tool.execute.before` hook that runs
`worker guard` before each shell command and file change and throws on a block), plus static
permission patterns as a backstop. Both go in OPENCODE_CONFIG_CONTENT, which OpenCode merges
last (after the user's global config, OPENCODE_CONFIG and the worktree's opencode.json), so the
user's own OPENCODE_CONFIG (their provider) is kept. The planner gets the plugin with no guard
(it refuses every tool that can change something) and deny-all permissions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.agents import output as out
from worker.agents import ratelimit as rl
from worker.agents.clis import common
from worker.agents.enforce import OVERLAY, Inputs, write_json
from worker.agents.profile import AgentRun, Invocation
from worker.autonomy import guard

CONFIG = "opencode.json"
PLUGIN = Path(__file__).with_name("opencode_guard.js")
GUARD_ENV = "BOSS_OPENCODE_GUARD"  # the guard's argv (JSON) for the plugin
LIMITS = (
    "A plugin (tool.execute.before) runs the guard before every bash, edit, write and patch call:"
    " TIER 2 is checkpointed, TIER 3 blocked and recorded as an approval request; tools nobody"
    " judges (MCP or custom tools) are refused. Static permission patterns (TIER 3 command"
    " prefixes, web fetch and search, directories outside the worktree) are a backstop. Reads"
    " (read, grep, glob, list) are not judged. Plugins of the repository's own .opencode folder"
    " run inside OpenCode as code and are not judged."
)
JUDGED = ("bash", "edit", "write", "multiedit", "apply_patch", "patch")  # as in opencode_guard.js
_ENV = {"OPENCODE_DISABLE_AUTOUPDATE": "1", "OPENCODE_DISABLE_CLAUDE_CODE": "1"}
_TOOLS = ("edit", "bash", "webfetch", "websearch", "external_directory", "doom_loop")
READ_ONLY = {"permission": {**dict.fromkeys(_TOOLS, "deny"), "task": "deny"}, "plugin": [PLUGIN.as_uri()]}


def _prompt(path: Path) -> list[str]:
    text = common.prompt_text(path)
    if text is not None:
        return ["--", text]
    return ["--file", str(path), "--", "Do exactly what the attached instructions say."]


def render(r: Inputs) -> dict[str, Any]:
    """The guard plugin and the permission config, inline (and as a file, for the record)."""
    bash: dict[str, str] = {"*": "allow"}  # first: the last matching pattern wins
    for _, prefixes in r.denies:
        for prefix in prefixes:
            bash[prefix] = "deny"
            bash[f"{prefix} *"] = "deny"
    config = {"$schema": "https://opencode.ai/config.json", "plugin": [PLUGIN.as_uri()],
              "permission": {"edit": "allow", "bash": bash, "webfetch": "deny", "websearch": "deny",
                             "external_directory": "deny", "doom_loop": "deny"}}  # fmt: skip
    path = write_json(r.folder / CONFIG, config)
    argv = guard.hook_argv("opencode", r.run.plan, r.run.worker_id, policy=r.folder / OVERLAY)
    env = {"OPENCODE_CONFIG_CONTENT": json.dumps(config), GUARD_ENV: json.dumps(argv),
           "OPENCODE_PERMISSION": json.dumps(config["permission"])}  # fmt: skip
    return {"env": env, "files": [str(path)]}


@dataclass(frozen=True)
class OpenCodeProfile:
    """OpenCode: `opencode run --format json --dir <worktree>` (JSONL with cost and tokens)."""

    name: str = "opencode"

    @property
    def reports_cost(self) -> bool:
        """Its output says what a run cost."""
        return True

    def invocation(self, run: AgentRun) -> Invocation:
        enforced = common.enforcement(self.name, run, render)
        argv = ["opencode", "run", "--format", "json", "--dir", str(run.worktree)]
        argv += [*enforced.args, *common.extra_args(self.name), *_prompt(run.prompt_file)]
        return Invocation(argv, {**_ENV, **enforced.env})

    def planner_invocation(self, prompt_file: Path, cwd: Path) -> Invocation:
        argv = ["opencode", "run", "--format", "json", "--dir", str(cwd), "--agent", "plan"]
        argv += [*common.extra_args(self.name), *_prompt(prompt_file)]
        # OpenCode's plan agent may still run bash: deny it, and the plugin refuses it too.
        env = {**_ENV, "OPENCODE_CONFIG_CONTENT": json.dumps(READ_ONLY),
               "OPENCODE_PERMISSION": json.dumps(READ_ONLY["permission"]), GUARD_ENV: ""}  # fmt: skip
        return Invocation(argv, env)

    def usage(self, output: str) -> dict[str, Any]:
        return out.opencode_usage(output)

    def final_text(self, output: str) -> str:
        return out.opencode_final(output)

    def run_usage(self, run: AgentRun, output: str) -> dict[str, Any]:  # noqa: ARG002
        """Usage of one run (the same as usage(): everything is in the output)."""
        return self.usage(output)

    def tool_calls(self, output: str) -> int | None:
        """`tool_use` lines of the tools the guard plugin judges (bash, edit, write, patch)."""
        return sum(
            1
            for e in out.json_lines(output)
            if e.get("type") == "tool_use" and isinstance(e.get("part"), dict)
            and e["part"].get("tool") in JUDGED
        )  # fmt: skip

    def failure(self, output: str) -> str | None:
        """The message of OpenCode's last `error` event (`{"name": "APIError", "data": {"message": ...}}`)."""
        errors = [e.get("error") for e in out.json_lines(output) if e.get("type") == "error"]
        if not errors:
            return None
        last = errors[-1]
        error: dict[str, Any] = last if isinstance(last, dict) else {}
        data: dict[str, Any] = error["data"] if isinstance(error.get("data"), dict) else {}
        message = str(data.get("message") or error.get("message") or "").strip()
        name = str(error.get("name") or "error")
        status = data.get("statusCode")
        return f"{name}{f' (HTTP {status})' if status else ''}: {message}" if message else name

    def rate_limit(self, output: str) -> rl.RateLimit | None:
        """A rate limit or overload OpenCode gave up on: its last event is an `error` (APIError)
        whose `data.statusCode` is 429, 529 or 503 (or whose words say so); the delay from
        `data.responseHeaders` (retry-after-ms, retry-after), else from the message.

        OpenCode 1.18.33 retries by itself (6 attempts of the main request, the retry-after
        honoured, else about 2, 4, 8, 16, 32 s) and prints nothing while it does: a run stopped
        while it waits shows no sign of the limit (None).
        """
        events = out.json_lines(output)
        if not events or events[-1].get("type") != "error":
            return None
        last = events[-1].get("error")
        error: dict[str, Any] = last if isinstance(last, dict) else {}
        data: dict[str, Any] = error["data"] if isinstance(error.get("data"), dict) else {}
        message = str(data.get("message") or error.get("message") or "")
        code = data.get("statusCode")
        status = code if isinstance(code, int) and not isinstance(code, bool) else None
        kind = rl.kind_of(status, f"{error.get('name', '')} {message} {data.get('responseBody') or ''}")
        if kind is None:
            return None
        delay = rl.header_delay(data.get("responseHeaders"))
        return rl.RateLimit(kind, rl.one_line(message or str(error.get("name") or "error")),
                            delay if delay is not None else rl.delay_in(message), status)  # fmt: skip
