"""Making a new plan (`boss plan`): the repository and base it starts from, the raw manifest
from Markdown or from `--split`, then the manifest recorded, saved and rendered."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boss.core import git
from boss.core.config import Config
from boss.core.errors import InputError
from boss.core.manifest import Manifest, display_path, save, slugify
from boss.core.paths import BOSS_DIR, PlanPaths
from boss.plan.render import RenderResult, render_plan


@dataclass(frozen=True)
class Base:
    """Where a new plan starts: the repository, the base branch and its commit."""

    repo: Path
    branch: str
    commit: str


def find_base(start: Path, branch: str | None, where: str = "--base") -> Base:
    """The repository around start and the base branch (given, or the current one).

    Raises InputError outside a git repository, in one without commits, on a detached HEAD
    without a branch given, or when the branch does not exist.
    """
    repo = git.main_root(git.toplevel(start))
    if git.rev(repo, "HEAD") is None:
        msg = (
            f"{repo}: the repository has no commits yet; commit something first (workers start from a commit)"
        )
        raise InputError(msg)
    if not branch:
        branch = git.current_branch(repo)
        where = "the current branch"
        if branch is None:
            msg = f"{repo}: HEAD is detached; name the branch the workers start from with --base BRANCH"
            raise InputError(msg)
    problem = git.branch_name_problem(branch)
    commit = None if problem else git.rev(repo, f"refs/heads/{branch}")
    if commit is None:
        if problem:
            why = f"is not a valid branch name: {problem}"
        else:
            names = git.out(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/").split()
            why = f"does not exist (branches: {', '.join(names[:10]) or 'none'}); name an existing branch"
        msg = f"{repo}: base branch {branch!r} ({where}) {why}"
        raise InputError(msg)
    return Base(repo, branch, commit)


def exclude_patterns(config: Config) -> list[str]:
    """What .git/info/exclude must hold: .boss/ and the worktree root when inside the repo."""
    patterns = [f"{BOSS_DIR}/"]
    root = Path(config.worktree_root)
    if not root.is_absolute() and ".." not in root.parts:
        patterns.append(root.as_posix().strip("/") + "/")
    return patterns


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A regex for a folder glob: `*` and `?` stay within one folder, `**` spans several."""
    out = []
    for part in re.findall(r"\*\*/?|\*|\?|\[[^\]]*\]|[^*?\[]+|\[", pattern.strip("/")):
        if part.startswith("**"):
            out.append("(?:.*/)?" if part.endswith("/") else ".*")
        elif part == "*":
            out.append("[^/]*")
        elif part == "?":
            out.append("[^/]")
        elif part.startswith("[") and len(part) > 2:
            inner = part[1:-1]
            out.append("[" + ("^" + inner[1:] if inner.startswith("!") else inner) + "]")
        else:
            out.append(re.escape(part))
    return re.compile("".join(out))


def split_raw(files: list[str], pattern: str, task: str, test: str) -> dict[str, Any]:
    """A raw manifest with one worker per tracked folder matching pattern (`--split`).

    Each worker's scope is `^<dir>/`; `{dir}` in test becomes the folder, shell-quoted.
    """
    if not test.strip():
        msg = "--split needs --test CMD: each worker's acceptance test (`{dir}` becomes its folder)"
        raise InputError(msg)
    rx = glob_regex(pattern)
    folders = sorted(_parents(files))
    matched = [d for d in folders if rx.fullmatch(d)]
    if not matched:
        msg = f"--split {pattern!r}: no tracked folder matches (globs match folders, e.g. 'packages/*')"
        raise InputError(msg)
    width = len(str(len(matched)))
    workers = []
    for n, folder in enumerate(matched, 1):
        workers.append(
            {
                "id": f"W{n:0{width}d}",
                "title": folder,
                "scope": [f"^{re.escape(folder)}/"],
                "test": test.replace("{dir}", shlex.quote(folder)),
                "instructions": f"{task}\n\nDo this in `{folder}/` only: other workers do the same "
                "in the other folders.",
            }
        )
    return {"version": 1, "plan": slugify(task), "task": task, "workers": workers}


def _parents(files: list[str]) -> set[str]:
    found: set[str] = set()
    for p in files:
        parts = p.split("/")[:-1]
        found.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return found


def complete(
    raw: dict[str, Any],
    base: Base,
    *,
    plan: str | None = None,
    integration_test: str | None = None,
    agent: str | None = None,
) -> dict[str, Any]:
    """raw with what the Boss records (base, base_commit) and the command's overrides."""
    out = {"version": 1, **raw, "base": base.branch, "base_commit": base.commit}
    if plan:
        out["plan"] = plan
    if integration_test is not None:
        out["integration_test"] = integration_test
    if agent:
        defaults = out.get("defaults")
        out["defaults"] = {"agent": agent, **(defaults if isinstance(defaults, dict) else {})}
    return out


def write_plan(
    m: Manifest, base: Base, config: Config, *, force: bool = False
) -> tuple[PlanPaths, RenderResult]:
    """Save a validated new manifest and render its files; refuses to replace a plan unless force."""
    paths = PlanPaths.of(base.repo, m.plan, config.worktree_root)
    if paths.manifest.exists() and not force:
        msg = (
            f"{display_path(paths.manifest)}: plan {m.plan!r} already exists; pass --force to "
            "replace it, or --plan SLUG to make another"
        )
        raise InputError(msg)
    git.add_exclude(base.repo, exclude_patterns(config))
    save(m, paths.manifest)
    result = render_plan(paths, m, config, force=force, tracked=git.ls_files(base.repo))
    return paths, result
