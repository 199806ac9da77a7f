"""Finding the repository and the plan a command is about (SPEC section 9)."""

from __future__ import annotations

from pathlib import Path

from boss.core import git
from boss.core.config import Config, load_config
from boss.core.errors import PlanNotFound
from boss.core.manifest import Manifest, load
from boss.core.paths import PlanPaths, list_plans


def find_repo(start: Path | None = None) -> Path:
    """The main checkout's root for the directory a command runs in (also from a worktree)."""
    return git.main_root(start or Path.cwd())


def plan_name(repo: Path, plan: str | None) -> str:
    """The plan named, or the only plan; PlanNotFound listing them otherwise."""
    plans = list_plans(repo)
    if plan:
        if plan not in plans:
            known = ", ".join(plans) or "none yet (create one with `boss plan`)"
            msg = f"{repo / '.boss/plans'}: no plan {plan!r} (plans: {known})"
            raise PlanNotFound(msg)
        return plan
    if not plans:
        msg = f"{repo}: no plan yet; create one with `boss plan --from FILE.md` (or `boss demo`)"
        raise PlanNotFound(msg)
    if len(plans) > 1:
        msg = (
            f"{repo / '.boss/plans'}: several plans ({', '.join(plans)}); name one: as the "
            "argument of a plan command (`boss status PLAN`), or with --plan (`boss retry ID --plan PLAN`)"
        )
        raise PlanNotFound(msg)
    return plans[0]


def open_plan(plan: str | None, start: Path | None = None) -> tuple[PlanPaths, Manifest, Config]:
    """Resolve repo, plan, paths, the validated manifest and the config in one step."""
    repo = find_repo(start)
    config = load_config(repo)
    name = plan_name(repo, plan)
    paths = PlanPaths.of(repo, name, config.worktree_root)
    return paths, load(paths.manifest), config
