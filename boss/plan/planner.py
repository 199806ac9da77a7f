"""`boss plan --agent NAME "TASK"`: an agent writes the manifest, and the Boss checks it.

The agent runs read-only in a throwaway detached worktree of the base commit (so it cannot
touch the user's checkout), with stdin closed and a timeout. Its answer is validated; an
invalid answer is sent back with the validation errors, up to three attempts.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from boss.core import git, yamlio
from boss.core.errors import AgentError, InputError, ManifestError
from boss.core.manifest import Manifest
from boss.core.paths import BOSS_DIR
from boss.plan.repo_summary import detect_test_command, reader, readme_excerpt, summarize

ATTEMPTS = 3
_YAML_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*ya?ml[^\n]*\n(.*?)^[ \t]*\1[ \t]*$", re.M | re.S)
_FIRST_KEY = re.compile(r"^(?:version|plan|task|workers)[ \t]*:", re.M)
PREVIOUS_OUTPUT_LIMIT = 12000
# Fills in what the Boss records (base, base_commit, overrides) and validates: raw, source.
Finalize = Callable[[dict[str, Any], str], Manifest]


class Agent(Protocol):
    """An agent CLI that answers a planning prompt, read-only (built by worker.api.planner_agent)."""

    @property
    def name(self) -> str: ...

    def check(self) -> None:
        """ConfigError, before planning starts, when this agent cannot plan."""

    def ask(self, worktree: Path, prompt_file: Path, log: Path, last_output: Path, attempt: int) -> str:
        """Its final text for one prompt, run in the throwaway worktree with its output in log;
        AgentError when it fails, times out or touches the repository's git directory (a failed
        run's output is then kept in last_output)."""
        ...


@dataclass(frozen=True)
class PlannerRun:
    """Where one planning run keeps its prompts and outputs: .boss/planner/<run>/."""

    repo: Path
    root: Path

    @classmethod
    def new(cls, repo: Path) -> PlannerRun:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        return cls(repo, repo / BOSS_DIR / "planner" / f"{stamp}-{os.getpid()}")

    @property
    def worktree(self) -> Path:
        return self.root / "worktree"

    @property
    def last_output(self) -> Path:
        return self.root.parent / "last-output.txt"

    def prompt(self, attempt: int) -> Path:
        return self.root / f"attempt-{attempt}.prompt.md"

    def output(self, attempt: int) -> Path:
        return self.root / f"attempt-{attempt}.log"


def extract_yaml(text: str) -> str:
    """The YAML of an answer: its last ```yaml fenced block, else the text from its first
    top-level manifest key on (the agent's stderr shares the log and may come first)."""
    blocks = _YAML_FENCE.findall(text)
    if blocks:
        return str(blocks[-1][1])
    start = _FIRST_KEY.search(text)
    return text[start.start() :] if start else text


def check_answer(text: str, source: str, finalize: Finalize) -> Manifest:
    """The manifest an answer holds; ManifestError listing its problems otherwise."""
    try:
        raw = yamlio.load(extract_yaml(text), source)
    except InputError as e:
        raise ManifestError(str(e)) from e
    if not isinstance(raw, dict):
        msg = f"{source}: top level: the answer is not a YAML mapping (a manifest with workers)"
        raise ManifestError(msg)
    return finalize(raw, source)


def build_prompt(
    task: str, worktree: Path, commit: str, attempt: int, problems: list[str], previous: str
) -> str:
    """The planning prompt: the task, the repository, the format and any earlier problems."""
    from boss.core.schema import dumps
    from boss.core.templates import make_env

    files = git.ls_files(worktree)
    read = reader(worktree)
    return (
        make_env()
        .get_template("planner_prompt.md.j2")
        .render(
            task=task,
            commit=commit,
            summary=summarize(files),
            readme=readme_excerpt(files, read),
            test_command=detect_test_command(files, read),
            schema=dumps(),
            problems=problems,
            previous=previous[-PREVIOUS_OUTPUT_LIMIT:],
            attempt=attempt,
            attempts=ATTEMPTS,
        )
    )


def plan_with_agent(repo: Path, agent: Agent, task: str, base_commit: str, finalize: Finalize) -> Manifest:
    """Ask the agent for a manifest until one validates (ATTEMPTS at most).

    Args:
        repo: the user's repository (nothing in its checkout is touched).
        agent: the planning agent (an agent profile, `.boss/config.yaml`'s or built-in).
        task: what the plan must achieve.
        base_commit: the commit the planner's throwaway worktree checks out.
        finalize: fills in what the Boss records (base, ...) and validates; raises ManifestError.

    Raises:
        AgentError: the agent failed, timed out, or gave no valid manifest in ATTEMPTS tries.
    """
    run = PlannerRun.new(repo)
    run.root.mkdir(parents=True, exist_ok=True)
    git.worktree_add_detached(repo, run.worktree, base_commit)
    try:
        problems: list[str] = []
        answer = ""
        for attempt in range(1, ATTEMPTS + 1):
            prompt = build_prompt(task, run.worktree, base_commit, attempt, problems, answer)
            run.prompt(attempt).write_text(prompt, encoding="utf-8")
            answer = agent.ask(
                run.worktree, run.prompt(attempt), run.output(attempt), run.last_output, attempt
            )
            try:
                return check_answer(answer, f"planner answer {attempt}", finalize)
            except ManifestError as e:
                problems = e.problems
    finally:
        git.worktree_remove(repo, run.worktree)
    yamlio.write_atomic(run.last_output, answer)
    shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
    msg = (
        f"planner {agent.name!r} gave no valid manifest in {ATTEMPTS} attempts; its last answer "
        f"is kept in {_rel(repo, run.last_output)} (prompts and answers: {_rel(repo, run.root)}/). "
        f"Last problems: {shown}"
    )
    raise AgentError(msg)


def _rel(repo: Path, path: Path) -> str:
    try:
        return path.relative_to(repo).as_posix()
    except ValueError:  # pragma: no cover - every planner file is below the repo
        return str(path)
