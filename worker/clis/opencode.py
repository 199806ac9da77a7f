"""OpenCode: `opencode run --format json --dir <worktree>` (JSONL with cost and tokens).

Enforcement: static permission patterns given inline (OPENCODE_CONFIG_CONTENT).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker import agent_output as out
from worker.agents import AgentRun, Invocation
from worker.clis import common
from worker.enforce import Inputs, write_json

CONFIG = "opencode.json"
LIMITS = (
    "OpenCode has no hook: only static permission patterns apply (bash `*` allow, the TIER 3"
    " command prefixes deny, web fetch and search deny, directories outside the worktree deny),"
    " given inline (OPENCODE_CONFIG_CONTENT) so the worktree's opencode.json cannot loosen them."
    " There are no checkpoints before TIER 2 commands, no approval requests and no path checks:"
    " a TIER 3 command no pattern names (python -c with network code, a write outside the"
    " worktree) is not stopped. Run OpenCode in a sandbox."
)
_ENV = {"OPENCODE_DISABLE_AUTOUPDATE": "1", "OPENCODE_DISABLE_CLAUDE_CODE": "1"}


def _prompt(path: Path) -> list[str]:
    text = common.prompt_text(path)
    if text is not None:
        return ["--", text]
    return ["--file", str(path), "--", "Do exactly what the attached instructions say."]


def render(r: Inputs) -> dict[str, Any]:
    """The permission config, as a file and inline."""
    bash: dict[str, str] = {"*": "allow"}  # first: the last matching pattern wins
    for _, prefixes in r.denies:
        for prefix in prefixes:
            bash[prefix] = "deny"
            bash[f"{prefix} *"] = "deny"
    config = {"$schema": "https://opencode.ai/config.json",
              "permission": {"edit": "allow", "bash": bash, "webfetch": "deny", "websearch": "deny",
                             "external_directory": "deny", "doom_loop": "deny"}}  # fmt: skip
    path = write_json(r.folder / CONFIG, config)
    env = {"OPENCODE_CONFIG": str(path), "OPENCODE_CONFIG_CONTENT": json.dumps(config),
           "OPENCODE_PERMISSION": json.dumps(config["permission"])}  # fmt: skip
    return {"env": env, "files": [str(path)]}


@dataclass(frozen=True)
class OpenCodeProfile:
    """OpenCode: `opencode run --format json --dir <worktree>` (JSONL with cost and tokens)."""

    name: str = "opencode"

    def invocation(self, run: AgentRun) -> Invocation:
        enforced = common.enforcement(self.name, run, render)
        argv = ["opencode", "run", "--format", "json", "--dir", str(run.worktree)]
        argv += [*enforced.args, *common.extra_args(self.name), *_prompt(run.prompt_file)]
        return Invocation(argv, {**_ENV, **enforced.env})

    def planner_invocation(self, prompt_file: Path, cwd: Path) -> Invocation:
        argv = ["opencode", "run", "--format", "json", "--dir", str(cwd), "--agent", "plan"]
        argv += [*common.extra_args(self.name), *_prompt(prompt_file)]
        return Invocation(argv, dict(_ENV))

    def usage(self, output: str) -> dict[str, Any]:
        return out.opencode_usage(output)

    def final_text(self, output: str) -> str:
        return out.opencode_final(output)

    def run_usage(self, run: AgentRun, output: str) -> dict[str, Any]:  # noqa: ARG002
        """Usage of one run (the same as usage(): everything is in the output)."""
        return self.usage(output)

    def tool_calls(self, output: str) -> int | None:
        """`tool_use` lines of the bash, edit and write tools."""
        return sum(
            1
            for e in out.json_lines(output)
            if e.get("type") == "tool_use" and isinstance(e.get("part"), dict)
            and e["part"].get("tool") in ("bash", "edit", "write")
        )  # fmt: skip
