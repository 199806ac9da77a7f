"""Landing a `boss do` on its branch: the merge ceremony itself, on a plan of one worker.

The ceremony verifies the worker's branch from git, runs the integration test (when the plan has
one) on the base as the baseline (with `merge_slots` above 1, at the same time as the tests of the
merged tree: boss/ceremony/speculate.py), merges the branch in its integration worktree, runs the
worker's acceptance test and the integration test on that exact tree, and moves the branch to it
by compare-and-swap only if it has not moved meanwhile (its files follow where it is checked out,
unless the person's uncommitted changes are in the way). A scope violation goes to review as in
any plan. What landed is written into the `boss do` record.
"""

from __future__ import annotations

from collections.abc import Callable

from boss.ceremony import merge as ceremony
from boss.ceremony.session import journal_path
from boss.core import journal as jr
from boss.core.config import Config
from boss.core.manifest import Manifest
from boss.core.paths import PlanPaths
from boss.solo import record
from boss.solo.record import WORKER, DoRecord


def landing_of(paths: PlanPaths, rec: DoRecord) -> DoRecord:
    """rec with its landing, read from the ceremony's journal when a crash kept it from rec."""
    if rec.landed_to:
        return rec
    j = jr.load(journal_path(paths))
    if j is None or not j.landed or not any(r.id == WORKER and r.verdict == jr.MERGED for r in j.records):
        return rec
    return record.update(paths, rec, landed_from=j.base_start, landed_to=j.head, landed_at=j.finished_at)


def land(
    paths: PlanPaths, m: Manifest, config: Config, rec: DoRecord, progress: Callable[[str], None]
) -> tuple[jr.Journal, DoRecord]:
    """Run the ceremony (or resume an interrupted one); its journal, and the record with the landing."""
    j = ceremony.run(paths, m, config, progress, slots=config.effective_slots())
    return j, landing_of(paths, rec)


def verdict(j: jr.Journal) -> tuple[str, str]:
    """The worker's verdict in the ceremony and its reason ("", "" when it had no record)."""
    found = next((r for r in j.records if r.id == WORKER), None)
    return (found.verdict, found.reason) if found else ("", "")
