"""When a plan changes under workers that already ran.

A worker's result holds only for the definition it ran with: its base, branch, scope, test,
dependencies and instructions. `boss render` (and `boss plan --force`, which renders) keeps a
digest of each field in `.rendered.json`. A worker whose definition changed since the last
render, or that depends on one that did, is reset: its status, review decision and blocker
report are removed, so it reads PENDING, runs again from a clean start, and no SUCCESS earned
against an older test can be merged. Titles and settings (agent, iterations, timeouts) do not
count: they change how a worker runs, not what "done" means.

A worker removed from the manifest is no longer rendered: its generated CONTEXT.md goes (kept
when edited by hand), its run's records stay in its folder (its worktree and branch are
`boss clean`'s), and its definition is kept in `.rendered.json` under `removed`, so a worker
added back under the same id with another definition is reset like a changed one.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from boss.core import status as st
from boss.core.config import Config
from boss.core.decisions import decision_path
from boss.core.errors import StateError
from boss.core.manifest import Manifest, Worker
from boss.core.manifest_rules import ID_RE
from boss.core.paths import PlanPaths

FIELDS = ("base", "branch", "scope", "test", "depends_on", "instructions", "write_test")


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def _values(m: Manifest, w: Worker) -> dict[str, object]:
    return {
        "base": [m.base, m.base_commit],
        "branch": w.branch,
        "scope": list(w.scope),
        "test": w.test,
        "depends_on": list(w.depends_on),
        "instructions": w.instructions,
        "write_test": w.write_test,
    }


def digests(m: Manifest) -> dict[str, dict[str, str]]:
    """Each worker's definition, field by field, as short digests."""
    return {w.id: {k: _digest(v) for k, v in _values(m, w).items()} for w in m.workers}


def removed_ids(m: Manifest, previous: Any, files: dict[str, str]) -> list[str]:
    """Workers the last render knew (by definition or by generated CONTEXT.md) that m has not."""
    known = set(previous) if isinstance(previous, dict) else set()
    known |= {f.split("/")[1] for f in files if f.startswith("workers/") and f.endswith("/CONTEXT.md")}
    current = {w.id for w in m.workers}
    return sorted(k for k in known - current if ID_RE.fullmatch(k))  # only a worker id names a folder


def drop_removed(paths: PlanPaths, gone: list[str], files: dict[str, str], force: bool) -> list[str]:
    """Take each removed worker's generated CONTEXT.md away (unless edited by hand and not
    forced) and out of `files` (the render's index); one line per worker saying what is left."""
    lines = []
    for worker_id in gone:
        context = paths.context(worker_id)
        recorded = files.pop(paths.rel(context), None)
        kept = ""
        if context.is_file():
            digest = hashlib.sha256(context.read_bytes()).hexdigest()
            if force or digest == recorded:
                context.unlink()
            else:
                kept = ", its CONTEXT.md (edited by hand) is kept as it is"
        folder = paths.worker_dir(worker_id)
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        left = [f"its run's records stay in {paths.rel(folder)}/"] if folder.is_dir() else []
        if paths.worktree(worker_id).exists():
            left.append("its worktree and branch until `boss clean`")
        rest = f"; {' and '.join(left)}" if left else ""
        lines.append(f"{worker_id}: removed from the manifest: no longer rendered or run{kept}{rest}")
    return lines


def changed(previous: Any, m: Manifest) -> dict[str, str]:
    """Workers whose definition differs from `previous` (an earlier digests()), with why.

    A worker the previous render did not know is new, not changed; without a previous record
    (a plan rendered by an older boss) nothing is reported.
    """
    if not isinstance(previous, dict):
        return {}
    current = digests(m)
    reasons: dict[str, str] = {}
    for w in m.order():
        before = previous.get(w.id)
        if isinstance(before, dict):
            fields = [f for f in FIELDS if before.get(f) != current[w.id][f]]
            if fields:
                reasons[w.id] = f"its {', '.join(fields)} changed"
                continue
        dep = next((d for d in w.depends_on if d in reasons), None)
        if dep is not None:
            reasons[w.id] = f"its dependency {dep} changed"
    return reasons


def refuse_running(
    paths: PlanPaths,
    config: Config,
    reasons: dict[str, str],
    then: str = "before changing its definition, then render again",
) -> None:
    """StateError when a worker about to be reset is running: its result would be stale too."""
    for worker_id, why in reasons.items():
        status = st.read(paths.status(worker_id))
        if st.effective_state(status, config.heartbeat_stale) == st.RUNNING:
            msg = (
                f"worker {worker_id} of plan {paths.plan} is running and {why}; "
                f"stop it (Ctrl-C in its terminal) {then}"
            )
            raise StateError(msg)


def reset(paths: PlanPaths, reasons: dict[str, str]) -> list[str]:
    """Remove what each changed worker's earlier run left as its result; one line per worker
    that had one."""
    lines = []
    for worker_id, why in reasons.items():
        status = st.read(paths.status(worker_id))
        files = [decision_path(paths, worker_id), paths.blocker(worker_id)]
        if status is not None and status.state != st.RUNNING:
            # A running (or crashed) run's status stays: it shows that run until the worker
            # runs again (a rerun stops what a dead run left by its marker, not by this file).
            files.append(paths.status(worker_id))
        removed = False
        for path in files:
            if path.is_file():
                path.unlink()
                removed = True
        if removed:
            was = (
                "CRASHED" if status and status.state == st.RUNNING else status.state if status else "reviewed"
            )
            lines.append(f"{worker_id}: {why} since it ran ({was}); its result is dropped, it runs again")
    return lines
