"""Tiered autonomy, rendered per worker into each agent CLI's own configuration.

`render_enforcement(agent, run, policy)` writes into `run.config_dir` (outside the worktree:
the agent can neither edit nor commit it) the files that make the CLI call the guard
(`worker.guard`) before every shell command and file edit, plus static deny rules for the
TIER 3 commands as a backstop, and returns what the agent profile must pass:
`{"settings": ..., "policy": ..., "args": [...], "env": {...}, "files": [...],
"enforced": bool, "limits": str}`. `LIMITS` says plainly what each CLI cannot enforce.

A worker overlay policy (`policy.yaml` in the same folder) declares the worker's own test
command TIER 1. Static denies leave out the rules an approved, not yet used request needs,
so that the approved command can run once.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Collection
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from boss import yamlio
from boss.paths import PlanPaths
from worker import approvals, guard
from worker import shellparse as sp
from worker.agents import AgentRun
from worker.classify import classify
from worker.policy import Policy, Rule
from worker.shellparse import Record

CLAUDE_SETTINGS = "claude-settings.json"
CODEX_HOOKS = "codex-hooks.json"
CODEX_RULES = "codex-boss.rules"
GEMINI_SETTINGS = "gemini-settings.json"
GEMINI_POLICY = "gemini-policy.toml"
OPENCODE_CONFIG = "opencode.json"
OVERLAY = "policy.yaml"
EDIT_TOOLS = ("Edit", "Write", "MultiEdit", "NotebookEdit")
HOOK_TIMEOUT = 120  # seconds; a hook that times out does not block, so be generous

LIMITS = {
    "claude": (
        "A PreToolUse hook judges every Bash command and file edit (tiers, checkpoints, approvals);"
        " static deny rules repeat the TIER 3 commands. Not judged: Read, Grep and Glob (reads are"
        " TIER 1; credential paths are denied by static Read rules only), MCP tools; WebFetch and"
        " WebSearch are denied. A hook that times out does not block."
    ),
    "codex": (
        "A PreToolUse hook (Bash and apply_patch, Codex 0.124 or later) given with -c judges every"
        " command. Codex runs only trusted hooks, so the run passes --dangerously-bypass-hook-trust"
        " (BOSS_CODEX_TRUST_HOOKS=0 leaves it out for builds without the flag: then only the"
        " sandbox guards). The workspace-write sandbox with network off is the backstop. The"
        " execpolicy .rules file is rendered, but Codex reads rules only from CODEX_HOME/rules or a"
        " trusted project's .codex/rules: copy it there to add it."
    ),
    "gemini": (
        "A BeforeTool hook on run_shell_command, write_file and replace, from a system settings"
        " file (GEMINI_CLI_SYSTEM_SETTINGS_PATH overrides user and project settings), and a --policy"
        " file that allows shell and edits and denies the static TIER 3 commands. Web fetch and"
        " search are denied."
    ),
    "opencode": (
        "OpenCode has no hook: only static permission patterns apply (bash `*` allow, the TIER 3"
        " command prefixes deny, web fetch and search deny, directories outside the worktree deny),"
        " given inline (OPENCODE_CONFIG_CONTENT) so the worktree's opencode.json cannot loosen them."
        " There are no checkpoints before TIER 2 commands, no approval requests and no path checks:"
        " a TIER 3 command no pattern names (python -c with network code, a write outside the"
        " worktree) is not stopped. Run OpenCode in a sandbox."
    ),
    "aider": (
        "Aider runs no shell command from the model in scripted mode (--yes-always declines them):"
        " it edits the files it is given and runs the configured test and lint commands. Nothing"
        " to render; its auto-commits are its checkpoints."
    ),
}


def render_enforcement(agent: str, run: AgentRun, policy: Policy) -> dict[str, Any]:
    """Write the agent's enforcement files into run.config_dir; what its profile must pass."""
    folder = run.config_dir
    folder.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"args": [], "env": {}, "files": [], "enforced": False,
                              "limits": LIMITS.get(agent, "no enforcement for this agent")}  # fmt: skip
    renderers = {"claude": _claude, "codex": _codex, "gemini": _gemini, "opencode": _opencode}
    if agent not in renderers:
        return result
    overlay = write_overlay(run, folder / OVERLAY)
    hook = guard.hook_command(agent, run.plan, run.worker_id, policy=overlay)
    inputs = _Inputs(folder, hook, static_denies(policy, released_rules(run, policy)), policy,
                     run.test_command.strip())  # fmt: skip
    result.update(renderers[agent](inputs), enforced=True)
    result["files"] = [str(overlay), *result["files"]]
    return result


def write_overlay(run: AgentRun, path: Path) -> Path:
    """The worker's overlay policy: its own test command is TIER 1 (an empty file if none)."""
    rules = []
    for i, words in enumerate(_simple_commands(run.test_command), start=1):
        rules.append({"id": f"worker-test-{i}", "tier": 1, "reason": "the worker's own acceptance test",
                      "match": {"prefix": [Path(words[0]).name, *words[1:]]}})  # fmt: skip
    text = yamlio.dump({"version": 1, "rules": rules})
    if not path.is_file() or path.read_text(encoding="utf-8") != text:  # unchanged: the guard's cache holds
        yamlio.write_atomic(path, text)
    return path


def _simple_commands(command: str) -> list[list[str]]:
    """The static words of each simple command in a command line ([] if it cannot be parsed)."""
    try:
        tree = sp.parse(command)
    except sp.ShellSyntaxError:
        return []
    found: list[list[str]] = []

    def walk(group: sp.Group) -> None:
        for item in group.items:
            if isinstance(item, sp.Group):
                walk(item)
            elif isinstance(item, sp.Command) and item.words and not any(w.dynamic for w in item.words):
                found.append([w.text for w in item.words])

    walk(tree)
    return found


def released_rules(run: AgentRun, policy: Policy) -> set[str]:
    """Rules an approved, unused request of this worker needs lifted for its one run."""
    folder = PlanPaths.of(run.repo, run.plan).approvals_dir
    ids: set[str] = set()
    for req in approvals.list_requests(folder, approvals.APPROVED):
        if req.worker == run.worker_id:
            decision = classify(req.command, Path(req.cwd or run.worktree), run.worktree, policy)
            ids.update(r for p in decision.parts if p.tier == 3 for r in p.matched)
    return ids


def static_denies(policy: Policy, released: Collection[str] = ()) -> list[tuple[Rule, list[str]]]:
    """TIER 3 rules simple enough for a CLI's prefix rules: (rule, command prefixes)."""
    own = {
        n for r in policy.rules if r.project and not r.disabled for n in r.match.command or r.match.prefix[:1]
    }
    out = []
    for rule in policy.rules:
        m = rule.match
        if rule.tier != 3 or rule.disabled or rule.fallback or rule.project or rule.id in released:
            continue
        extra = (m.prefix, m.flags_any, m.flags_none, m.operands_any, m.words_any, m.words_only,
                 m.code_any, m.env_any, m.git_config_any, m.stdin, m.effect, m.unless,
                 m.max_operands, m.min_operands, m.venv)  # fmt: skip
        if not m.command or any(x not in ((), None) for x in extra) or len(m.args) > 1:
            continue
        names = [c for c in m.command if not sp_glob(c) and c not in own]
        subs = list(m.args[0]) if m.args else [""]
        if any(sp_glob(s) for s in subs):
            continue
        prefixes = [f"{n} {s}".strip() for n in names for s in subs]
        if prefixes:
            out.append((rule, prefixes))
    return out


def sp_glob(text: str) -> bool:
    """True when a pattern is a glob, not a plain name."""
    return any(c in text for c in "*?[")


class _Inputs(Record):
    """What every renderer needs: the folder, the hook command, static denies, the policy, the test."""

    __slots__ = ("denies", "folder", "hook", "policy", "test")

    def __init__(
        self, folder: Path, hook: str, denies: list[tuple[Rule, list[str]]], policy: Policy, test: str
    ) -> None:
        self.folder, self.hook, self.denies, self.policy, self.test = folder, hook, denies, policy, test


def _claude(r: _Inputs) -> dict[str, Any]:
    deny = [f"Bash({p}{suffix})" for _, ps in r.denies for p in ps for suffix in ("", " *")]
    deny += ["WebFetch", "WebSearch", *_claude_secret_reads(r.policy)]
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
    path = _write_json(r.folder / CLAUDE_SETTINGS, settings)
    return {"settings": str(path), "files": [str(path)]}


def _claude_secret_reads(policy: Policy) -> list[str]:
    rules = []
    for pattern in policy.secrets:
        if pattern.startswith("~/"):
            rules += [f"Read({pattern})", f"Read({pattern}/**)"]
        elif pattern.startswith("/"):
            rules += [f"Read(/{pattern})", f"Read(/{pattern}/**)"]
        elif not any(fnmatchcase(n, pattern) for n in policy.not_secret):
            rules.append(f"Read(**/{pattern})")  # not `.env.*`: deny would also hide .env.example
    return rules


def _codex(r: _Inputs) -> dict[str, Any]:
    groups = [{"matcher": "Bash|apply_patch|shell", "hooks": [{"type": "command", "command": r.hook,
                                                                "timeout": HOOK_TIMEOUT}]}]  # fmt: skip
    hooks_file = _write_json(r.folder / CODEX_HOOKS, {"hooks": {"PreToolUse": groups}})
    lines = ["# Rendered by boss: TIER 3 commands (copy into CODEX_HOME/rules/ to use).", ""]
    for rule, prefixes in r.denies:
        for prefix in prefixes:
            why = json.dumps(f"TIER 3: {rule.reason}; needs a person")
            pattern = json.dumps(prefix.split())
            lines.append(f'prefix_rule(pattern={pattern}, decision="forbidden", justification={why})')
    rules_file = r.folder / CODEX_RULES
    rules_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    inline = "[" + ", ".join(_toml_inline(g) for g in groups) + "]"
    args = ["-c", "features.hooks=true", "-c", f"hooks.PreToolUse={inline}"]
    if os.environ.get("BOSS_CODEX_TRUST_HOOKS", "1") != "0":  # for Codex builds without the flag
        args.append("--dangerously-bypass-hook-trust")  # untrusted hooks do not run headless
    return {"args": args, "files": [str(hooks_file), str(rules_file)]}


def _toml_inline(value: object) -> str:
    """A TOML inline value (JSON strings are valid TOML basic strings for these contents)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_inline(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_inline(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def _gemini(r: _Inputs) -> dict[str, Any]:
    entry = {"type": "command", "command": r.hook, "timeout": HOOK_TIMEOUT * 1000, "name": "boss-guard"}
    tools = "run_shell_command|write_file|replace"
    settings = {
        "hooksConfig": {"enabled": True},
        "hooks": {"BeforeTool": [{"matcher": tools, "hooks": [entry]}]},
    }
    settings_file = _write_json(r.folder / GEMINI_SETTINGS, settings)
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
    policy_file = r.folder / GEMINI_POLICY
    policy_file.write_text("# Rendered by boss (tiered autonomy).\n\n" + "\n".join(rules), encoding="utf-8")
    env = {"GEMINI_CLI_SYSTEM_SETTINGS_PATH": str(settings_file)}
    return {"policy": str(policy_file), "env": env, "files": [str(settings_file), str(policy_file)]}


def _opencode(r: _Inputs) -> dict[str, Any]:
    bash: dict[str, str] = {"*": "allow"}  # first: the last matching pattern wins
    for _, prefixes in r.denies:
        for prefix in prefixes:
            bash[prefix] = "deny"
            bash[f"{prefix} *"] = "deny"
    config = {"$schema": "https://opencode.ai/config.json",
              "permission": {"edit": "allow", "bash": bash, "webfetch": "deny", "websearch": "deny",
                             "external_directory": "deny", "doom_loop": "deny"}}  # fmt: skip
    path = _write_json(r.folder / OPENCODE_CONFIG, config)
    env = {"OPENCODE_CONFIG": str(path), "OPENCODE_CONFIG_CONTENT": json.dumps(config),
           "OPENCODE_PERMISSION": json.dumps(config["permission"])}  # fmt: skip
    return {"env": env, "files": [str(path)]}


def _write_json(path: Path, data: object) -> Path:
    yamlio.write_atomic(path, json.dumps(data, indent=2) + "\n")
    return path
