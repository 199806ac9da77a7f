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
from typing import TYPE_CHECKING, Any

from boss.core import git, runlog, yamlio
from boss.core.config import Config
from boss.core.errors import AgentError, InputError, ManifestError
from boss.core.manifest import Manifest
from boss.core.paths import BOSS_DIR
from boss.core.proc import run_group
from boss.plan.repo_summary import detect_test_command, reader, readme_excerpt, summarize

if TYPE_CHECKING:
    from worker.agents.profile import AgentProfile

ATTEMPTS = 3
_YAML_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*ya?ml[^\n]*\n(.*?)^[ \t]*\1[ \t]*$", re.M | re.S)
_FIRST_KEY = re.compile(r"^(?:version|plan|task|workers)[ \t]*:", re.M)
PREVIOUS_OUTPUT_LIMIT = 12000
# Fills in what the Boss records (base, base_commit, overrides) and validates: raw, source.
Finalize = Callable[[dict[str, Any], str], Manifest]


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
    from boss.plan.render import make_env

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


def plan_with_agent(
    repo: Path,
    profile_name: str,
    task: str,
    base_commit: str,
    config: Config,
    finalize: Finalize,
) -> Manifest:
    """Ask the agent profile for a manifest until one validates (ATTEMPTS at most).

    Args:
        repo: the user's repository (nothing in its checkout is touched).
        profile_name: an agent profile (`.boss/config.yaml` or built-in).
        task: what the plan must achieve.
        base_commit: the commit the planner's throwaway worktree checks out.
        config: the project's config (profiles, planner_timeout).
        finalize: fills in what the Boss records (base, ...) and validates; raises ManifestError.

    Raises:
        AgentError: the agent failed, timed out, or gave no valid manifest in ATTEMPTS tries.
    """
    from worker.agents.profile import get_profile

    profile = get_profile(profile_name, config)
    run = PlannerRun.new(repo)
    run.root.mkdir(parents=True, exist_ok=True)
    git.worktree_add_detached(repo, run.worktree, base_commit)
    try:
        problems: list[str] = []
        answer = ""
        for attempt in range(1, ATTEMPTS + 1):
            prompt = build_prompt(task, run.worktree, base_commit, attempt, problems, answer)
            run.prompt(attempt).write_text(prompt, encoding="utf-8")
            answer = _ask(run, profile, attempt, config)
            try:
                return check_answer(answer, f"planner answer {attempt}", finalize)
            except ManifestError as e:
                problems = e.problems
    finally:
        git.worktree_remove(repo, run.worktree)
    yamlio.write_atomic(run.last_output, answer)
    shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
    msg = (
        f"planner {profile_name!r} gave no valid manifest in {ATTEMPTS} attempts; its last answer "
        f"is kept in {_rel(repo, run.last_output)} (prompts and answers: {_rel(repo, run.root)}/). "
        f"Last problems: {shown}"
    )
    raise AgentError(msg)


def check_planner(profile_name: str, config: Config, repo: Path) -> None:
    """ConfigError, before any planning starts, when the profile cannot plan (the scripted agent).

    The invocation is built against a throwaway prompt: the real one is written per attempt.
    """
    import tempfile

    from worker.agents.profile import get_profile

    profile = get_profile(profile_name, config)
    with tempfile.TemporaryDirectory(prefix="boss-plan-check-") as scratch:
        prompt = Path(scratch) / "prompt.md"
        prompt.write_text("Plan the task.\n", encoding="utf-8")
        profile.planner_invocation(prompt, repo)


def _ask(run: PlannerRun, profile: AgentProfile, attempt: int, config: Config) -> str:
    """Run the planner once; its final text, or AgentError when it fails or times out."""
    prompt_file = run.prompt(attempt)
    inv = profile.planner_invocation(prompt_file, run.worktree)
    env = {
        **git.git_env(),
        **inv.env,
        "BOSS_PROMPT": str(prompt_file),
        "BOSS_WORKTREE": str(run.worktree),
        "BOSS_PLANNER_ATTEMPT": str(attempt),
    }
    from boss.core import gitdir

    log = run.output(attempt)
    from worker.agents.registry import PROFILES, agent_sandbox, state_paths

    jail = agent_sandbox(config, [profile.name])
    builtin = PROFILES.get(profile.name) is profile
    state = state_paths(profile.name, {**os.environ, **env}) if builtin else []
    # The planner reads the repository; it writes only its throwaway worktree and its CLI's state
    # (without a sandbox, the git directory is put back after it and any change refused).
    before = None if jail.active else gitdir.snapshot(run.repo, worktree=run.worktree)
    try:
        with jail.confine(
            run.worktree, writable=[run.worktree], ephemeral=state, network=True, prefix="boss-plan-"
        ) as c:
            outcome = run_group(
                inv.argv,
                cwd=run.worktree,
                env=env,
                log_path=log,
                timeout=config.planner_timeout,
                confine=c,
                log_cap=config.log_cap,
            )
    finally:
        changes = gitdir.restore(before) if before is not None else []
    if changes:
        shown = "; ".join(changes[:10]) + (f"; and {len(changes) - 10} more" if len(changes) > 10 else "")
        msg = f"planner {profile.name!r} changed the repository's git directory, which boss put back: {shown}"
        raise AgentError(msg)
    output = runlog.read(log)
    if outcome.timed_out or outcome.exit_code != 0:
        yamlio.write_atomic(run.last_output, output)
        why = (
            f"timed out after {config.planner_timeout}s (planner_timeout in .boss/config.yaml)"
            if outcome.timed_out
            else f"exited with code {outcome.exit_code}"
        )
        msg = f"planner {profile.name!r} {why}; its output is kept in {_rel(run.repo, run.last_output)}"
        raise AgentError(msg)
    return profile.final_text(output)


def _rel(repo: Path, path: Path) -> str:
    try:
        return path.relative_to(repo).as_posix()
    except ValueError:  # pragma: no cover - every planner file is below the repo
        return str(path)
