"""Gemini CLI: `gemini --prompt=... --output-format stream-json` (JSONL, tokens only).

Enforcement: a BeforeTool hook that runs the guard, in the worktree's project settings
(`.gemini/settings.json`, the one place a headless run reliably reads it: a file named by
GEMINI_CLI_SYSTEM_SETTINGS_PATH is skipped unless it and every parent folder are root-owned and
not group/other-writable). The file is kept out of git (.git/info/exclude; skip-worktree when
the repository tracks one) and rewritten before every run, so an edit the agent made never
survives into the next run. A `--policy` file allows shell and edits and denies the static
TIER 3 commands with `commandPrefix` lists (Gemini prepends `"command":"` to a `commandRegex`,
so anchored patterns never match). Gemini runs hooks before its policy.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boss.core import approvals, git
from boss.core.errors import GitError
from boss.core.paths import PlanPaths
from worker.agents import output as out
from worker.agents import ratelimit as rl
from worker.agents.clis import common
from worker.agents.enforce import HOOK_TIMEOUT, Inputs, write_json
from worker.agents.profile import AgentRun, Invocation

SETTINGS = "gemini-settings.json"
POLICY = "gemini-policy.toml"
PROJECT_SETTINGS = ".gemini/settings.json"
EXCLUDES = ["/.gemini/settings.json", "/.gemini/.settings.json.*.tmp"]
HOOK_NAME = "boss-guard"
HOOKED = ("run_shell_command", "write_file", "replace")
LIMITS = (
    "A BeforeTool hook on run_shell_command, write_file and replace, from the worktree's project"
    " settings (.gemini/settings.json, kept out of git, rewritten before each run), and a --policy"
    " file that allows shell and edits and denies the static TIER 3 commands (commandPrefix)."
    " Hooks run before the policy. Web fetch and search are denied."
)
_ENV = {"GEMINI_CLI_TRUST_WORKSPACE": "true"}
# What Gemini prints on stderr for each failed request it retries (or gives up on).
# A 429: "Attempt 1 failed: <message>\nSuggested retry after 1s.. Retrying after 5200ms..."; a
# 5xx: "Attempt 1 failed with status 503. Retrying with backoff... _ApiError: {...}".
_ATTEMPT = re.compile(r"^Attempt (\d+) failed:? (.*(?:\n(?!Attempt |\{|\s+at ).*)?)", re.MULTILINE)


def _prompt(path: Path) -> list[str]:
    # --prompt=TEXT: a value starting with "-" cannot be taken for a flag.
    text = common.prompt_text(path)
    if text is not None:
        return [f"--prompt={text}"]
    return ["--include-directories", str(path.parent), f"--prompt={common.READ_IT.format(path=path)}"]


def render(r: Inputs) -> dict[str, Any]:
    """The hook in the worktree's project settings, a record of it, and the policy file."""
    entry = {"type": "command", "command": r.hook, "timeout": HOOK_TIMEOUT * 1000, "name": HOOK_NAME}
    hooks = {"BeforeTool": [{"matcher": "|".join(HOOKED), "hooks": [entry]}]}
    record = write_json(r.folder / SETTINGS, {"hooksConfig": {"enabled": True}, "hooks": hooks})
    project_settings(r.run.repo, r.run.worktree, hooks)  # inside the worktree: not in `files`
    rules = [
        '[[rule]]\ntoolName = "run_shell_command"\ndecision = "allow"\npriority = 100\n',
        '[[rule]]\ntoolName = ["write_file", "replace"]\ndecision = "allow"\npriority = 100\n',
        '[[rule]]\ntoolName = ["web_fetch", "google_web_search"]\ndecision = "deny"\npriority = 900\n'
        'denyMessage = "TIER 3: network egress needs a person\'s approval; stop and report what you need."\n',
    ]
    if r.test:  # the worker's own test (the hook says TIER 1 too)
        rules.append(f'[[rule]]\ntoolName = "run_shell_command"\ncommandPrefix = [{json.dumps(r.test)}]\n'
                     'decision = "allow"\npriority = 500\n')  # fmt: skip
    approved = approved_commands(r.run)
    if approved:
        # Gemini's own heuristics refuse some commands headless (`rm -rf`: "requires user
        # confirmation") unless a commandPrefix rule matches; the hook still judges each call.
        rules.append(f'[[rule]]\ntoolName = "run_shell_command"\ncommandPrefix = {json.dumps(approved)}\n'
                     'decision = "allow"\npriority = 950\n')  # fmt: skip
    for rule, prefixes in r.denies:
        # commandPrefix matches the command's start followed by a space or its end, in each
        # part of a chained command; a commandRegex cannot be anchored (see the docstring).
        message = f"TIER 3 ({rule.reason}): needs a person's approval; stop and report the exact command."
        rules.append(
            f'[[rule]]\ntoolName = "run_shell_command"\ncommandPrefix = {json.dumps(prefixes)}\n'
            f'decision = "deny"\npriority = 900\ndenyMessage = {json.dumps(message)}\n'
        )
    policy_file = r.folder / POLICY
    policy_file.write_text("# Rendered by boss (tiered autonomy).\n\n" + "\n".join(rules), encoding="utf-8")
    return {"policy": str(policy_file), "files": [str(record), str(policy_file)]}


def approved_commands(run: AgentRun) -> list[str]:
    """The commands a person approved for this worker that have not run yet."""
    folder = PlanPaths.of(run.repo, run.plan).approvals_dir
    found = {
        req.command
        for req in approvals.list_requests(folder, approvals.APPROVED)
        if req.worker == run.worker_id
    }
    return sorted(found)


def project_settings(repo: Path, worktree: Path, hooks: dict[str, Any]) -> Path:
    """Write boss's hook into the worktree's `.gemini/settings.json`, replacing what is there.

    Whatever the agent left there (a symlink, a folder, hooks switched off) is removed first.
    A settings file the repository tracks keeps its committed content, with boss's hook first
    and hooks enabled, and is marked skip-worktree so the worker's commit never takes it.
    """
    git.add_exclude(repo, EXCLUDES)
    folder = worktree / ".gemini"
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        folder.unlink()
    path = folder / "settings.json"
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
    committed = _committed(worktree)
    settings: dict[str, Any] = dict(committed or {})
    found = settings.get("hooks")
    theirs: dict[str, Any] = found if isinstance(found, dict) else {}
    listed = theirs.get("BeforeTool")
    before: list[Any] = listed if isinstance(listed, list) else []
    settings["hooks"] = {**theirs, "BeforeTool": [*hooks["BeforeTool"], *before]}
    settings["hooksConfig"] = {"enabled": True, "disabled": []}
    write_json(path, settings)
    if committed is not None:
        git.git(worktree, "update-index", "--skip-worktree", "--", PROJECT_SETTINGS)
    return path


def _committed(worktree: Path) -> dict[str, Any] | None:
    """The project settings the worktree's HEAD commits (None: not tracked)."""
    tracked = git.git(worktree, "ls-files", "-z", "--", PROJECT_SETTINGS).stdout
    if not tracked:
        return None
    data: Any = {}
    with contextlib.suppress(GitError, ValueError):
        data = json.loads(git.git(worktree, "show", f"HEAD:{PROJECT_SETTINGS}").stdout)
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class GeminiProfile:
    """Gemini CLI: `gemini --prompt=... --output-format stream-json` (JSONL, tokens only)."""

    name: str = "gemini"

    @property
    def reports_cost(self) -> bool:
        """Its output gives tokens, never money: no cost cap can be held on it."""
        return False

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

    def tool_calls(self, output: str) -> int | None:
        """`tool_use` events of the hooked tools, less those Gemini refused before any hook.

        A call whose parameters Gemini rejects (`invalid_tool_params`: "Path not in workspace")
        never reaches the hook, so it says nothing about whether the hook ran.
        """
        events = out.json_lines(output)
        refused = {
            e.get("tool_id")
            for e in events
            if e.get("type") == "tool_result"
            and isinstance(e.get("error"), dict)
            and e["error"].get("type") == "invalid_tool_params"
        }
        return sum(
            1
            for e in events
            if e.get("type") == "tool_use"
            and e.get("tool_name") in HOOKED
            and e.get("tool_id") not in refused
        )

    def failure(self, output: str) -> str | None:
        """The message of a `result` event with status error ("[API Error: ...]"), or, with no
        result event, of an `error` event."""
        events = out.json_lines(output)
        results = [e for e in events if e.get("type") == "result"]
        if results:
            last = results[-1]
            if last.get("status") != "error":
                return None
            return _message(last.get("error")) or "error"
        errors = [_message(e.get("error") or e.get("message")) for e in events if e.get("type") == "error"]
        return errors[-1] or "error" if errors else None

    def rate_limit(self, output: str) -> rl.RateLimit | None:
        """A rate limit or overload Gemini gave up on, or was stopped retrying.

        Gemini CLI 0.61.0 retries a 429 (RESOURCE_EXHAUSTED) or 503 itself, 10 attempts by
        default (`general.maxAttempts`), with its own backoff (5 s doubling to 30 s, jitter) that
        a shorter RetryInfo delay does not shorten, one stderr line each ("Attempt 1 failed: <the
        provider's message>\nSuggested retry after 1s.. Retrying after 5200ms..."), then ends
        with a `result` of status error ("[API Error: <message>\nSuggested retry after 1s.]\n
        Please wait and try again later. ..."). A delay over 300 s or a daily quota is a
        TerminalQuotaError, not retried: no rate limit here.
        """
        return _rate_limit(output)


def _rate_limit(output: str) -> rl.RateLimit | None:
    """See GeminiProfile.rate_limit."""
    events = out.json_lines(output)
    attempts = [m for m in _ATTEMPT.finditer(output) if rl.kind_of(None, m.group(2))]
    results = [e for e in events if e.get("type") == "result"]
    if results:
        last = results[-1]
        if last.get("status") != "error":
            return None
        text = _message(last.get("error"))
    elif attempts and "Retrying" in attempts[-1].group(2) and not _answered_after(output, attempts[-1].end()):
        text = attempts[-1].group(0)  # stopped while it waited to retry
    else:
        return None
    if "TerminalQuotaError" in output[-20000:] and "RetryableQuotaError" not in output[-20000:]:
        return None  # a daily quota, a capacity exhausted: waiting does not clear it
    status = rl.status_in(text)
    kind = rl.kind_of(status, text)
    if kind is None:
        return None
    return rl.RateLimit(kind, rl.one_line(text), rl.delay_in(text), status, len(attempts))


def _answered_after(output: str, at: int) -> bool:
    """Whether the model answered after offset `at` (an assistant message or a tool call)."""
    return any(e.get("type") in ("tool_use", "tool_result") or e.get("role") == "assistant"
               for e in out.json_lines(output[at:]))  # fmt: skip


def _message(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or "").strip()
    return str(error or "").strip()
