"""Codex: `codex exec --json --sandbox workspace-write` (JSONL events, tokens only).

Enforcement: a PreToolUse hook given with `-c` (Bash and apply_patch), trusted with
`--dangerously-bypass-hook-trust`, and the workspace-write sandbox with network off.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.agents import output as out
from worker.agents import ratelimit as rl
from worker.agents.clis import common
from worker.agents.enforce import HOOK_TIMEOUT, Inputs, write_json
from worker.agents.profile import AgentRun, Invocation

# Every run: no login shell (Codex runs commands as `/bin/bash -lc`, whose /etc/profile resets
# PATH, so the agent's own test run lost the worker's virtual environment); no plugins (their
# marketplace sync calls github.com and chatgpt.com, and their tools are nobody's to judge); no
# analytics (ab.chatgpt.com). Later `-c` values (BOSS_CODEX_ARGS) override these.
CODEX_CONFIG = [
    "-c",
    "allow_login_shell=false",
    "-c",
    "features.plugins=false",
    "-c",
    "analytics.enabled=false",
]
HOOKS = "codex-hooks.json"
RULES = "codex-boss.rules"
LIMITS = (
    "A PreToolUse hook (Bash and apply_patch; tested with Codex 0.171.0) given with -c judges"
    " every command and edit, apply_patch sent through the shell included. Codex runs -c hooks"
    " only with --dangerously-bypass-hook-trust (without it they are skipped silently), so the"
    " flag is always passed; a run that made tool calls the guard never judged stops the"
    " worker. Codex refuses rm -f/rm -rf itself, even when a person approved it. The"
    " workspace-write sandbox with network off is the backstop. The execpolicy .rules file is"
    " rendered, but Codex reads rules only from CODEX_HOME/rules or a trusted project's"
    " .codex/rules: copy it there to add it."
)


def render(r: Inputs) -> dict[str, Any]:
    """The hook (inline with -c), and an execpolicy rules file of the static TIER 3 denies."""
    groups = [{"matcher": "Bash|apply_patch|shell", "hooks": [{"type": "command", "command": r.hook,
                                                                "timeout": HOOK_TIMEOUT}]}]  # fmt: skip
    hooks_file = write_json(r.folder / HOOKS, {"hooks": {"PreToolUse": groups}})
    lines = ["# Rendered by boss: TIER 3 commands (copy into CODEX_HOME/rules/ to use).", ""]
    for rule, prefixes in r.denies:
        for prefix in prefixes:
            why = json.dumps(f"TIER 3: {rule.reason}; needs a person")
            pattern = json.dumps(prefix.split())
            lines.append(f'prefix_rule(pattern={pattern}, decision="forbidden", justification={why})')
    rules_file = r.folder / RULES
    rules_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    inline = "[" + ", ".join(toml_inline(g) for g in groups) + "]"
    # Hooks given with -c are not trusted, and untrusted hooks are skipped without a word.
    args = [
        "-c",
        "features.hooks=true",
        "-c",
        f"hooks.PreToolUse={inline}",
        "--dangerously-bypass-hook-trust",
    ]
    return {"args": args, "files": [str(hooks_file), str(rules_file)]}


def toml_inline(value: object) -> str:
    """A TOML inline value (JSON strings are valid TOML basic strings for these contents)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_inline(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(toml_inline(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def _codex(sandbox: str, cwd: Path) -> list[str]:
    return ["codex", "exec", "--json", "--sandbox", sandbox, "--skip-git-repo-check",
            "--ephemeral", "-C", str(cwd)]  # fmt: skip


@dataclass(frozen=True)
class CodexProfile:
    """Codex: `codex exec --json --sandbox workspace-write` (JSONL events, tokens only)."""

    name: str = "codex"

    @property
    def reports_cost(self) -> bool:
        """Its output gives tokens, never money: no cost cap can be held on it."""
        return False

    def invocation(self, run: AgentRun) -> Invocation:
        enforced = common.enforcement(self.name, run, render)
        argv = [*_codex("workspace-write", run.worktree)]
        argv += ["-c", "sandbox_workspace_write.network_access=false", *CODEX_CONFIG]
        if run.confined:
            # Inside boss's sandbox /tmp is read-only (the run's TMPDIR is its own). Codex's
            # workspace-write makes /tmp a writable root and mounts over /tmp/.git, which its
            # bubblewrap cannot create there: every command and edit then fails ("Can't mkdir
            # /tmp/.git: Read-only file system"). Without /tmp, its writable roots are the worktree
            # and the run's TMPDIR, as boss's sandbox allows anyway.
            argv += ["-c", "sandbox_workspace_write.exclude_slash_tmp=true"]
        argv += [*enforced.args, *common.extra_args(self.name), "--", common.read_it(run.prompt_file)]
        return Invocation(argv, enforced.env)

    def planner_invocation(self, prompt_file: Path, cwd: Path) -> Invocation:
        argv = [*_codex("read-only", cwd), *CODEX_CONFIG, *common.extra_args(self.name), "--",
                common.read_it(prompt_file)]  # fmt: skip
        return Invocation(argv)

    def usage(self, output: str) -> dict[str, Any]:
        return out.codex_usage(output)

    def final_text(self, output: str) -> str:
        return out.codex_final(output)

    def run_usage(self, run: AgentRun, output: str) -> dict[str, Any]:  # noqa: ARG002
        """Usage of one run (the same as usage(): everything is in the output)."""
        return self.usage(output)

    def tool_calls(self, output: str) -> int | None:
        """Command and file-change items, each counted once (started, completed or both).

        A call the hook blocked emits no item (its reason is only on stderr), so this counts the
        calls that ran: any of them with no guard decision in the log means the hook never ran.
        """
        ids = {
            str(e["item"].get("id") or id(e))
            for e in out.json_lines(output)
            if e.get("type") in ("item.started", "item.completed") and isinstance(e.get("item"), dict)
            and e["item"].get("type") in ("command_execution", "file_change")
        }  # fmt: skip
        return len(ids)

    def failure(self, output: str) -> str | None:
        """The message of a `turn.failed` event, or of an `error` event in a run no turn completed
        ("unexpected status 401 Unauthorized: ...")."""
        events = out.json_lines(output)
        failed = [e for e in events if e.get("type") == "turn.failed"]
        if failed:
            error = failed[-1].get("error")
            message = error.get("message") if isinstance(error, dict) else error
            return str(message or "turn.failed").strip()
        if any(e.get("type") == "turn.completed" for e in events):
            return None
        errors = [str(e.get("message") or "") for e in events if e.get("type") == "error"]
        return errors[-1].strip() or "error" if errors else None

    def rate_limit(self, output: str) -> rl.RateLimit | None:
        """A rate limit or overload Codex gave up on, or was stopped retrying.

        Codex 0.171.0 retries a 429 that has a retry-after header itself, waiting exactly what it
        asks, one `error` event each ("Reconnecting... 1/5 (exceeded retry limit, last status:
        429 Too Many Requests)"), five times; without the header it does not retry. It gives up
        with `turn.failed` ("exceeded retry limit, last status: 429 Too Many Requests"); its
        overload wording is "We are currently experiencing high demand." Neither names the delay.
        """
        events = out.json_lines(output)
        errors = [str(e.get("message") or "") for e in events if e.get("type") == "error"]
        retries = sum(1 for m in errors if m.startswith("Reconnecting") and rl.kind_of(rl.status_in(m), m))
        failed = [e for e in events if e.get("type") == "turn.failed"]
        if failed:
            error = failed[-1].get("error")
            text = str((error.get("message") if isinstance(error, dict) else error) or "")
        elif any(e.get("type") == "turn.completed" for e in events) or not events:
            return None
        elif events[-1].get("type") == "error" and errors[-1].startswith("Reconnecting"):
            text = errors[-1]  # stopped while waiting to reconnect
        else:
            return None
        status = rl.status_in(text)
        kind = rl.kind_of(status, text)
        if kind is None:
            return None
        return rl.RateLimit(kind, rl.one_line(text), rl.delay_in(text), status, retries)
