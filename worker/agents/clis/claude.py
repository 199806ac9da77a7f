"""Claude Code: `claude -p ... --output-format stream-json --verbose` (NDJSON).

Enforcement: a `--settings` file whose PreToolUse hook runs the guard before every Bash command
and file edit, with static deny rules for the TIER 3 commands as a backstop. The tools are an
explicit list (`--tools`): a tool nobody judged (EnterWorktree, Agent, one a later version adds)
is not offered to the model. `--setting-sources user` keeps the repository's own
`.claude/settings*.json` (its hooks, permissions, env) out while the `--settings` file still
applies (measured on 2.1.197; `--bare` would drop the guard's hook too), and
`--strict-mcp-config` starts no MCP server, whose tools nobody would judge.

`BOSS_CLAUDE_MAX_TURNS` (default 60) caps the turns of one run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from worker.agents import output as out
from worker.agents.clis import common
from worker.agents.enforce import HOOK_TIMEOUT, Inputs, write_json
from worker.agents.profile import AgentRun, Invocation
from worker.autonomy.policy import Policy
from worker.autonomy.policy_file import load_policy

SETTINGS = "claude-settings.json"
PLANNER_SETTINGS = "claude-planner-settings.json"
DEFAULT_MAX_TURNS = 60
EDIT_TOOLS = ("Edit", "Write", "NotebookEdit")
READ_TOOLS = ("Read", "Grep", "Glob")
# Every tool a worker's Claude may use: the hooked ones, and reads (TIER 1).
WORKER_TOOLS = ("Bash", *EDIT_TOOLS, *READ_TOOLS)
LIMITS = (
    "A PreToolUse hook judges every Bash command and file edit (tiers, checkpoints, approvals);"
    " static deny rules repeat the TIER 3 commands. Only Bash, Edit, Write, NotebookEdit, Read,"
    " Grep and Glob exist in the run (no MCP server, no subagent, no web tool). Not judged: Read,"
    " Grep and Glob (reads are TIER 1; credential paths are denied by static Read rules only)."
    " A hook that times out does not block."
)


def _prompt(path: Path) -> list[str]:
    text = common.prompt_text(path)
    if text is not None:
        return ["--", text]
    short = "Your complete instructions are in your system prompt; do exactly what they say."
    return ["--append-system-prompt-file", str(path), "--", short]


def render(r: Inputs) -> dict[str, Any]:
    """The settings file: the guard as PreToolUse hook, static TIER 3 denies, dontAsk."""
    deny = [f"Bash({p}{suffix})" for _, ps in r.denies for p in ps for suffix in ("", " *")]
    deny += ["WebFetch", "WebSearch", *_secret_reads(r.policy)]
    entry = [{"type": "command", "command": r.hook, "timeout": HOOK_TIMEOUT}]
    own_test = [f"Bash({r.test})", f"Bash({r.test} *)"] if r.test else []  # also in the static rules
    settings = {
        "permissions": {
            "defaultMode": "dontAsk",
            "allow": [*WORKER_TOOLS, *own_test],
            "deny": deny,
        },
        "hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": entry},
                                 {"matcher": "|".join(EDIT_TOOLS), "hooks": entry}]},
        "disableAllHooks": False,
    }  # fmt: skip
    path = write_json(r.folder / SETTINGS, settings)
    return {"settings": str(path), "files": [str(path)]}


def _secret_reads(policy: Policy) -> list[str]:
    rules = []
    for pattern in policy.secrets:
        if pattern.startswith("~/"):
            rules += [f"Read({pattern})", f"Read({pattern}/**)"]
        elif pattern.startswith("/"):
            rules += [f"Read(/{pattern})", f"Read(/{pattern}/**)"]
        elif not any(fnmatchcase(n, pattern) for n in policy.not_secret):
            rules.append(f"Read(**/{pattern})")  # not `.env.*`: deny would also hide .env.example
    return rules


@dataclass(frozen=True)
class ClaudeProfile:
    """Claude Code: `claude -p ... --output-format stream-json --verbose` (NDJSON)."""

    name: str = "claude"

    def _base(self, tools: tuple[str, ...]) -> list[str]:
        turns = os.environ.get("BOSS_CLAUDE_MAX_TURNS") or str(DEFAULT_MAX_TURNS)
        argv = ["claude", "-p", "--output-format", "stream-json", "--verbose"]
        argv += ["--permission-mode", "dontAsk", "--max-turns", turns, "--setting-sources", "user"]
        return [*argv, "--strict-mcp-config", "--tools", ",".join(tools)]

    def invocation(self, run: AgentRun) -> Invocation:
        enforced = common.enforcement(self.name, run, render)
        argv = [*self._base(WORKER_TOOLS), "--settings", str(enforced.settings), *enforced.args]
        argv += common.extra_args(self.name)
        return Invocation(argv + _prompt(run.prompt_file), enforced.env)

    def planner_invocation(self, prompt_file: Path, cwd: Path) -> Invocation:
        # Only read-only tools exist in this run; dontAsk refuses anything else. The policy's
        # credential paths stay unread (the planner's answer goes back to the model).
        settings = {"permissions": {"defaultMode": "dontAsk", "deny": _secret_reads(load_policy(cwd))}}
        path = write_json(prompt_file.parent / PLANNER_SETTINGS, settings)
        argv = [*self._base(READ_TOOLS), "--settings", str(path), *common.extra_args(self.name)]
        return Invocation(argv + _prompt(prompt_file))

    def usage(self, output: str) -> dict[str, Any]:
        return out.claude_usage(output)

    def final_text(self, output: str) -> str:
        return out.claude_final(output)

    def run_usage(self, run: AgentRun, output: str) -> dict[str, Any]:  # noqa: ARG002
        """Usage of one run (the same as usage(): everything is in the output)."""
        return self.usage(output)

    def tool_calls(self, output: str) -> int | None:
        """Bash and file-edit `tool_use` blocks the hook was asked about.

        Not those Claude refused before its hooks run: an input it rejects (an Edit of a file not
        read yet) comes back as a `<tool_use_error>` result, and the guard never sees it.
        """
        tools = {"Bash", *EDIT_TOOLS}
        events = out.json_lines(output)
        refused = {
            block.get("tool_use_id")
            for block in _blocks(events, "user")
            if block.get("type") == "tool_result"
            and _text(block.get("content")).startswith("<tool_use_error>")
        }
        return sum(
            1
            for block in _blocks(events, "assistant")
            if block.get("type") == "tool_use"
            and block.get("name") in tools
            and block.get("id") not in refused
        )

    def failure(self, output: str) -> str | None:
        """The CLI's own error: an `is_error` result that is no turn limit ("Not logged in · Please
        run /login", "Invalid API key"), or, when the run ended without a result, its last API retry."""
        events = out.json_lines(output)
        results = [e for e in events if e.get("type") == "result"]
        if results:
            last = results[-1]
            if last.get("is_error") is not True or last.get("subtype") == "error_max_turns":
                return None
            errors = last.get("errors")
            text = last.get("result") or ("; ".join(map(str, errors)) if isinstance(errors, list) else "")
            return str(text or last.get("subtype") or "an error result").strip()
        retries = [e for e in events if e.get("type") == "system" and e.get("subtype") == "api_retry"]
        if not retries:
            return None
        r = retries[-1]
        status, attempt = r.get("error_status"), f"{r.get('attempt')} of {r.get('max_retries')}"
        return f"API request failed: {r.get('error')} (HTTP {status}), retry {attempt}"


def _blocks(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [
        block
        for e in events
        if e.get("type") == kind and isinstance(e.get("message"), dict)
        for block in e["message"].get("content") or []
        if isinstance(block, dict)
    ]


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return str(content or "")
