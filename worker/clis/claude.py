"""Claude Code: `claude -p ... --output-format stream-json --verbose` (NDJSON).

Enforcement: a `--settings` file whose PreToolUse hook runs the guard before every Bash command
and file edit, with static deny rules for the TIER 3 commands as a backstop.

`BOSS_CLAUDE_MAX_TURNS` (default 60) caps the turns of one run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from worker import agent_output as out
from worker.agents import AgentRun, Invocation
from worker.clis import common
from worker.enforce import HOOK_TIMEOUT, Inputs, write_json
from worker.policy import Policy

SETTINGS = "claude-settings.json"
DEFAULT_MAX_TURNS = 60
EDIT_TOOLS = ("Edit", "Write", "MultiEdit", "NotebookEdit")
LIMITS = (
    "A PreToolUse hook judges every Bash command and file edit (tiers, checkpoints, approvals);"
    " static deny rules repeat the TIER 3 commands. Not judged: Read, Grep and Glob (reads are"
    " TIER 1; credential paths are denied by static Read rules only), MCP tools; WebFetch and"
    " WebSearch are denied. A hook that times out does not block."
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
            "allow": ["Bash", "Read", "Grep", "Glob", "LS", *EDIT_TOOLS, "TodoWrite", *own_test],
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

    def _base(self) -> list[str]:
        turns = os.environ.get("BOSS_CLAUDE_MAX_TURNS") or str(DEFAULT_MAX_TURNS)
        argv = ["claude", "-p", "--output-format", "stream-json", "--verbose"]
        argv += ["--permission-mode", "dontAsk", "--max-turns", turns]
        return argv + (["--bare"] if os.environ.get("BOSS_CLAUDE_BARE") == "1" else [])

    def invocation(self, run: AgentRun) -> Invocation:
        enforced = common.enforcement(self.name, run, render)
        argv = [*self._base(), "--settings", str(enforced.settings), *enforced.args]
        argv += common.extra_args(self.name)
        return Invocation(argv + _prompt(run.prompt_file), enforced.env)

    def planner_invocation(self, prompt_file: Path, cwd: Path) -> Invocation:  # noqa: ARG002
        # Only read-only tools exist in this run; dontAsk refuses anything else.
        argv = [*self._base(), "--tools", "Read,Grep,Glob", *common.extra_args(self.name)]
        return Invocation(argv + _prompt(prompt_file))

    def usage(self, output: str) -> dict[str, Any]:
        return out.claude_usage(output)

    def final_text(self, output: str) -> str:
        return out.claude_final(output)

    def run_usage(self, run: AgentRun, output: str) -> dict[str, Any]:  # noqa: ARG002
        """Usage of one run (the same as usage(): everything is in the output)."""
        return self.usage(output)
