"""Whether anything a page shows has changed: a cheap fingerprint of the plan's files (their
sizes and modification times), polled by each open page's event stream."""

from __future__ import annotations

import os
from pathlib import Path

from boss.core.paths import PlanPaths

POLL_SECONDS = 0.25


def stat(path: Path) -> tuple[int, int]:
    try:
        s = path.stat()
    except OSError:
        return (0, 0)
    return (s.st_mtime_ns, s.st_size)


def _listing(folder: Path) -> tuple[tuple[str, int, int], ...]:
    try:
        with os.scandir(folder) as it:
            return tuple(sorted((e.name, *_entry(e)) for e in it))
    except OSError:
        return ()


def _entry(e: os.DirEntry[str]) -> tuple[int, int]:
    try:
        s = e.stat()
    except OSError:
        return (0, 0)
    return (s.st_mtime_ns, s.st_size)


def fingerprint(paths: PlanPaths, worker_ids: list[str], focus: str = "") -> tuple[object, ...]:
    """Everything the pages of the plan read, as one comparable value; with focus (a worker's
    page), that worker's attempts too (its agent log grows while its status does not)."""
    root = paths.root
    parts: list[object] = [
        stat(paths.manifest), stat(paths.log), stat(paths.journal), _listing(paths.approvals_dir),
        _listing(root / "quarantine"), _listing(root / "dropped"), _listing(paths.history_dir),
    ]  # fmt: skip
    workers = root / "workers"
    parts.extend(stat(workers / w / "status.json") for w in worker_ids)
    if focus:
        attempts = paths.attempts(focus)
        for name, *_ in _listing(attempts):
            parts.append(_listing(attempts / name))
        parts.append(stat(paths.blocker(focus)))
    return tuple(parts)
