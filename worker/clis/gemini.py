"""Gemini CLI: `gemini --prompt=... --output-format stream-json` (JSONL, tokens only).

Enforcement: a BeforeTool hook that runs the guard, and a `--policy` file that allows shell and
edits and denies the static TIER 3 commands.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker import agent_output as out
from worker.agents import AgentRun, Invocation
from worker.clis import common
from worker.enforce import HOOK_TIMEOUT, Inputs, write_json

SETTINGS = "gemini-settings.json"
POLICY = "gemini-policy.toml"
LIMITS = (
    "A BeforeTool hook on run_shell_command, write_file and replace, from a system settings"
    " file (GEMINI_CLI_SYSTEM_SETTINGS_PATH overrides user and project settings), and a --policy"
    " file that allows shell and edits and denies the static TIER 3 commands. Web fetch and"
    " search are denied."
)
_ENV = {"GEMINI_CLI_TRUST_WORKSPACE": "true"}


def _prompt(path: Path) -> list[str]:
    # --prompt=TEXT: a value starting with "-" cannot be taken for a flag.
    text = common.prompt_text(path)
    if text is not None:
        return [f"--prompt={text}"]
    return ["--include-directories", str(path.parent), f"--prompt={common.READ_IT.format(path=path)}"]


def render(r: Inputs) -> dict[str, Any]:
    """The hook's settings file and the policy file."""
    entry = {"type": "command", "command": r.hook, "timeout": HOOK_TIMEOUT * 1000, "name": "boss-guard"}
    tools = "run_shell_command|write_file|replace"
    settings = {
        "hooksConfig": {"enabled": True},
        "hooks": {"BeforeTool": [{"matcher": tools, "hooks": [entry]}]},
    }
    settings_file = write_json(r.folder / SETTINGS, settings)
    rules = [
        '[[rule]]\ntoolName = "run_shell_command"\ndecision = "allow"\npriority = 100\n',
        '[[rule]]\ntoolName = ["write_file", "replace"]\ndecision = "allow"\npriority = 100\n',
        '[[rule]]\ntoolName = ["web_fetch", "google_web_search"]\ndecision = "deny"\npriority = 900\n'
        'denyMessage = "TIER 3: network egress needs a person\'s approval; stop and report what you need."\n',
    ]
    if r.test:  # the worker's own test (the hook says TIER 1 too)
        rules.append(f'[[rule]]\ntoolName = "run_shell_command"\ncommandPrefix = [{json.dumps(r.test)}]\n'
                     'decision = "allow"\npriority = 500\n')  # fmt: skip
    for rule, prefixes in r.denies:
        alternatives = "|".join(r"\s+".join(re.escape(w) for w in p.split()) for p in prefixes)
        regex = rf"^\s*(?:{alternatives})(?:\s|$)"
        message = f"TIER 3 ({rule.reason}): needs a person's approval; stop and report the exact command."
        rules.append(
            f'[[rule]]\ntoolName = "run_shell_command"\ncommandRegex = {json.dumps(regex)}\n'
            f'decision = "deny"\npriority = 900\ndenyMessage = {json.dumps(message)}\n'
        )
    policy_file = r.folder / POLICY
    policy_file.write_text("# Rendered by boss (tiered autonomy).\n\n" + "\n".join(rules), encoding="utf-8")
    env = {"GEMINI_CLI_SYSTEM_SETTINGS_PATH": str(settings_file)}
    return {"policy": str(policy_file), "env": env, "files": [str(settings_file), str(policy_file)]}


@dataclass(frozen=True)
class GeminiProfile:
    """Gemini CLI: `gemini --prompt=... --output-format stream-json` (JSONL, tokens only)."""

    name: str = "gemini"

    def invocation(self, run: AgentRun) -> Invocation:
        enforced = common.enforcement(self.name, run, render)
        argv = ["gemini", *_prompt(run.prompt_file), "--output-format", "stream-json"]
        argv += ["--approval-mode", "auto_edit", "--skip-trust"]
        if enforced.policy:
            argv += ["--policy", enforced.policy]
        argv += [*enforced.args, *common.extra_args(self.name)]
        return Invocation(argv, {**_ENV, **enforced.env})

    def planner_invocation(self, prompt_file: Path, cwd: Path) -> Invocation:  # noqa: ARG002
        argv = ["gemini", *_prompt(prompt_file), "--output-format", "stream-json"]
        argv += ["--approval-mode", "plan", "--skip-trust", *common.extra_args(self.name)]
        return Invocation(argv, dict(_ENV))

    def usage(self, output: str) -> dict[str, Any]:
        return out.gemini_usage(output)

    def final_text(self, output: str) -> str:
        return out.gemini_final(output)

    def run_usage(self, run: AgentRun, output: str) -> dict[str, Any]:  # noqa: ARG002
        """Usage of one run (the same as usage(): everything is in the output)."""
        return self.usage(output)
