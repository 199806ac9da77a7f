"""The guard's judgement of one tool call, and its side effects.

`Judge.decide` takes what a hook sent (tool name, tool input, working folder; the wire is
`worker.autonomy.guard`'s), classifies the command, or the files an edit changes, and acts on
the tier: TIER 1 allows; TIER 2 checkpoints the worktree (`boss.core.checkpoint`), then allows;
TIER 3 allows once a person's approval of exactly this command (`boss.core.approvals`), else
records an approval request and blocks (or, for the broker with a wait, says it waits: the
broker waits for the decision, then has the call judged again). Every decision is a state-log
line (ACTION `guard`). The guard imports this module only when it judges by itself; imports
stay lazy for its start-up.
"""

from __future__ import annotations

from pathlib import Path

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the guard 3 ms
if TYPE_CHECKING:
    from boss.core.paths import PlanPaths
    from worker.autonomy.classify import Decision

SHELL_TOOLS = frozenset({"Bash", "run_shell_command", "shell", "local_shell", "exec_command"})
EDIT_TOOLS = frozenset({"Edit", "Write", "MultiEdit", "NotebookEdit", "write_file", "replace",
                        "apply_patch", "edit"})  # fmt: skip
PATH_KEYS = ("file_path", "notebook_path", "absolute_path", "path")
PATCH_HEADERS = {"*** Add File: ": "write", "*** Update File: ": "write",
                 "*** Delete File: ": "delete", "*** Move to: ": "write"}  # fmt: skip
# `[cd DIR &&] apply_patch <<'EOF'` ... `EOF`: a patch Codex's shell tool applies itself. ASCII
# blanks only, and a folder of plain characters or quotes without expansions: anything else
# (a `#` that makes the rest a comment, an expansion) could make bash run the body as commands.
PATCH_HEREDOC = (
    r"[ \t\n]*(?:cd[ \t]+(?P<dir>'[^'\n]*'|\"[^\"$`\\\n]*\"|[A-Za-z0-9_./@%+=:,-][A-Za-z0-9_./@%+=:,#-]*)"
    r"[ \t]*&&[ \t]*)?(?:apply_patch|applypatch)[ \t]*<<[ \t]*"
    r"(?P<quote>['\"]?)(?P<tag>[A-Za-z_][A-Za-z0-9_]*)(?P=quote)[ \t]*\n(?P<body>.*?)\n(?P=tag)[ \t\n]*"
)


def _short(text: str, limit: int = 160) -> str:
    # A quoted command keeps its runs of spaces: the state log shows what ran, exactly.
    from boss.core.statelog import excerpt

    return excerpt(text, limit)


class Judge:
    """One worker's guard: judges a tool call and does what its tier asks (log, checkpoint, request)."""

    def __init__(
        self,
        agent: str,
        plan: str,
        worker_id: str,
        policy: Path | None,
        env: dict[str, str],
        *,
        wait: float = 0.0,
    ) -> None:
        self.agent, self.plan, self.worker_id = agent, plan, worker_id
        self.policy_file, self.env = policy, env
        self.wait = wait  # seconds the caller (the broker) waits for a person on a TIER 3 request
        self.waiting = ""  # the request it waits on, once decide has recorded one

    def decide(self, tool: str, tool_input: dict[str, object], hook_cwd: str) -> tuple[bool, str]:
        """(allowed, reason) for one tool call, its side effects done; hook_cwd "" when the hook sent none."""
        worktree, repo = self.locate(hook_cwd)
        from boss.core.paths import PlanPaths

        paths = PlanPaths.of(repo, self.plan)
        cwd = Path(hook_cwd or worktree)
        subject, decision = self.judge(tool, tool_input, cwd, worktree, repo, paths)
        return self.act(subject, decision, worktree, cwd, paths)

    def locate(self, hook_cwd: str) -> tuple[Path, Path]:
        """The worktree (BOSS_WORKTREE, else the hook's cwd's checkout) and the main repository."""
        worktree_env, repo_env = self.env.get("BOSS_WORKTREE"), self.env.get("BOSS_REPO")
        if worktree_env and repo_env:
            return Path(worktree_env), Path(repo_env)
        from boss.core import git

        start = Path(worktree_env or hook_cwd or str(Path.cwd()))
        worktree = Path(worktree_env) if worktree_env else git.toplevel(start)
        return worktree, Path(repo_env) if repo_env else git.main_root(worktree)

    def judge(
        self,
        tool: str,
        tool_input: dict[str, object],
        cwd: Path,
        worktree: Path,
        repo: Path,
        paths: PlanPaths,
    ) -> tuple[str, Decision]:
        from worker.autonomy import classify as cl
        from worker.autonomy.context import make_context
        from worker.autonomy.policy_file import load_policy

        overlay = self.policy_file or paths.agent_config_dir(self.worker_id) / "policy.yaml"
        policy = load_policy(repo, [overlay])
        ctx = make_context(worktree, self.env)
        if tool in SHELL_TOOLS:
            command = tool_input.get("command")
            # Only Codex applies a patch sent through its shell tool itself (argv
            # `["apply_patch", PATCH]` or a bare here-document); any other CLI runs it with bash.
            shell_patch = patch_in_shell(command) if self.agent == "codex" else None
            if isinstance(command, list):
                import shlex

                command = shlex.join(str(c) for c in command)
            if not isinstance(command, str):
                return tool, cl.Decision(3, f"{tool}: no command to judge", "cannot-parse")
            folder = tool_input.get("dir_path") or tool_input.get("directory")
            run_cwd = cwd / str(folder) if folder else cwd
            if shell_patch is None:
                return command, cl.classify(command, run_cwd, worktree, policy, context=ctx)
            folder, patch = shell_patch
            tool, tool_input, cwd = "apply_patch", {"input": patch}, run_cwd / folder if folder else run_cwd
        if tool in EDIT_TOOLS:
            targets = _edit_targets(tool_input)
            subject = f"{tool} {' '.join(p for p, _ in targets)}".strip()
            if not targets:
                return subject, cl.Decision(3, f"{tool}: cannot tell which file it changes", "cannot-parse")
            decisions = [
                cl.classify_path(p, cwd, worktree, policy, tool=tool, kind=k, context=ctx) for p, k in targets
            ]
            top = max(decisions, key=lambda d: d.tier)
            parts = tuple(p for d in decisions for p in d.parts)
            return subject, cl.Decision(top.tier, top.reason, top.rule, parts)
        return tool, cl.Decision(1, f"{tool}: not a shell or file-changing tool", "other-tool")

    def act(
        self, subject: str, decision: Decision, worktree: Path, cwd: Path, paths: PlanPaths
    ) -> tuple[bool, str]:
        why = f"{_short(subject)} (rule {decision.rule})"
        if decision.tier == 1:
            self.log(paths, f"tier1 allowed: {why}")
            return True, f"TIER 1: {decision.reason}"
        message = f"boss checkpoint before: {_short(subject, 200)}"
        if decision.tier == 2:
            cp = self.checkpoint(worktree, message)
            self.log(paths, f"tier2 allowed after checkpoint {cp}: {why}", cp)
            return True, f"TIER 2 (checkpoint {cp}): {decision.reason}"
        from boss.core import approvals

        folder = paths.approvals_dir
        used = approvals.consume(folder, self.worker_id, subject)
        if used is not None:
            cp = self.checkpoint(worktree, message)
            self.log(paths, f"tier3 allowed once by approval {used.id} after checkpoint {cp}: {why}", cp)
            return True, f"TIER 3 approved by a person ({used.id}): {decision.reason}"
        refused = approvals.denied(folder, self.worker_id, subject)
        if refused is not None:
            self.log(paths, f"tier3 blocked (denied as {refused.id}): {why}", f"approvals/{refused.id}.json")
            note = f": {refused.decision_reason}" if refused.decision_reason else ""
            return False, (
                f"BLOCKED (TIER 3): {decision.reason}. A person already denied this command"
                f" ({refused.id}){note}. Do not retry it or work around it."
            )
        req, new = approvals.request_new(
            folder, plan=self.plan, worker=self.worker_id, command=subject, reason=decision.reason,
            rule=decision.rule, tier=decision.tier, cwd=str(cwd),
        )  # fmt: skip
        if new:  # a person not looking at `boss ui` hears of it (boss.core.notify)
            from boss.core import notify

            notify.emit(paths.repo, notify.APPROVAL, self.plan, worker=self.worker_id, request=req.to_json())
        if self.wait > 0:
            self.waiting = req.id
            self.log(
                paths,
                f"tier3 waiting up to {self.wait:g}s for a person: {why}; approval request {req.id}",
                f"approvals/{req.id}.json",
            )
        else:
            self.log(paths, f"tier3 blocked: {why}; approval request {req.id}", f"approvals/{req.id}.json")
        return False, (
            f"BLOCKED (TIER 3): {decision.reason}. It needs a person's approval: request {req.id} is"
            f" recorded (`boss approve {req.id} --plan {self.plan}`); once approved, exactly this"
            " command runs once on a later run. Do not try another way to do the same thing:"
            " continue without it, or stop and say what you need."
        )

    def checkpoint(self, worktree: Path, message: str) -> str:
        """Checkpoint the worktree (imported here: git and subprocess only on this path)."""
        from boss.core import checkpoint

        return checkpoint.take(worktree, self.plan, self.worker_id, message).ref

    def log(self, paths: PlanPaths, result: str, artifacts: str = "") -> None:
        import time

        from boss.core import statelog

        strategy, iteration = self.env.get("BOSS_STRATEGY"), self.env.get("BOSS_ITERATION")
        iteration_id = (
            f"{self.worker_id}.s{strategy}.i{iteration}" if strategy and iteration else self.worker_id
        )
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        statelog.append(paths.log, statelog.Event(now, "RUNNING", iteration_id, "guard", result, artifacts))


def _edit_targets(tool_input: dict[str, object]) -> list[tuple[str, str]]:
    """(path, write|delete) of every file a file tool changes; patches name theirs in headers."""
    found: list[tuple[str, str]] = []
    for key in PATH_KEYS:
        value = tool_input.get(key)
        if isinstance(value, str) and value:
            found.append((value, "write"))
    if found:
        return found
    texts = [v for v in tool_input.values() if isinstance(v, str)]
    texts += [i for v in tool_input.values() if isinstance(v, list) for i in v if isinstance(i, str)]
    for text in texts:
        for line in text.splitlines():
            for header, kind in PATCH_HEADERS.items():
                if line.startswith(header) and line[len(header) :].strip():
                    found.append((line[len(header) :].strip(), kind))
    return found


def patch_in_shell(command: object) -> tuple[str, str] | None:
    """(folder, patch) when the command is only a patch Codex applies itself, else None.

    The forms: the argv `["apply_patch", PATCH]`, and the line `[cd DIR &&] apply_patch <<'EOF'`
    ... `EOF`. Anything more (a second command, a here-document that expands `$` or backquotes,
    a body that ends the here-document early, a folder with expansions or a `#`) is not a bare
    patch: None, and the line is judged as the shell command it is.
    """
    if isinstance(command, list):
        bare = len(command) == 2 and command[0] in ("apply_patch", "applypatch")
        return ("", str(command[1])) if bare and isinstance(command[1], str) else None
    if not isinstance(command, str) or ("apply_patch" not in command and "applypatch" not in command):
        return None
    import re

    found = re.fullmatch(PATCH_HEREDOC, command, re.S | re.ASCII)
    if found is None:
        return None
    tag, body, folder = found["tag"], found["body"], found["dir"] or ""
    if not found["quote"] and any(c in body for c in "$`\\"):
        return None  # an unquoted here-document expands: it may run more than a patch
    if any(line.strip() == tag for line in body.splitlines()):
        return None  # the here-document ends early: what follows would run as commands
    if folder.startswith("#") or re.search(r"[$`\\*?\[{~]", folder):
        return None
    return folder[1:-1] if folder[:1] in "'\"" and len(folder) > 1 else folder, body
