"""Fake `aider`: its flags (argparse, exit 2), its console output, and exit 0 whatever happens.

Like the real CLI (aider/args.py, main.py, base_coder.py, analytics.py): an unreadable
`--message-file` is the one run-time error (exit 1); the reply is followed by
`Tokens: 1.0k sent, 200 received. Cost: $0.01 message, $0.01 session.`; `--analytics-log`
gets JSON lines (`message_send` with prompt_tokens, completion_tokens, cost, total_cost);
the chat history is appended to `--chat-history-file` (default: .aider.chat.history.md in the
repository root); with `--gitignore` (the default) and `--yes-always`, `.aider*` is added to
.gitignore; files are committed before editing when dirty (`--dirty-commits`, the default)
and after editing (`--auto-commits`, the default); `--dry-run` writes nothing; `--chat-mode ask`
only answers (the planner's reply). The model's shell commands never run (aider declines
them under --yes-always) and it cannot delete files. A failed step still exits 0. An edit of a
`--read` file is applied anyway, as the real aider 0.86.2 does under --yes-always ("Allow edits
to file that has not been added to the chat?" answered yes). The real binary's behaviour is
proven by tests/contract/test_aider.py; this fake serves the unit tests that need no model.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from common import (
    COST_USD,
    INPUT_TOKENS,
    OUTPUT_TOKENS,
    Action,
    CliParser,
    Model,
    apply_edit,
    planner_reply,
    record,
    say,
    shell,
)

from boss.core import git

VERSION = "0.86.2"
BOOL = argparse.BooleanOptionalAction


def parser() -> CliParser:
    p = CliParser(
        "aider",
        exit_code=2,
        unknown=lambda extra: f"aider: error: unrecognized arguments: {' '.join(extra)}",
    )
    p.add_argument("files", nargs="*")
    p.add_argument("--model")
    p.add_argument("--weak-model")
    p.add_argument("--editor-model")
    p.add_argument("--edit-format", "--chat-mode", dest="edit_format")
    p.add_argument("--architect", action="store_true")
    p.add_argument("-m", "--message", "--msg")
    p.add_argument("-f", "--message-file")
    p.add_argument("--yes-always", action="store_true")
    p.add_argument("--file", action="append", default=[])
    p.add_argument("--read", action="append", default=[])
    p.add_argument("--map-tokens", type=int)
    p.add_argument("--test-cmd")
    p.add_argument("--lint-cmd", action="append", default=[])
    p.add_argument("--analytics-log")
    p.add_argument("--chat-history-file")
    p.add_argument("--input-history-file")
    p.add_argument("--llm-history-file")
    p.add_argument("--env-file")
    p.add_argument("-c", "--config")
    p.add_argument("--timeout", type=float)
    p.add_argument("-v", "--verbose", action="store_true")
    for flag, default in (
        ("--pretty", True), ("--stream", True), ("--auto-commits", True),
        ("--dirty-commits", True), ("--gitignore", True), ("--git", True),
        ("--suggest-shell-commands", True), ("--check-update", True),
        ("--show-release-notes", None), ("--analytics", None), ("--auto-lint", True),
        ("--auto-test", False), ("--dry-run", False), ("--restore-chat-history", False),
        ("--fancy-input", True), ("--show-diffs", False), ("--detect-urls", True),
    ):  # fmt: skip
        p.add_argument(flag, action=BOOL, default=default)
    p.add_argument("--analytics-disable", action="store_true")
    return p


def format_tokens(count: int) -> str:
    """aider's utils.format_tokens."""
    if count < 1000:
        return f"{count}"
    if count < 10000:
        return f"{count / 1000:.1f}k"
    return f"{round(count / 1000)}k"


def format_cost(value: float) -> str:
    """aider's cost format: two decimals, more for amounts under a cent."""
    if value == 0:
        return "0.00"
    if abs(value) >= 0.01:
        return f"{value:.2f}"
    return f"{value:.{max(2, 2 - int(math.log10(abs(value))))}f}"


def main(argv: list[str]) -> int:
    args = parser().parse(argv)
    cwd = Path.cwd()
    top = git.git(cwd, "rev-parse", "--show-toplevel", check=False) if args.git else None
    root = Path(top.stdout.strip()) if top is not None and top.returncode == 0 else None
    message = args.message or ""
    if args.message_file:
        try:
            message = Path(args.message_file).read_text()
        except OSError as e:
            say(f"Error reading message file: {e}")
            return 1
    read_only = [Path(r).read_text() for r in args.read if Path(r).is_file()]
    model_input = "\n\n".join([message, *read_only])
    record("aider", argv, input=model_input, message=message, files=args.file + args.files,
           read=args.read)  # fmt: skip
    return Aider(args, cwd, root).run(message, Model.read(model_input))


class Aider:
    """One scripted aider session."""

    def __init__(self, args: Any, cwd: Path, root: Path | None) -> None:
        self.args = args
        self.cwd = cwd
        self.root = root
        self.base = root or cwd

    def analytics(self, event: str, **props: Any) -> None:
        if not self.args.analytics_log:
            return
        entry = {"event": event, "properties": {**props, "aider_version": VERSION},
                 "user_id": "fake-user", "time": int(time.time())}  # fmt: skip
        with open(self.args.analytics_log, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def banner(self) -> None:
        model = self.args.model or "anthropic/claude-sonnet-4-5"
        mode = self.args.edit_format or "diff"
        say(f"Aider v{VERSION}")
        say(f"Main model: {model} with {mode} edit format")
        if self.root is not None:
            count = len(git.zsplit(git.git(self.root, "ls-files", "-z").stdout))
            say(f"Git repo: .git with {count} files")
            say("Repo-map: using 4096 tokens, auto refresh")
        else:
            say("Git repo: none")
        for name in self.args.file + self.args.files:
            say(f"Added {name} to the chat.")
        for name in self.args.read:
            say(f"Added {name} to the chat (read-only).")

    def gitignore(self) -> None:
        if not (self.args.gitignore and self.root is not None and self.args.yes_always):
            return
        ignore = self.root / ".gitignore"
        text = ignore.read_text() if ignore.exists() else ""
        if ".aider*" not in text.splitlines():
            ignore.write_text(text + ("" if not text or text.endswith("\n") else "\n") + ".aider*\n")
            say("Added .aider* to .gitignore")

    def history(self, message: str) -> None:
        path = Path(self.args.chat_history_file or self.base / ".aider.chat.history.md")
        with path.open("a") as f:
            f.write(f"\n# aider chat started at {time.strftime('%Y-%m-%d %H:%M:%S')}\n\n")
            if message:
                f.write(f"#### {message.strip()}\n\n")

    def run(self, message: str, model: Model) -> int:
        self.analytics("launched")
        self.gitignore()
        self.banner()
        self.history(message)
        if not message:
            return 0  # the chat reads stdin, which is at its end
        self.analytics("cli session", edit_format=self.args.edit_format or "diff")
        ask = self.args.edit_format == "ask"
        acts = [] if ask else model.actions()
        for action in acts:
            if action.kind == "sleep":
                time.sleep(action.seconds)
            elif action.kind == "fail":
                say(f"litellm.APIError: the model failed (exit {action.code})")
        say("")
        if not ask:
            say(model.opening())
        say(planner_reply() if ask else model.final_text())
        say("")
        say(f"Tokens: {format_tokens(INPUT_TOKENS)} sent, {format_tokens(OUTPUT_TOKENS)} "
            f"received. Cost: ${format_cost(COST_USD)} message, ${format_cost(COST_USD)} "
            "session.")  # fmt: skip
        self.analytics("message_send", main_model=self.args.model or "sonnet",
                       edit_format=self.args.edit_format or "diff", prompt_tokens=INPUT_TOKENS,
                       completion_tokens=OUTPUT_TOKENS,
                       total_tokens=INPUT_TOKENS + OUTPUT_TOKENS, cost=COST_USD,
                       total_cost=COST_USD)  # fmt: skip
        edited = [a for a in acts if a.kind == "edit" and a.op != "delete"]
        for action in edited:
            self.edit(action)
        for action in acts:
            if action.kind == "shell" and self.args.suggest_shell_commands:
                say(f"\n```bash\n{action.command}\n```")
                say("Run shell command? (Y)es/(N)o/(D)on't ask again [Yes]: n")
        self.commit(edited)
        if self.args.auto_test and self.args.test_cmd and edited:
            _, output = shell(self.args.test_cmd, self.base)
            say(output.rstrip())
        self.analytics("exit", reason="Completed --message")
        return 0

    def edit(self, action: Action) -> None:
        if self.args.dry_run:
            say(f"Did not apply edit to {action.path} (--dry-run)")
            return
        if self.root is not None and self.args.dirty_commits:
            dirty = git.git(self.root, "status", "--porcelain", "--", action.path).stdout.strip()
            if dirty and (self.cwd / action.path).exists():
                say(f"Committing {action.path} before applying edits.")
                self._commit([action.path], "chore: commit dirty file before aider edits")
        problem = apply_edit(action, self.cwd)
        say(problem or f"Applied edit to {action.path}")

    def commit(self, edited: list[Action]) -> None:
        if self.args.dry_run or not self.args.auto_commits or self.root is None or not edited:
            return
        sha = self._commit([a.path for a in edited], "feat: apply the requested changes")
        if sha:
            say(f"Commit {sha[:7]} feat: apply the requested changes")

    def _commit(self, paths: list[str], message: str) -> str | None:
        assert self.root is not None
        git.git(self.cwd, "add", "--", *paths)
        if git.git(self.cwd, "diff", "--cached", "--quiet", check=False).returncode == 0:
            return None
        env = {**git.identity_env(), "GIT_AUTHOR_NAME": f"{os.environ.get('GIT_AUTHOR_NAME', 'you')} (aider)"}
        git.git(self.cwd, "commit", "--quiet", "--no-verify", "-m", message, env=env)
        return git.head(self.cwd)
