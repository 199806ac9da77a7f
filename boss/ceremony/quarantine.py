"""Review of quarantined work (SPEC section 9): list, show, accept, reject, salvage.

A worker is under review when the ceremony would quarantine it: its status is
SCOPE_VIOLATION, or git contradicts what its status claims. The status file is the worker's;
review decisions live in `.boss/plans/<plan>/quarantine/<ID>.json`, which triage reads:
accepted and salvaged branches are queued for the next merge, rejected ones never are.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from boss.core import changes, git, gittrees, redo, statelog
from boss.core import status as st
from boss.core.config import Config
from boss.core.decisions import ACCEPT, REJECT, SALVAGE, Decision, decision_path, read_decision
from boss.core.errors import InputError, StateError
from boss.core.manifest import Manifest
from boss.core.paths import PlanPaths
from boss.core.yamlio import write_atomic

if TYPE_CHECKING:
    from boss.core.changes import Change
    from boss.core.journal import Record


@dataclass(frozen=True)
class Item:
    """One worker under review: why it is quarantined, its paths, and any decision so far."""

    id: str
    branch: str
    state: str
    verdict: str
    reason: str
    start: str
    head: str
    out_of_scope: list[str]
    decision: Decision | None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["decision"] = asdict(self.decision) if self.decision else None
        return data


def items(paths: PlanPaths, m: Manifest, config: Config) -> list[Item]:
    """Every worker under review or with a review decision, in dependency order."""
    from boss.ceremony import triage

    found = []
    for r in triage.triage(paths, m, config, triage.base_head(paths, m)).records:
        decision = read_decision(paths, r.id)
        if r.verdict in ("QUARANTINED", "DROPPED") or decision is not None:
            found.append(_item(r, decision))
    return found


def _item(r: Record, decision: Decision | None) -> Item:
    return Item(
        r.id, r.branch, r.state, r.verdict or "QUEUED", r.reason, r.start, r.head,
        list(r.out_of_scope), decision,
    )  # fmt: skip


def get(paths: PlanPaths, m: Manifest, config: Config, worker_id: str) -> Item:
    """The review item of one worker; InputError when it is not under review."""
    m.worker(worker_id)  # an unknown id names the plan's workers
    for it in items(paths, m, config):
        if it.id == worker_id:
            return it
    msg = f"plan {paths.plan}: worker {worker_id} is not quarantined (see `boss quarantine list`)"
    raise InputError(msg)


def diff(paths: PlanPaths, it: Item) -> str:
    """The diff of the out-of-scope paths, from the commit the scope is judged from."""
    if not it.out_of_scope or not it.start or not it.head:
        return ""
    return gittrees.diff_text(paths.repo, it.start, it.head, it.out_of_scope)


def change(paths: PlanPaths, m: Manifest, it: Item) -> Change | None:
    """The whole change under review, from the commit the scope is judged from, each path
    marked in or out of scope (None when its branch or start is unknown)."""
    if not it.start or not it.head:
        return None
    return changes.of_worker(paths, m, it.id, it.start, it.head, marked=it.out_of_scope)


def _reviewable(it: Item) -> None:
    if it.verdict == "MERGED":
        msg = f"worker {it.id}: its branch {it.branch} is already merged; nothing to review"
        raise InputError(msg)
    if not it.head:
        msg = f"worker {it.id}: its branch {it.branch} does not exist; nothing to review"
        raise InputError(msg)


def _record(paths: PlanPaths, d: Decision) -> Decision:
    status = st.read(paths.status(d.id))
    d = replace(d, status_head=status.head_commit if status else "")
    write_atomic(decision_path(paths, d.id), d.to_json())
    statelog.append(
        paths.log,
        statelog.Event(
            st.now_iso(), "QUARANTINED", f"merge.{d.id}", "quarantine",
            f"{d.decision}: {d.reason}", paths.rel(decision_path(paths, d.id)),
        ),
    )  # fmt: skip
    return d


def accept(paths: PlanPaths, m: Manifest, config: Config, worker_id: str, reason: str) -> Decision:
    """Queue the branch for the next merge as it is, with the reviewer's reason."""
    return _decide(paths, m, config, worker_id, reason, ACCEPT)


def reject(paths: PlanPaths, m: Manifest, config: Config, worker_id: str, reason: str) -> Decision:
    """Keep the branch out of every merge, with the reviewer's reason."""
    return _decide(paths, m, config, worker_id, reason, REJECT)


def _decide(
    paths: PlanPaths, m: Manifest, config: Config, worker_id: str, reason: str, kind: str
) -> Decision:
    it = get(paths, m, config, worker_id)
    _reviewable(it)
    if kind == ACCEPT:
        _no_tool_paths(paths, it)
    return _record(
        paths, Decision(it.id, kind, reason, st.now_iso(), it.start, it.head, out_of_scope=it.out_of_scope)
    )


def _no_tool_paths(paths: PlanPaths, it: Item) -> None:
    """InputError when the branch changes boss's own files: no review can let those in."""
    from boss.ceremony.triage import is_tool_path, tool_paths

    own = tool_paths(paths)
    changed = git.changed_paths(paths.repo, it.start, it.head) if it.start else []
    found = [p for p in changed if is_tool_path(own, p)]
    if found:
        msg = (
            f"worker {it.id}: its branch {it.branch} changes boss's own files ({', '.join(found[:5])}), "
            f"which no merge may bring in; reject it (`boss quarantine reject {it.id}`) and run it again"
        )
        raise InputError(msg)


def salvage(paths: PlanPaths, m: Manifest, config: Config, worker_id: str, reason: str) -> Decision:
    """Commit on the branch a change that puts every out-of-scope path back as it was at the
    branch's start, re-check the scope from git, and queue the branch for the next merge."""
    from boss.core import scope

    it = get(paths, m, config, worker_id)
    _reviewable(it)
    w, repo = m.worker(worker_id), paths.repo
    base_commit = git.rev(repo, m.base_commit) if m.base_commit else None
    if base_commit and not w.depends_on:  # a worker redone on the base starts there (boss.core.redo)
        base_commit = redo.start(paths, w.id, base_commit, []) or base_commit
    start = base_commit if base_commit and not w.depends_on else it.start
    if not start or not git.is_ancestor(repo, start, it.head):
        where = start[:10] or "a known commit"
        msg = f"worker {w.id}: its branch does not start at {where}; reject it and run it again"
        raise StateError(msg)
    outside = scope.branch_violations(repo, start, it.head, w.scope)
    checkout = next((p for p, b in git.worktrees(repo).items() if b == w.branch), None)
    if checkout is not None and not git.is_clean(checkout):
        msg = f"{checkout}: worker {w.id}'s worktree has uncommitted changes; commit or discard them first"
        raise StateError(msg)
    head = it.head
    if outside:
        tree = gittrees.tree_restoring(repo, it.head, start, outside)
        message = (
            f"{w.id}: salvage: drop changes outside its scope\n\n"
            f"Reviewed with `boss quarantine salvage`: {reason}\n\n"
            + "".join(f"dropped: {p}\n" for p in outside)
        )
        head = gittrees.commit_tree(repo, tree, [it.head], message)
        if checkout is not None and not gittrees.read_tree_update(checkout, it.head, head, dry_run=True):
            msg = f"{checkout}: untracked files in worker {w.id}'s worktree are in the way; remove them first"
            raise StateError(msg)
        if not git.update_ref(repo, f"refs/heads/{w.branch}", head, it.head):
            msg = f"branch {w.branch} moved during the salvage; run it again"
            raise StateError(msg)
        if checkout is not None:
            gittrees.read_tree_update(checkout, it.head, head)
    left = scope.branch_violations(repo, start, head, w.scope)
    if left:  # pragma: no cover - restoring a path from start always brings it back in scope
        msg = f"worker {w.id}: still out of scope after the salvage: {', '.join(left)}"
        raise StateError(msg)
    return _record(
        paths,
        Decision(
            it.id, SALVAGE, reason, st.now_iso(), start, head, previous_head=it.head, out_of_scope=outside
        ),
    )
