"""Where the tool keeps things in a user's repository (SPEC section 2)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

BOSS_DIR = ".boss"
DEFAULT_WORKTREE_ROOT = ".worktrees"


@dataclass(frozen=True)
class PlanPaths:
    """The files of one plan below `.boss/plans/<plan>/`, and its worktrees."""

    repo: Path
    plan: str
    worktree_root: Path

    @classmethod
    def of(cls, repo: Path, plan: str, worktree_root: str = DEFAULT_WORKTREE_ROOT) -> PlanPaths:
        """Paths of plan in repo; a relative worktree root is relative to the repo."""
        root = Path(worktree_root)
        return cls(repo, plan, root if root.is_absolute() else repo / root)

    @cached_property
    def boss_dir(self) -> Path:
        return self.repo / BOSS_DIR

    @cached_property
    def root(self) -> Path:
        return self.boss_dir / "plans" / self.plan

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.yaml"

    @property
    def plan_md(self) -> Path:
        return self.root / "plan.md"

    @property
    def run_script(self) -> Path:
        return self.root / "run_workers.sh"

    @property
    def log(self) -> Path:
        return self.root / "log"

    @property
    def rendered_index(self) -> Path:
        return self.root / ".rendered.json"

    @property
    def merge_dir(self) -> Path:
        return self.root / "merge"

    @property
    def journal(self) -> Path:
        """The latest (or the running) ceremony's journal."""
        return self.merge_dir / "journal.json"

    @property
    def history_dir(self) -> Path:
        """Every ceremony's report and logs, one numbered folder each (`merge/history/0003/`)."""
        return self.merge_dir / "history"

    def ceremony_dir(self, number: int) -> Path:
        """Ceremony number's folder (its REPORT.md, report.json, logs/); 0, a ceremony begun
        before ceremonies were numbered, keeps its files in merge/ itself."""
        return self.history_dir / f"{number:04d}" if number > 0 else self.merge_dir

    def ceremony_logs(self, number: int) -> Path:
        """The test logs of ceremony number."""
        return self.ceremony_dir(number) / "logs"

    def ceremony_numbers(self) -> list[int]:
        """The numbers of the ceremonies in the history, ascending."""
        try:
            names = [p.name for p in self.history_dir.iterdir() if p.is_dir()]
        except OSError:
            return []
        return sorted(int(n) for n in names if n.isdigit() and len(n) <= 9)

    @property
    def approvals_dir(self) -> Path:
        return self.root / "approvals"

    def worker_dir(self, worker_id: str) -> Path:
        return self.root / "workers" / worker_id

    def context(self, worker_id: str) -> Path:
        return self.worker_dir(worker_id) / "CONTEXT.md"

    def status(self, worker_id: str) -> Path:
        return self.worker_dir(worker_id) / "status.json"

    def blocker(self, worker_id: str) -> Path:
        return self.worker_dir(worker_id) / "BLOCKER_REPORT.md"

    def attempts(self, worker_id: str) -> Path:
        return self.worker_dir(worker_id) / "attempts"

    def agent_config_dir(self, worker_id: str) -> Path:
        """Per-run agent configuration (settings, policies), outside the worktree."""
        return self.worker_dir(worker_id) / "agent"

    def worktree(self, worker_id: str) -> Path:
        return self.worktree_root / self.plan / worker_id

    def rel(self, path: Path) -> str:
        """A path relative to the plan folder, as the state log records artifacts."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


def plans_dir(repo: Path) -> Path:
    """The folder holding every plan of a repository."""
    return repo / BOSS_DIR / "plans"


def list_plans(repo: Path) -> list[str]:
    """Slugs of the plans that have a manifest, sorted."""
    base = plans_dir(repo)
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / "manifest.yaml").is_file())


def integration_branch(plan: str) -> str:
    """The branch a plan's merge ceremony builds and tests before the base moves to it."""
    return f"boss/{plan}/integration"
