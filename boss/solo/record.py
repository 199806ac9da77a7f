"""What `boss do` records of one run: `.boss/plans/<plan>/do.json`, and its rollback point.

The record names the branch the work lands on and the rollback point, the commit that branch
was at before anything ran, also kept as the ref `refs/boss/<plan>/rollback` (so git's garbage
collection keeps it and a person can reach it by name). Once the work lands, the record holds
where the branch moved (`landed_from` -> `landed_to`); `boss undo` writes where it moves it back
before moving it (`undo_to`), then when it is done (`undone_at`), so an interrupted undo resumes.
Only boss writes it (an agent's sandbox cannot reach `.boss/`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from boss.ceremony.session import now
from boss.core import git
from boss.core.config import Config, load_config
from boss.core.errors import InputError, PlanNotFound, StateError
from boss.core.manifest import Manifest, display_path
from boss.core.paths import PlanPaths, list_plans
from boss.core.yamlio import write_atomic

NAME = "do.json"
WORKER = "W1"  # the one worker of a `boss do` plan


@dataclass(frozen=True)
class DoRecord:
    """One `boss do`: the plan, the branch it lands on, its rollback point and what became of it."""

    plan: str
    branch: str
    rollback: str  # the branch's commit before anything ran
    task: str = ""
    created_at: str = ""
    landed_from: str = ""  # the branch's commit the landing moved it from ("" until it lands)
    landed_to: str = ""
    landed_at: str = ""
    undo_to: str = ""  # `boss undo` under way or done: the commit it moves the branch back to
    undone_at: str = ""

    @property
    def ref(self) -> str:
        """The ref that keeps the rollback point."""
        return rollback_ref(self.plan)


def rollback_ref(plan: str) -> str:
    """`refs/boss/<plan>/rollback`."""
    return f"refs/boss/{plan}/rollback"


def path(paths: PlanPaths) -> Path:
    """The plan's `do.json`."""
    return paths.root / NAME


def save(paths: PlanPaths, rec: DoRecord) -> None:
    """Write the record atomically."""
    write_atomic(path(paths), json.dumps(asdict(rec), indent=2) + "\n")


def create(paths: PlanPaths, branch: str, commit: str, task: str) -> DoRecord:
    """Record a new `boss do` and its rollback point (the ref first: the record names it)."""
    rec = DoRecord(paths.plan, branch, commit, task, now())
    if not git.update_ref(paths.repo, rec.ref, commit):
        msg = f"{paths.repo}: cannot write the rollback ref {rec.ref}"
        raise StateError(msg)
    save(paths, rec)
    return rec


def load(paths: PlanPaths) -> DoRecord | None:
    """The plan's record; None when the plan was not made by `boss do`; InputError when unreadable."""
    where = path(paths)
    try:
        data = json.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        msg = f"{display_path(where)}: not a `boss do` record: {e}"
        raise InputError(msg) from e
    known = {f.name for f in fields(DoRecord)}
    if not isinstance(data, dict) or not all(isinstance(data.get(k, ""), str) for k in known):
        msg = f"{display_path(where)}: not a `boss do` record (a JSON object of strings)"
        raise InputError(msg)
    for key in ("plan", "branch", "rollback"):
        if not data.get(key):
            msg = f"{display_path(where)}: field {key}: missing"
            raise InputError(msg)
    return DoRecord(**{k: str(v) for k, v in data.items() if k in known})


def update(paths: PlanPaths, rec: DoRecord, **changes: str) -> DoRecord:
    """The record with changes, saved."""
    new = replace(rec, **changes)
    save(paths, new)
    return new


def last(repo: Path, worktree_root: str) -> str | None:
    """The plan of the latest `boss do` in repo, None when there is none."""
    found: list[tuple[str, str]] = []
    for plan in list_plans(repo):
        where = PlanPaths.of(repo, plan, worktree_root).root / NAME
        try:
            data = json.loads(where.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            found.append((str(data.get("created_at") or ""), plan))
    return max(found)[1] if found else None


def open_do(plan: str | None) -> tuple[PlanPaths, Manifest, Config, DoRecord]:
    """The `boss do` named (default: the latest): its paths, manifest, config and record."""
    from boss.core.workspace import find_repo, open_plan

    repo = find_repo()
    name = plan or last(repo, load_config(repo).worktree_root)
    if name is None:
        msg = f'{repo}: no `boss do` to resume yet; start one: boss do "TASK" --test CMD'
        raise PlanNotFound(msg)
    paths, m, config = open_plan(name)
    rec = load(paths)
    if rec is None:
        msg = (
            f"{display_path(path(paths))}: plan {name} was not made by `boss do`; run it with its "
            "run_workers.sh and boss merge"
        )
        raise PlanNotFound(msg)
    return paths, m, config, rec
