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

import json
import os
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from worker.agents import output as out
from worker.agents import ratelimit as rl
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

    @property
    def reports_cost(self) -> bool:
        """Its output says what a run cost."""
        return True

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

    def rate_limit(self, output: str) -> rl.RateLimit | None:
        """A rate limit or overload Claude gave up on, or was stopped retrying.

        Claude Code 2.1.197 retries a 429 or 529 itself (10 times; CLAUDE_CODE_MAX_RETRIES), one
        `system`/`api_retry` event each (`"error": "rate_limit"` or `"overloaded"`,
        `error_status`, `retry_delay_ms`: the retry-after when it is longer than its backoff),
        then ends with an `is_error` result whose `api_error_status` is 429 or 529 ("API Error:
        Request rejected (429) · ...", "API Error: 529 Overloaded. ..."). It does not print the
        provider's retry-after apart from its own delay, so `retry_after` stays None. Stopped by
        SIGTERM (agent_timeout) while it waits, it still writes "[Request interrupted by user]"
        and an `error_during_execution` result (exit 0): what it was doing is what came before.
        """
        events = _before_interrupt(out.json_lines(output))
        retries = [e for e in events if e.get("type") == "system" and e.get("subtype") == "api_retry"]
        limited = [r for r in retries if rl.kind_of(_status(r.get("error_status")), str(r.get("error", "")))]
        results = [e for e in events if e.get("type") == "result"]
        if results:
            last = results[-1]
            if last.get("is_error") is not True:
                return None
            status, text = _status(last.get("api_error_status")), str(last.get("result") or "")
            kind = rl.kind_of(status, text)
            if kind is None:
                return None
            return rl.RateLimit(kind, rl.one_line(text), None, status or rl.status_in(text), len(limited))
        if not events or not limited or events[-1] is not limited[-1]:
            return None  # stopped while doing something else than waiting to retry
        r = limited[-1]
        status, error = _status(r.get("error_status")), str(r.get("error") or "")
        kind = rl.kind_of(status, error) or rl.RATE_LIMITED
        attempt = f"retry {r.get('attempt')} of {r.get('max_retries')}"
        return rl.RateLimit(
            kind, f"API request failed: {error} (HTTP {status}), {attempt}", None, status, len(limited)
        )


def _before_interrupt(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events before Claude's own words for being stopped (SIGTERM): the interrupt message
    and the `error_during_execution` result it writes then; all of them when it was not."""
    last = events[-1] if events else {}
    if last.get("type") != "result" or last.get("subtype") != "error_during_execution":
        return events
    rest = events[:-1]
    if rest and rest[-1].get("type") == "user" and "[Request interrupted by user]" in json.dumps(rest[-1]):
        rest = rest[:-1]
    return rest


def _status(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


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
