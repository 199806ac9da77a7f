"""Claude Code's permission rules and PreToolUse hooks, as the fake `claude` applies them.

Modelled (reference/agent-clis.md section 2.1): rules `Tool` / `Tool(specifier)` in
`permissions.allow|ask|deny` (plus --allowedTools / --disallowedTools), checked deny, then ask,
then allow; Bash commands split on `&& || ; | |& &` and newlines, each part must be allowed,
any part may deny; leading env assignments and `timeout|time|nice|nohup|command|builtin`
stripped; `Bash(x *)` / `Bash(x:*)` with a word boundary, `*` anywhere else; the built-in
read-only commands; Edit rules in gitignore syntax (`//abs`, `~/`, `/root-relative`, `./`);
protected paths; the modes default, acceptEdits, plan, dontAsk, bypassPermissions (`-p`
cannot prompt, so "ask" is a denial). Hooks: matcher (exact names or a regex), the exact
PreToolUse JSON on stdin, exit 2 blocks (stderr is the reason), exit 0 + JSON
`hookSpecificOutput.permissionDecision` allow|deny|ask|defer (deny > defer > ask > allow),
any other exit or a timeout is a non-blocking error. Not modelled: redirect targets checked as
edits, command substitution hazards, Read rules, MCP tools, PermissionRequest hooks.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import hook_command

READ_ONLY = {"ls", "cat", "echo", "pwd", "head", "tail", "grep", "find", "wc", "which", "diff",
             "stat", "du", "cd", "true", "false"}  # fmt: skip
READ_ONLY_GIT = {"status", "log", "diff", "show", "branch", "rev-parse", "ls-files", "blame"}
ACCEPT_EDITS_BASH = {"mkdir", "touch", "rm", "rmdir", "mv", "cp", "sed"}
WRAPPERS = {"time", "nice", "nohup", "command", "builtin"}
PROTECTED_DIRS = {".git", ".claude", ".vscode", ".idea", ".husky", ".cargo", ".devcontainer"}
PROTECTED_FILES = {".gitconfig", ".npmrc", ".bashrc", ".zshrc", ".profile", ".bash_profile"}
EDIT_TOOLS = {"Edit", "Write", "NotebookEdit"}
RANK = {"deny": 4, "defer": 3, "ask": 2, "allow": 1}


def split_command(command: str) -> list[str]:
    """Split a shell command line on && || ; | |& & and newlines, outside quotes."""
    parts: list[str] = []
    buf: list[str] = []
    quote = ""
    i = 0
    while i < len(command):
        c = command[i]
        if quote:
            buf.append(c)
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
            buf.append(c)
        elif c == "\\" and i + 1 < len(command):
            buf.append(command[i : i + 2])
            i += 1
        elif command.startswith(("&&", "||", "|&"), i) or c in ";|&\n":
            parts.append("".join(buf))
            buf = []
            i += 1 if command.startswith(("&&", "||", "|&"), i) else 0
        else:
            buf.append(c)
        i += 1
    parts.append("".join(buf))
    return [p.strip() for p in parts if p.strip()]


def strip_prefixes(part: str) -> str:
    """The command without leading env assignments and wrappers (timeout N, nice, ...)."""
    words = part.split()
    while words:
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", words[0]) or words[0] in WRAPPERS:
            words = words[1:]
        elif words[0] == "timeout" and len(words) > 1:
            words = words[2:]
        else:
            break
    return " ".join(words)


def _glob(spec: str) -> str:
    return ".*".join(re.escape(piece) for piece in spec.split("*"))


def bash_matches(spec: str, command: str) -> bool:
    """Does a Bash(...) specifier match one command?"""
    spec = spec.strip()
    if spec.endswith(":*"):
        spec = spec[:-2] + " *"
    if spec.endswith(" *"):
        return re.fullmatch(_glob(spec[:-2]) + r"(\s.*)?", command, re.S) is not None
    return re.fullmatch(_glob(spec), command, re.S) is not None


def _path_glob(pattern: str) -> str:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def path_matches(spec: str, path: Path, root: Path) -> bool:
    """Does an Edit(...) specifier (gitignore syntax) match an absolute path?"""
    if spec.startswith("//"):
        target, pattern = str(path), spec[1:]
    elif spec.startswith("~/"):
        target, pattern = str(path), str(Path.home()) + spec[1:]
    else:
        try:
            target = path.relative_to(root).as_posix()
        except ValueError:
            return False
        pattern = spec[2:] if spec.startswith("./") else spec.lstrip("/")
        if "/" not in spec.strip("/"):
            pattern = "**/" + pattern
    return re.fullmatch(_path_glob(pattern), target) is not None


def protected(path: Path, root: Path) -> bool:
    """Is path one of Claude Code's protected paths?"""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return False
    if parts and parts[0] == ".claude" and len(parts) > 1 and parts[1] == "worktrees":
        return False
    return bool(set(parts) & PROTECTED_DIRS) or path.name in PROTECTED_FILES


@dataclass(frozen=True)
class Rule:
    """One permission rule: a tool name (or *) and an optional specifier."""

    tool: str
    spec: str | None

    @classmethod
    def parse(cls, text: str) -> Rule:
        m = re.fullmatch(r"\s*([^()\s]+)\s*(?:\((.*)\))?\s*", text, re.S)
        return cls(m.group(1), m.group(2)) if m else cls(text, None)

    def matches(self, tool: str, target: str | Path, root: Path) -> bool:
        name = "Edit" if tool in EDIT_TOOLS else tool
        if self.tool != "*" and self.tool != name:
            return False
        if self.spec is None or self.spec in ("", "*"):
            return True
        if name == "Bash":
            return bash_matches(self.spec, str(target))
        if name == "Edit" and isinstance(target, Path):
            return path_matches(self.spec, target, root)
        return False


@dataclass
class Rules:
    """allow / ask / deny rules from settings and flags."""

    allow: list[Rule] = field(default_factory=list)
    ask: list[Rule] = field(default_factory=list)
    deny: list[Rule] = field(default_factory=list)

    @classmethod
    def build(cls, settings: dict[str, Any], allowed: list[str], disallowed: list[str]) -> Rules:
        perms = settings.get("permissions") or {}

        def rules(items: list[str]) -> list[Rule]:
            # Write(...) rules are never consulted by Claude Code.
            return [r for r in (Rule.parse(t) for t in items) if r.tool != "Write"]

        flags = [t for item in allowed for t in re.split(r"[,\s]+(?![^(]*\))", item) if t]
        flags_deny = [t for item in disallowed for t in re.split(r"[,\s]+(?![^(]*\))", item) if t]
        return cls(
            allow=rules(list(perms.get("allow") or []) + flags),
            ask=rules(list(perms.get("ask") or [])),
            deny=rules(list(perms.get("deny") or []) + flags_deny),
        )

    def verdict(self, tool: str, target: str | Path, root: Path) -> str | None:
        """deny, ask or allow by the rules (None: no rule decides)."""
        if tool == "Bash":
            parts = [strip_prefixes(p) for p in split_command(str(target))] or [""]
            if any(r.matches(tool, p, root) for r in self.deny for p in parts):
                return "deny"
            if any(r.matches(tool, p, root) for r in self.ask for p in parts):
                return "ask"
            allowed = [any(r.matches(tool, p, root) for r in self.allow) for p in parts]
            if all(a or read_only(p) for a, p in zip(allowed, parts, strict=True)) and any(allowed):
                return "allow"
            return None
        for name, rules in (("deny", self.deny), ("ask", self.ask), ("allow", self.allow)):
            if any(r.matches(tool, target, root) for r in rules):
                return name
        return None


def read_only(part: str) -> bool:
    """Is one command part in Claude Code's built-in read-only set?"""
    if ">" in part or "$(" in part or "`" in part:
        return False
    words = part.split()
    if not words:
        return False
    if words[0] == "git":
        return len(words) > 1 and words[1] in READ_ONLY_GIT
    return words[0] in READ_ONLY


@dataclass
class HookVerdict:
    """What the PreToolUse hooks decided (decision None: nobody decided)."""

    decision: str | None = None
    reason: str = ""
    updated_input: dict[str, Any] | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)


def _matcher(matcher: str, tool: str) -> bool:
    if matcher in ("", "*"):
        return True
    if re.fullmatch(r"[A-Za-z0-9_|]+", matcher):
        return tool in matcher.split("|")
    return re.search(matcher, tool) is not None


def pre_tool_use(settings: dict[str, Any], payload: dict[str, Any], cwd: Path) -> HookVerdict:
    """Run the PreToolUse command hooks that match payload's tool; combine their decisions."""
    verdict = HookVerdict()
    if settings.get("disableAllHooks"):
        return verdict
    groups = (settings.get("hooks") or {}).get("PreToolUse") or []
    for group in groups:
        if not _matcher(str(group.get("matcher") or ""), payload["tool_name"]):
            continue
        for hook in group.get("hooks") or []:
            if hook.get("type", "command") != "command":
                continue
            timeout = float(hook.get("timeout") or 60)
            env = {"CLAUDE_PROJECT_DIR": str(cwd)}
            code, stdout, stderr = hook_command(str(hook["command"]), payload, cwd, timeout, env)
            verdict.calls.append({"command": hook["command"], "exit": code, "stderr": stderr})
            decision, reason, updated = _hook_decision(code, stdout, stderr)
            if decision and RANK[decision] > RANK.get(verdict.decision or "", 0):
                verdict.decision, verdict.reason = decision, reason
            if updated is not None and decision == "allow":
                verdict.updated_input = updated
    return verdict


def _hook_decision(
    code: int | None, stdout: str, stderr: str
) -> tuple[str | None, str, dict[str, Any] | None]:
    if code == 2:
        return "deny", stderr.strip(), None
    if code != 0 or not stdout.strip().startswith("{"):
        return None, "", None  # non-blocking: the call goes on
    try:
        data = json.loads(stdout)
    except ValueError:
        return None, "", None
    specific = data.get("hookSpecificOutput") or {}
    decision = specific.get("permissionDecision")
    reason = str(specific.get("permissionDecisionReason") or "")
    if decision is None and data.get("decision") in ("block", "approve"):
        decision = "deny" if data["decision"] == "block" else "allow"
        reason = str(data.get("reason") or "")
    if decision not in RANK:
        return None, "", None
    updated = specific.get("updatedInput")
    return decision, reason, updated if isinstance(updated, dict) else None
