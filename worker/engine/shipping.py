"""What goes to a node with a worker's task, and what of its return the Boss takes (worker.engine).

To the node: the plan's files, the worker's folder (not its attempts), its dependencies'
statuses, every approval request of the plan, the project's config without `worktree_root`,
the manifest's `copy` files. Back: only files inside the worker's folder, and only the approval
requests of that worker, pending unless the Boss sent them approved and they came back used.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from boss.core import approvals, git, yamlio
from boss.core.errors import StateError
from boss.core.manifest import Manifest
from boss.core.paths import PlanPaths
from worker.engine import live


def plan_files(paths: PlanPaths, m: Manifest, worker_id: str) -> dict[str, bytes]:
    """{path relative to the repository: bytes} of what the node's run of worker_id reads."""
    repo, w = paths.repo, m.worker(worker_id)
    wanted = [p for p in paths.root.iterdir() if p.is_file() and not p.name.startswith("log")]
    wanted += [paths.status(d) for d in w.depends_on]
    wanted += sorted(paths.approvals_dir.glob("R*.json"))  # the node's guard sees every decision
    folder = paths.worker_dir(worker_id)
    wanted += [p for p in folder.rglob("*") if p.is_file() and "attempts" not in p.relative_to(folder).parts]
    files = {
        path.relative_to(repo).as_posix(): path.read_bytes()
        for path in wanted
        if path.is_file() and not path.is_symlink() and path.name != "run.lock"
    }
    files[".boss/config.yaml"] = node_config(paths)
    files.update(copied(repo, m))
    return files


def copied(repo: Path, m: Manifest) -> dict[str, bytes]:
    """The manifest's `copy` files (.env ...) from this working tree, which the node's worker
    copies into its worktree as a local one would (symbolic links are left out)."""
    found = {}
    for rel in m.copy:
        matches = sorted(repo.glob(rel)) if any(c in rel for c in "*?[") else [repo / rel]
        for src in matches:
            inside = sorted(src.rglob("*")) if src.is_dir() and not src.is_symlink() else [src]
            for path in inside:
                if path.is_file() and not path.is_symlink() and repo in path.parents:
                    found[path.relative_to(repo).as_posix()] = path.read_bytes()
    return found


def node_config(paths: PlanPaths) -> bytes:
    """The project's config as a node reads it: its worktrees in the node's own run folder (a
    worktree_root of this machine means nothing there), and no notify command."""
    path = paths.boss_dir / "config.yaml"
    raw = yamlio.load_file(path) if path.is_file() else None
    if not isinstance(raw, dict):
        return b""
    raw.pop("worktree_root", None)
    raw.pop("notify", None)  # your notify command runs here, on the Boss's events (take_approvals, the end)
    return yamlio.dump(raw).encode()


def take_approvals(
    paths: PlanPaths, worker_id: str, sent: dict[str, approvals.Request], returned: dict[str, Any]
) -> None:
    """The node's approval requests of this worker, into the plan's folder (worker.engine.live.take):
    a new one is adopted (pending: no node decides), an approved one the node used is used here too."""
    live.take(paths, worker_id, live.Ledger.of(sent), returned)


def base(repo: Path, m: Manifest) -> str:
    """The plan's base commit in repo."""
    commit = (m.base_commit and git.rev(repo, m.base_commit)) or git.rev(repo, f"refs/heads/{m.base}")
    if not commit:
        msg = f"manifest: field base: branch {m.base!r} does not exist in {repo}"
        raise StateError(msg)
    return commit


BLOCKER = "BLOCKER_REPORT.md"
TAKEN = ("attempts/", "agent/")  # with BLOCKER: what a worker's run writes in its folder


def take_files(folder: Path, files: dict[str, Any]) -> None:
    """The worker's own files a node returned, into its folder here, as its run would leave them:
    the blocker report (removed here when the run removed it), attempts/ and agent/. The Boss's
    own files there (CONTEXT.md, redo.md, the task record) and status.json (judged apart) are not
    taken; a path leaving the folder is refused (StateError) before anything is written."""
    targets = {rel: inside(folder, rel) for rel in files}
    for rel, target in targets.items():
        if rel == BLOCKER or rel.startswith(TAKEN):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(bytes(files[rel]))
    if BLOCKER not in files:
        (folder / BLOCKER).unlink(missing_ok=True)


def inside(folder: Path, rel: str) -> Path:
    """folder/rel for a relative path that stays inside folder; StateError otherwise."""
    parts = PurePosixPath(rel).parts
    if not parts or rel.startswith("/") or any(p in ("..", ".", "") for p in parts) or "\0" in rel:
        msg = f"the node returned a file outside the worker's folder: {rel[:80]!r}"
        raise StateError(msg)
    return folder.joinpath(*parts)
