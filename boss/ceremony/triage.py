"""Triage (SPEC 8.1-8.2): a verdict or a place in the queue for every worker, verified from git.

The status file is the worker's word; the ceremony believes git. For every branch it would
queue it recomputes the scope check, checks that the branch starts where it should (the base
commit, or its dependency's head) and that its head is the commit the status (or the review
decision) names. Git is asked in a few batched runs, not a few runs per worker.

A branch that changes a path of boss's own (`.boss/`, the worktree root) is never queued, not
even when accepted at review: landed, those files would replace the manifest, the statuses and
the decisions in the user's checkout with what an agent wrote. Whatever triage queues is proven
later by its acceptance test in the ceremony; a status that says SUCCESS only makes it a candidate.

Commits a person added on a worker's branch after boss's last (boss.core.handwork) make it a
candidate too, whatever its state (FAILED, SCOPE_VIOLATION, a SUCCESS whose branch moved on, a
worker the last ceremony reverted): verified the same way, with the count on its record. A
worker a person dropped (`boss drop`) is DROPPED and never queued.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from boss.core import git, gittrees, handwork, journal, redo, scope
from boss.core import status as st
from boss.core.config import Config
from boss.core.decisions import ACCEPT, REJECT, Decision, Drop, read_decision, read_drop
from boss.core.errors import InputError
from boss.core.journal import CRASHED, DROPPED, FAILED, MERGED, PENDING, QUARANTINED, SKIPPED, Record
from boss.core.manifest import Manifest, Worker
from boss.core.paths import PlanPaths
from boss.core.worktrees import tool_excludes


def short(commit: str) -> str:
    """An abbreviated commit for messages."""
    return commit[:10]


@dataclass
class Triage:
    """Every worker's record in merge order, and the paths each verified branch changes."""

    records: list[Record]
    changed: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class _Item:
    w: Worker
    r: Record
    status: st.Status | None
    decision: Decision | None
    redo_start: str = ""  # where a redo started it on the base (boss.core.redo), if it still holds
    drop: Drop | None = None


def base_head(paths: PlanPaths, m: Manifest) -> str:
    """The commit the base branch points at; InputError naming the manifest when it is missing."""
    commit = git.rev(paths.repo, f"refs/heads/{m.base}")
    if commit is None:
        msg = f"{paths.manifest}: field base: branch {m.base!r} does not exist"
        raise InputError(msg)
    return commit


def triage(paths: PlanPaths, m: Manifest, config: Config, base_start: str) -> Triage:
    """Classify every worker (in dependency order) and verify each queued branch from git."""
    repo = paths.repo
    heads = git.branch_heads(repo)
    items: list[_Item] = []
    for w in m.order():
        status = st.read(paths.status(w.id))
        decision = read_decision(paths, w.id)
        r = Record(
            id=w.id,
            branch=w.branch,
            state=st.effective_state(status, config.heartbeat_stale),
            head=heads.get(w.branch, ""),
            start=(decision.start if decision else "") or (status.start_commit if status else ""),
            worker_started=status.started_at if status else "",
            worker_finished=status.finished_at if status else "",
        )
        r.by_hand = _by_hand(paths, w, r, status, decision)
        items.append(_Item(w, r, status, decision, drop=read_drop(paths, w.id)))
    refs = [f"refs/heads/{i.w.branch}" for i in items if i.r.head]
    in_base = git.refs_merged(repo, base_start, refs)
    for i in items:
        landed = f"refs/heads/{i.w.branch}" in in_base or _deleted_after_landing(repo, i, base_start)
        _classify(i, landed, m.base)
    result = Triage([i.r for i in items])
    by_id = {i.w.id: i for i in items}
    _verify(paths, m, base_start, [i for i in items if i.r.queued and not i.r.decided], by_id, result)
    for i in items:  # dependency order: a dependency's verdict is final before its dependents'
        if not i.r.queued or i.r.decided:
            continue
        for dep in i.w.depends_on:
            d = by_id[dep].r
            if not d.queued or d.verdict not in ("", MERGED):
                i.r.verdict = SKIPPED
                i.r.reason = f"its dependency {dep} is {d.verdict or d.state}: it will not be merged"
                break
    return result


# States whose branch a person may finish by hand: the run ended, and recorded where it started.
_FINISHED = (st.SUCCESS, st.FAILED, st.SCOPE_VIOLATION)


def _by_hand(paths: PlanPaths, w: Worker, r: Record, status: st.Status | None, d: Decision | None) -> int:
    """How many commits on the branch boss did not make (0 when the worker's run has not ended)."""
    if not r.head or status is None or not status.start_commit or r.state not in _FINISHED:
        return 0
    if r.head in (status.head_commit, d.head if d else ""):
        return 0  # the common case, without asking git
    known = handwork.boss_heads(paths, w.id)
    return len(handwork.commits_beyond(paths.repo, r.head, known)) if known else 0


def _deleted_after_landing(repo: Path, i: _Item, base_start: str) -> bool:
    """A branch `boss clean` deleted once its work was in the base: its record keeps the head."""
    head = i.decision.head if i.decision else i.status.head_commit if i.status else ""
    if i.r.head or not head or not git.is_ancestor(repo, head, base_start):
        return False
    i.r.head = head
    return True


def _classify(i: _Item, in_base: bool, base: str) -> None:
    """The verdict a worker gets from its status and review decision alone (no git yet)."""
    r, status, d = i.r, i.status, i.decision
    if r.by_hand and d is not None and d.decision == REJECT:
        d = i.decision = None  # the rejection was of the branch before the person's commits
    claims_work = r.state in (st.SUCCESS, st.SCOPE_VIOLATION) or d is not None or r.by_hand > 0
    if claims_work and r.head and in_base and r.head != r.start:
        r.queued, r.verdict, r.reason = True, MERGED, f"already in {base}"
    elif i.drop is not None:
        r.verdict, r.reason = DROPPED, f"dropped: {i.drop.reason}; `boss drop {r.id} --undo` takes it back"
    elif d is not None and d.decision == REJECT:
        r.verdict, r.reason = QUARANTINED, f"rejected at review: {d.reason}"
        r.out_of_scope, r.decision = list(d.out_of_scope), d.decision
    elif d is not None or r.state == st.SUCCESS or r.by_hand:
        r.queued = True
        if r.by_hand:  # shown by a dry run; the merge's verdict replaces it
            r.reason = f"{r.state}, then finished by hand: {handwork.counted(r.by_hand)} after boss's last"
        r.decision = d.decision if d else ""
    elif r.state in (st.PENDING, st.WAITING):
        r.verdict = PENDING
        r.reason = "not started" if r.state == st.PENDING else "waiting for its dependencies"
    elif r.state == st.RUNNING:
        r.verdict = PENDING
        r.reason = f"still running (pid {status.pid if status else '?'}); left alone"
    elif r.state == CRASHED:
        r.verdict = CRASHED
        r.reason = "its process is gone or its heartbeat is stale; run it again (boss retry)"
    elif r.state == st.FAILED:
        r.verdict, r.reason = FAILED, (status.reason if status else "") or "failed"
    elif r.state == st.SKIPPED:
        r.verdict, r.reason = SKIPPED, (status.reason if status else "") or "skipped"
    else:  # SCOPE_VIOLATION without a review decision
        r.verdict = QUARANTINED
        r.out_of_scope = list(status.violations) if status else []
        r.reason = f"its status is SCOPE_VIOLATION; review it: boss quarantine show {r.id}"


def _verify(
    paths: PlanPaths,
    m: Manifest,
    base_start: str,
    queued: list[_Item],
    by_id: dict[str, _Item],
    result: Triage,
) -> None:
    """Trust but verify: branch, head, start and scope of each queued branch, from git."""
    repo = paths.repo
    base_commit = _full_commit(repo, m.base_commit)
    survivors = []
    redone = git.ref_commits(repo, [redo.onto_ref(paths, i.w.id) for i in queued])
    for i in queued:
        if redo.onto_ref(paths, i.w.id) in redone:
            i.redo_start = _redo_start(paths, i, by_id, base_commit or "", base_start)
        problem = _claims_problem(repo, i, by_id, base_commit)
        if problem:
            _quarantine(i.r, problem)
        else:
            survivors.append(i)
    by_start: dict[str, list[_Item]] = defaultdict(list)
    for i in survivors:
        by_start[i.r.start].append(i)
    for start, group in by_start.items():
        refs = [f"refs/heads/{i.w.branch}" for i in group]
        containing = git.refs_containing(repo, start, refs)
        for i in group:
            if f"refs/heads/{i.w.branch}" not in containing:
                _quarantine(i.r, f"its start commit {short(start)} is not in the history of {i.w.branch}")
            elif not base_commit and not i.w.depends_on and not git.is_ancestor(repo, start, base_start):
                _quarantine(i.r, f"its start commit {short(start)} is not on {m.base}")
    survivors = [i for i in survivors if not i.r.decided]
    # The scope check, recomputed: for queued branches, and as evidence for quarantined ones.
    evidence = [i for i in by_id.values() if i.r.verdict == QUARANTINED and i.r.head and i.r.start]
    checked = survivors + evidence  # disjoint: no survivor is quarantined
    queued_ids = {i.w.id for i in survivors}
    names = gittrees.diff_names_many(repo, [(i.r.start, i.r.head) for i in checked])
    own = tool_paths(paths)
    for i, changed in zip(checked, names, strict=True):
        outside = scope.out_of_scope(changed, i.w.scope)
        if i.w.id in queued_ids:
            result.changed[i.w.id] = changed
            tool = [p for p in changed if is_tool_path(own, p)]
            # A link leaving the repository or a submodule: from git alone, whatever any file says.
            links = scope.tree_problems(repo, i.r.head, changed)
            if tool:  # no review decision can let these in
                shown = ", ".join(tool[:3]) + (f" and {len(tool) - 3} more" if len(tool) > 3 else "")
                _quarantine(i.r, f"its branch changes boss's own files ({shown}); it can never be merged")
                i.r.out_of_scope = sorted(set(outside) | set(tool))
            elif links:  # nor these
                shown = "; ".join(scope.described(links)[:3]) + (
                    f" and {len(links) - 3} more" if len(links) > 3 else ""
                )
                _quarantine(i.r, f"its branch holds {shown}; it can never be merged")
                i.r.out_of_scope = sorted(set(outside) | set(links))
            elif outside and not _accepted(i, outside):
                claim = f"its {'review' if i.decision else 'status'} says it is in scope, but "
                if i.r.by_hand:
                    claim = f"finished by hand ({handwork.counted(i.r.by_hand)}), but "
                _quarantine(i.r, claim + f"git shows {len(outside)} path(s) outside its scope")
                i.r.out_of_scope = outside
            elif outside:
                i.r.out_of_scope = outside  # accepted as it is: the paths stay on record
        elif outside and not i.r.out_of_scope:
            i.r.out_of_scope = outside


def _accepted(i: _Item, outside: list[str]) -> bool:
    """True when review accepted these out-of-scope paths (commits by hand after the review
    bring in no new ones)."""
    if i.r.decision != ACCEPT or i.decision is None:
        return False
    return not i.r.by_hand or set(outside) <= set(i.decision.out_of_scope)


def tool_paths(paths: PlanPaths) -> tuple[str, ...]:
    """The folders of boss's own in the repository, as path prefixes (".boss/", ...), casefolded."""
    return tuple(p.strip("/").casefold() + "/" for p in tool_excludes(paths))


def is_tool_path(prefixes: tuple[str, ...], path: str) -> bool:
    """True when a repo-relative path is (or is under) one of boss's own folders; compared
    casefolded, as a case-insensitive file system would see `.BOSS/`."""
    folded = path.casefold() + "/"
    return folded.startswith(prefixes)


def _full_commit(repo: Path, name: str) -> str | None:
    """The manifest's base commit as a full hash (asking git only when it is abbreviated)."""
    if not name:
        return None
    if len(name) in (40, 64) and all(c in "0123456789abcdef" for c in name):
        return name
    return git.rev(repo, name)


def _quarantine(r: Record, reason: str) -> None:
    r.verdict, r.reason = QUARANTINED, reason


def _claims_problem(repo: Path, i: _Item, by_id: dict[str, _Item], base_commit: str | None) -> str | None:
    """What is wrong with a queued worker's claims about its branch, or None."""
    w, r, status, d = i.w, i.r, i.status, i.decision
    if not r.head:
        return f"its branch {w.branch} does not exist"
    if status is not None and status.branch and status.branch != w.branch:
        return f"its status names branch {status.branch}, but the manifest says {w.branch}"
    expected = d.head if d else (status.head_commit if status else "")
    if r.head != expected and not r.by_hand:
        who = "its review decision" if d else "its status"
        return (
            f"its branch {w.branch} is at {short(r.head)}, not at the commit {who} names "
            f"({short(expected) or 'none'})"
        )
    if not r.start:
        return "its status names no start commit"
    if d is not None and d.decision == ACCEPT:
        return None  # accepted at review as it is
    if r.start == i.redo_start:
        return None  # redone on the base as it was then: `boss retry --onto`
    if not w.depends_on:
        if base_commit and r.start != base_commit:
            return f"it starts at {short(r.start)}, not at the plan's base commit {short(base_commit)}"
        return None
    return _dependency_start_problem(repo, w, r.start, [_ends(by_id[dep]) for dep in w.depends_on])


def _redo_start(paths: PlanPaths, i: _Item, by_id: dict[str, _Item], base_commit: str, base: str) -> str:
    """The worker's redo start (boss.core.redo) when it is on the base now, else ""."""
    dep_heads = [by_id[dep].r.head for dep in i.w.depends_on]
    onto = redo.start(paths, i.w.id, base_commit, dep_heads)
    return onto if onto and git.is_ancestor(paths.repo, onto, base) else ""


def _ends(dep: _Item) -> tuple[str, ...]:
    """Where a dependent may start on this dependency: its branch head, or, when a person
    added commits after the dependent started, the head boss left (the commits by hand land
    with the dependency)."""
    if dep.r.by_hand and dep.status is not None and dep.status.head_commit:
        return (dep.r.head, dep.status.head_commit)
    return (dep.r.head,)


def _dependency_start_problem(
    repo: Path, w: Worker, start: str, dep_ends: list[tuple[str, ...]]
) -> str | None:
    """A dependent starts at its dependency's head, or at the merge of its dependencies' heads."""
    named = ", ".join(
        f"{dep} at {short(h[0]) or 'none'}" for dep, h in zip(w.depends_on, dep_ends, strict=True)
    )
    wrong = f"it starts at {short(start)}, not where its dependencies end ({named})"
    commit = start
    for ends in reversed(dep_ends[1:]):
        parents = gittrees.parents(repo, commit)
        if len(parents) != 2 or parents[1] not in ends:
            return wrong
        tree, conflicts = gittrees.merge_tree(repo, parents[0], parents[1])
        if conflicts or tree != gittrees.tree_of(repo, commit):
            return f"its start {short(start)} is not a plain merge of its dependencies ({named})"
        commit = parents[0]
    return None if commit in dep_ends[0] else wrong


@dataclass(frozen=True)
class Prediction:
    """Conflicts `git merge-tree` predicts, without touching a worktree, the index or a ref."""

    with_base: dict[str, list[str]]
    pairs: list[tuple[str, str, list[str]]]


def predict(repo: Path, m: Manifest, base_start: str, t: Triage) -> Prediction:
    """Each queued branch against the base, and pairwise (pairs that change no common path
    cannot conflict textually and are not asked)."""
    todo = [r for r in t.records if r.queued and not r.decided]
    with_base: dict[str, list[str]] = {}
    for r in todo:
        _, conflicts = gittrees.merge_tree(repo, base_start, r.head)
        if conflicts:
            with_base[r.id] = conflicts
    pairs = []
    for a, b in itertools.combinations(todo, 2):
        if a.id in m.ancestors(b.id) or b.id in m.ancestors(a.id):
            continue
        if not set(t.changed.get(a.id, ())) & set(t.changed.get(b.id, ())):
            continue
        _, conflicts = gittrees.merge_tree(repo, a.head, b.head)
        if conflicts:
            pairs.append((a.id, b.id, conflicts))
    return Prediction(with_base, pairs)


@dataclass(frozen=True)
class DryRun:
    """What `boss merge` would do now: triage, the merge order, the predicted conflicts."""

    base: str
    base_start: str
    records: list[Record]
    order: list[str]
    prediction: Prediction
    in_progress: str  # the step of an interrupted ceremony that `boss merge` would resume, or ""


def dry_run(paths: PlanPaths, m: Manifest, config: Config) -> DryRun:
    """Triage and predict conflicts with `git merge-tree`, changing nothing."""
    base_start = base_head(paths, m)
    t = triage(paths, m, config, base_start)
    prediction = predict(paths.repo, m, base_start, t)
    j = journal.load(paths.merge_dir / "journal.json")
    in_progress = j.step if j is not None and j.step != journal.DONE else ""
    order = [r.id for r in t.records if r.queued and not r.decided]
    return DryRun(m.base, base_start, t.records, order, prediction, in_progress)
