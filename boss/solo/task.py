"""The plan of a `boss do`: one worker made from a task (or a one-section Markdown plan).

The worker, W1, starts from the current branch's commit, works on its own branch
`do/<plan>`, may change the paths its scope allows (every path, `^`, when none is given) and is
proven by its test. Its instructions are the task. The plan is written and rendered as
`boss plan` writes one, so every plan command works on it; its name comes from the task
(`do-<slug>`), with a number added when that plan exists already.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boss.core import manifest as mf
from boss.core.config import Config
from boss.core.errors import InputError
from boss.core.paths import PlanPaths
from boss.plan.new_plan import Base, complete, write_plan
from boss.solo.record import NAME, WORKER

EVERY_PATH = "^"
TITLE_CHARS = 72


@dataclass(frozen=True)
class Request:
    """What `boss do` was asked: the task, or a Markdown file, and the options."""

    task: str = ""
    from_file: Path | None = None
    test: str = ""
    scope: tuple[str, ...] = ()
    agent: str = ""
    integration_test: str | None = None
    plan: str = ""


def title_of(task: str) -> str:
    """The worker's title: the task's first non-empty line, cut to TITLE_CHARS."""
    first = next((line.strip() for line in task.splitlines() if line.strip()), "task")
    return first if len(first) <= TITLE_CHARS else first[: TITLE_CHARS - 3].rstrip() + "..."


def free_name(repo: Path, config: Config, wanted: str) -> str:
    """wanted, or wanted-2, wanted-3, ...: the first name no plan has."""
    name, n = wanted, 1
    while PlanPaths.of(repo, name, config.worktree_root).root.exists():
        n += 1
        name = f"{wanted[:36]}-{n}"
    return name


def raw_manifest(req: Request, repo: Path, config: Config) -> tuple[dict[str, Any], str]:
    """The raw manifest of the plan and where it came from (for error messages)."""
    if req.from_file is not None:
        from boss.plan import markdown_plan

        source = mf.display_path(req.from_file)
        raw = markdown_plan.read(req.from_file, source)
        workers = raw.get("workers") or []
        if len(workers) != 1:
            msg = (
                f"{source}: boss do --from takes a plan of exactly one worker (one `## ID: title` "
                f"section), this one has {len(workers)}; run a plan of many with `boss plan --from`"
            )
            raise InputError(msg)
        worker = dict(workers[0])
        worker["id"] = WORKER
        if req.agent:
            worker["agent"] = req.agent
        raw["workers"] = [worker]
        wanted = req.plan or mf.slugify(str(raw.get("plan") or worker.get("title") or "task"), 36)
    else:
        task = req.task.strip()
        if not task:
            msg = 'boss do: the TASK argument is missing (boss do "TASK" --test CMD, or --from TASK.md)'
            raise InputError(msg)
        if not req.test.strip():
            msg = "boss do: --test CMD is missing: the acceptance test that must fail before and pass after"
            raise InputError(msg)
        worker = {"id": WORKER, "title": title_of(task), "scope": list(req.scope) or [EVERY_PATH],
                  "test": req.test, "instructions": task}  # fmt: skip
        if req.agent:
            worker["agent"] = req.agent
        raw = {"version": 1, "task": task, "workers": [worker]}
        source = "boss do"
        wanted = req.plan or "do-" + mf.slugify(title_of(task), 33)
    name = wanted if req.plan else free_name(repo, config, wanted)
    raw["plan"] = name
    raw["workers"][0]["branch"] = f"do/{name}"
    return raw, source


def make_plan(
    req: Request, base: Base, config: Config, check: Callable[[mf.Manifest], None]
) -> tuple[PlanPaths, mf.Manifest]:
    """Write and render the plan once `check` accepts it (refused when a plan of that name
    exists); its paths and manifest."""
    if req.plan:
        if not mf.SLUG_RE.fullmatch(req.plan):
            msg = f"boss do --plan: bad plan name {req.plan!r}: must match {mf.SLUG_RE.pattern}"
            raise InputError(msg)
        root = PlanPaths.of(base.repo, req.plan, config.worktree_root).root
        if root.exists():
            resume = f", or resume it: boss do --retry --plan {req.plan}" if (root / NAME).is_file() else ""
            msg = f"boss do --plan: plan {req.plan!r} exists already; name another{resume}"
            raise InputError(msg)
    raw, source = raw_manifest(req, base.repo, config)
    m = mf.from_dict(complete(raw, base, integration_test=req.integration_test), source)
    check(m)
    paths, _ = write_plan(m, base, config)
    return paths, m
