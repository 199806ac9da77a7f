"""The merge ceremony's journal: every step's state, written atomically before and after it.

`.boss/plans/<plan>/merge/journal.json` is what makes `boss merge` resumable after `kill -9`:
it holds the commit the base pointed at when the ceremony began, the integration branch's
tested head, the commit before the merge in progress (a revert goes back to exactly that
commit, never to HEAD~1), and every worker's verdict so far. It also records the tree of
every candidate the ceremony tested and judged good (`proven`), and the one tree on which
every merged worker's acceptance test passed (`verified`): only that tree can land, and a
resumed ceremony refuses a head whose tree is not on record. The members of a group are
decided in one save, after the last of them merged and the group was judged: until then the
tested head is the one before the group, so a rerun merges the whole group again.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
from typing import Any

from boss.core.errors import StateError
from boss.core.yamlio import write_atomic

VERSION = 1
# Test/debug switch: BOSS_MERGE_CRASH_AT=<point>[:<ID>] kills the ceremony with SIGKILL at that
# point (prepare, baseline, merge, accept, test, verify, redo, land, checkout), to prove it resumes
# from its journal.
CRASH_ENV = "BOSS_MERGE_CRASH_AT"
# Steps in the order the ceremony goes through them; `done` means a new run starts afresh.
PREPARE, BASELINE, MERGING, LANDING, REPORT, DONE = (
    "prepare", "baseline", "merging", "landing", "report", "done",
)  # fmt: skip
REDO = "redo"  # `boss merge --redo N`: dropped workers run again on the result (boss/ceremony/redoing.py)
STEPS = (PREPARE, BASELINE, MERGING, REDO, LANDING, REPORT, DONE)

# Verdicts (SPEC section 8.6).
MERGED, REVERTED, CONFLICT, QUARANTINED = "MERGED", "REVERTED", "CONFLICT", "QUARANTINED"
FAILED, CRASHED, SKIPPED, PENDING = "FAILED", "CRASHED", "SKIPPED", "PENDING"
DROPPED = "DROPPED"  # dismissed by a person (`boss drop`): never merged
VERDICTS = (MERGED, REVERTED, CONFLICT, QUARANTINED, FAILED, CRASHED, SKIPPED, PENDING, DROPPED)


@dataclass
class Record:
    """One worker in the ceremony: what triage found, and its verdict with the evidence."""

    id: str
    branch: str
    state: str  # the worker's state when triaged (CRASHED derived)
    queued: bool = False  # triage queued it (SUCCESS, or accepted/salvaged at review)
    verdict: str = ""  # "" while queued and not yet decided
    reason: str = ""
    head: str = ""
    start: str = ""
    decision: str = ""  # the quarantine review decision it was queued under, if any
    group: str = ""  # the group it is merged with, judged and dropped as one (manifest field group)
    out_of_scope: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    conflict_with: list[str] = field(default_factory=list)
    test_log: str = ""
    retry_log: str = ""
    retried: bool = False  # the first test run was red and the retry passed
    new_failures: list[str] = field(default_factory=list)
    merge_commit: str = ""
    pre: str = ""  # the tested head its merge started from (where dropping it goes back to)
    merge_tree: str = ""  # the tree of its merge commit
    acceptance_log: str = ""  # its acceptance test's run on the merged candidate
    broke: str = ""  # the worker whose acceptance test its merge broke (a final-check verdict)
    started_at: str = ""  # its step in the ceremony
    finished_at: str = ""
    worker_started: str = ""  # the worker's own run, for the timeline
    worker_finished: str = ""
    by_hand: int = 0  # commits on its branch after boss's last (a person's), merged with its work

    @property
    def decided(self) -> bool:
        return bool(self.verdict)

    def reopened(self) -> Record:
        """This worker as triage queued it, its merge verdict and evidence forgotten (to merge again)."""
        return Record(
            id=self.id, branch=self.branch, state=self.state, queued=self.queued, head=self.head,
            start=self.start, decision=self.decision, group=self.group, out_of_scope=list(self.out_of_scope),
            worker_started=self.worker_started, worker_finished=self.worker_finished,
            by_hand=self.by_hand,
        )  # fmt: skip


@dataclass
class Journal:
    """The whole ceremony's state."""

    plan: str
    base: str
    base_start: str  # the base's commit when the ceremony began (the landing's compare-and-swap)
    integration_branch: str
    worktree: str
    step: str = PREPARE
    started_at: str = ""
    finished_at: str = ""
    head: str = ""  # the integration branch's tested head
    head_tree: str = ""  # its tree: the integration test's run of that tree is the reference
    records: list[Record] = field(default_factory=list)
    queue: list[str] = field(default_factory=list)  # ids to merge in this ceremony, in order
    current: dict[str, str] | None = None  # {"id", "pre", "started"}: the merge-and-test in progress
    baseline: dict[str, Any] = field(default_factory=dict)
    tested: dict[str, dict[str, Any]] = field(default_factory=dict)  # tree -> test run
    test_runs: int = 0
    # "<tree> <worker id>" -> that worker's acceptance test on that tree (command, ok, log, ...)
    acceptance: dict[str, dict[str, Any]] = field(default_factory=dict)
    acceptance_runs: int = 0
    proven: list[str] = field(default_factory=list)  # trees judged good as the integration head
    verified: str = ""  # the head's tree once every merged worker's acceptance test passed on it
    events: list[dict[str, str]] = field(default_factory=list)  # ceremony steps, for the timeline
    landed: bool = False
    land_target: str = ""
    checkout: str = ""  # the user's checkout that has the base checked out, if any
    message: str = ""
    number: int = 0  # its folder in merge/history/ (boss.core.paths.ceremony_dir); 0: unnumbered
    redo_rounds: int = 0  # `boss merge --redo N`: at most N rounds of redoing dropped workers
    redo_round: int = 0  # the rounds begun
    redo: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> its last redo (redoing.py)
    slots: int = 1  # test runs at once (`--slots`); 1: one after the other (boss/ceremony/speculate.py)
    rounds: int = 0  # sequential batches of test runs the ceremony waited on
    speculative_runs: int = 0  # runs made ahead of need, in the slots
    wasted_runs: int = 0  # of those, runs whose result the ceremony never used
    version: int = VERSION

    def record(self, worker_id: str) -> Record:
        """The record of a worker."""
        for r in self.records:
            if r.id == worker_id:
                return r
        raise KeyError(worker_id)

    @property
    def queued(self) -> list[Record]:
        """The workers triage queued, in merge order."""
        return [r for r in self.records if r.queued]

    def to_json(self) -> str:
        """The journal's text: compact JSON, so the C encoder writes it (it is written often)."""
        data = {f: getattr(self, f) for f in _JOURNAL_ORDER}
        data["records"] = [vars(r) for r in self.records]
        return json.dumps(data, separators=(",", ":")) + "\n"


_RECORD_FIELDS = {f.name for f in fields(Record)}
_JOURNAL_FIELDS = {f.name for f in fields(Journal)}
_JOURNAL_ORDER = ["version", *(f.name for f in fields(Journal) if f.name != "version")]


def _kind(f: Field[Any]) -> type:
    """The JSON type a field holds: its default's (fields without a default hold text)."""
    if f.default is not MISSING:
        return str if f.default is None else type(f.default)  # `current`: text values, or null
    if f.default_factory is not MISSING:
        return type(f.default_factory())
    return str


_RECORD_KINDS = {f.name: _kind(f) for f in fields(Record)}
_JOURNAL_KINDS = {f.name: _kind(f) for f in fields(Journal)}
_JOURNAL_KINDS["current"] = dict


def _checked(raw: Any, kinds: dict[str, type], where: str) -> dict[str, Any]:
    """raw's known fields, each of its field's type (TypeError naming the field otherwise)."""
    if not isinstance(raw, dict):
        raise TypeError(f"{where}must be an object")
    out = {k: v for k, v in raw.items() if k in kinds}
    for key, value in out.items():
        kind = kinds[key]
        if value is None and key == "current":
            continue
        if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
            raise TypeError(f"{where}field {key}: must be {kind.__name__}, not {type(value).__name__}")
        texts = value if isinstance(value, list) and key not in ("events", "records") else []
        if not all(isinstance(v, str) for v in texts):
            raise TypeError(f"{where}field {key}: must be a list of strings")
        current = value.values() if isinstance(value, dict) and key == "current" else []
        if not all(isinstance(v, str) for v in current):
            raise TypeError(f"{where}field {key}: must map names to strings")
    return out


def from_dict(data: Any, source: str) -> Journal:
    """A journal from its parsed JSON; StateError naming the file when it is not one."""
    try:
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise TypeError("not a version 1 journal")
        raw = _checked(data, _JOURNAL_KINDS, "")
        records = enumerate(raw.get("records", []))
        raw["records"] = [Record(**_checked(r, _RECORD_KINDS, f"records[{i}] ")) for i, r in records]
        journal = Journal(**raw)
    except (TypeError, AttributeError) as e:
        msg = f"{source}: not a boss merge journal ({e}); move it away to start a new ceremony"
        raise StateError(msg) from e
    if journal.step not in STEPS:
        msg = f"{source}: field step: unknown step {journal.step!r:.60} (known: {', '.join(STEPS)})"
        raise StateError(msg)
    for wid, entry in journal.redo.items():
        fine = isinstance(entry, dict) and isinstance(entry.get("round"), int)
        if not fine or not all(isinstance(entry.get(k), str) for k in ("from", "reason", "onto", "state")):
            msg = f"{source}: field redo: entry {wid!r:.40} is not a redo record; move it away to start anew"
            raise StateError(msg)
    for r in journal.records:
        if r.verdict and r.verdict not in VERDICTS:
            msg = f"{source}: record {r.id!r:.40} field verdict: unknown verdict {r.verdict!r:.40}"
            raise StateError(msg)
    return journal


def load(path: Path) -> Journal | None:
    """The journal at path, or None when there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as e:
        msg = f"{path}: cannot read: {e.strerror}"
        raise StateError(msg) from e
    except UnicodeDecodeError as e:
        msg = f"{path}: byte {e.start}: not UTF-8 text; move it away to start a new ceremony"
        raise StateError(msg) from e
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:
        msg = f"{path}: invalid JSON ({str(e)[:200]}); move it away to start a new ceremony"
        raise StateError(msg) from e
    return from_dict(data, str(path))


def save(path: Path, journal: Journal) -> None:
    """Write the journal atomically: a reader (or a resumed run) sees the old or the new one."""
    write_atomic(path, journal.to_json())


def crash_point(point: str, worker_id: str = "") -> None:
    """Die here, as `kill -9` would, when BOSS_MERGE_CRASH_AT names this point."""
    wanted = os.environ.get(CRASH_ENV, "")
    name, _, wid = wanted.partition(":")
    if name == point and (not wid or wid == worker_id):
        os.kill(os.getpid(), signal.SIGKILL)
