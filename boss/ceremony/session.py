"""One run of the merge ceremony in this process: the journal it advances and where the integration
worktree stands.

Every step of the ceremony (boss/ceremony/merge.py runs them in order) works on a `Session`:
the plan's paths, the manifest boss holds, the journal, and what this process knows of the
integration worktree: whether it was set up here, the commit it was last set or merged to, and
whether a test ran in it since (a test may change files, which must not reach the next merge).
Also here, the helpers the steps share: the journal's path and its saves, the timeline's clock,
commits in short, and the ceremony's lines in the plan's state log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Protocol

from boss.ceremony import integration
from boss.core import git, statelog
from boss.core import journal as jr
from boss.core.journal import MERGED, Journal, Record
from boss.core.manifest import Manifest
from boss.core.paths import PlanPaths

Progress = Callable[[str], None]


class Prefetch(Protocol):
    """The test slots of a ceremony run with `--slots N` (boss/ceremony/speculate.py)."""

    def fetch(
        self, kind: str, tree: str, worker: str, attempt: int, commit: str, label: str
    ) -> integration.Run:
        """The result of one test run (kind int or acc) on tree: made ahead, or made now."""

    def replan(self) -> None:
        """Predict the candidates again from the journal as it is now."""


def now() -> str:
    """The current UTC time with milliseconds, for the timeline."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def short(commit: str) -> str:
    """A commit's name in messages: its first ten hex digits."""
    return commit[:10]


def journal_path(paths: PlanPaths) -> Path:
    """The plan's ceremony journal, `merge/journal.json`."""
    return paths.merge_dir / "journal.json"


def log(paths: PlanPaths, state: str, iid: str, action: str, result: str, artifacts: str = "") -> None:
    """Append one line of the ceremony to the plan's state log."""
    from boss.core.status import now_iso

    statelog.append(paths.log, statelog.Event(now_iso(), state, iid, action, result, artifacts))


@dataclass
class Session:
    """The ceremony's state in this process, shared by its steps."""

    paths: PlanPaths
    m: Manifest
    j: Journal
    progress: Progress

    prepared: bool = False  # the integration worktree was (re)set in this process
    at: str = ""  # the commit the integration worktree was last set or merged to
    ran: bool = False  # a test ran in the integration worktree since then (it may have changed files)
    spec: Prefetch | None = None  # with --slots N > 1: where every test run comes from
    elsewhere: bool = False  # every test runs elsewhere (--engine dask): none in the integration worktree

    def ran_here(self) -> None:
        """A test ran in the integration worktree, one after the other: a round of its own."""
        self.ran = True
        self.j.rounds += 1

    def replan(self) -> None:
        """After a verdict: the slots predict again (nothing without slots)."""
        if self.spec is not None:
            self.spec.replan()

    @property
    def wt(self) -> Path:
        """The integration worktree."""
        return Path(self.j.worktree)

    @cached_property
    def common(self) -> Path:
        """The repository's common git directory."""
        return git.common_dir(self.paths.repo)

    @cached_property
    def ticker(self) -> integration.Ticker:
        """The "still running" lines of the tests this process runs."""
        return integration.Ticker(self.progress)

    def save(self) -> None:
        """Write the journal."""
        jr.save(journal_path(self.paths), self.j)

    def step(self, name: str) -> None:
        """Go on to step name, saved in the journal."""
        self.j.step = name
        self.save()

    def goto(self, commit: str) -> None:
        """The integration worktree at commit exactly (tracked files, HEAD, branch)."""
        integration.pristine(self.wt, self.j.plan, commit)
        self.at, self.ran = commit, False

    def proven(self, commit: str, tree: str) -> None:
        """commit (whose tree is tree) passed every test so far: it is the new tested head."""
        self.j.head, self.j.head_tree = commit, tree
        if tree not in self.j.proven:
            self.j.proven.append(tree)

    def pending(self) -> list[Record]:
        """The queued workers still without a verdict."""
        return [r for r in self.j.records if r.id in self.j.queue and not r.decided]

    def merged(self) -> list[Record]:
        """The workers this ceremony merged so far, in merge order."""
        return [r for r in self.j.records if r.id in self.j.queue and r.verdict == MERGED]
