"""The merge candidates the serial ceremony will judge next, predicted without a worktree.

From the last tested head, each pending worker (a group: its pending members together, as
boss/ceremony/grouping.py merges them) merged on the candidate before, with `git merge-tree`, as
a commit of its own (`git commit-tree`: no ref moves, no worktree, no index). A merge git cannot
make (a CONFLICT), a worker whose dependency is not predicted merged (SKIPPED), a group a member
of which is already out, and a candidate whose first test run came back red (likely dropped) do
not move the prediction on; the red one stays in the chain, so its run again is made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from boss.ceremony.session import Session
from boss.core import gittrees
from boss.core.journal import MERGED, Record


@dataclass
class Candidate:
    """A predicted merge candidate: the workers merged at this step, its tree and commit."""

    ids: list[str]
    tree: str
    commit: str


Red = Callable[[str, list[str]], bool]


Merges = dict[tuple[str, str], tuple[str, str]]  # (onto, head) -> (tree, commit); "" tree: a conflict


def chain(
    s: Session, red: Red, limit: int, known: Merges
) -> tuple[list[Candidate], Candidate | None, list[str]]:
    """The candidates ahead in merge order (at most `limit` of them), the predicted final one
    (None when the chain was cut short, or nothing more merges), and every worker predicted
    merged. `red(tree, ids)`: a first run on that candidate came back red. `known`: the merges
    predicted before (the same two commits merge to the same commit), filled as it goes, so
    predicting again after each verdict costs git only for what changed."""
    j, repo = s.j, s.paths.repo
    merged = [r.id for r in j.records if r.id in j.queue and r.verdict == MERGED]
    head, final = j.head, None
    out: list[Candidate] = []
    seen: set[str] = set()
    for r in s.pending():
        if r.id in seen:
            continue
        unit = _unit(s, r)
        seen.update(x.id for x in unit)
        ids = [x.id for x in unit]
        deps = {d for x in unit for d in s.m.worker(x.id).depends_on if d not in ids}
        if not deps <= set(merged) or (r.group and _group_out(s, r.group)):
            continue
        if len(out) >= limit:
            return out, None, merged
        commit, tree = head, ""
        for x in unit:
            tree, commit = _merge(repo, commit, x, known)
            if not tree:
                break
        else:
            cand = Candidate(ids, tree, commit)
            out.append(cand)
            if not red(tree, ids):
                head, final = commit, cand
                merged += ids
    return out, final, merged


def _merge(repo: Path, onto: str, x: Record, known: Merges) -> tuple[str, str]:
    """x's head merged onto a commit, as a commit of its own: (tree, commit); ("", "") on a conflict."""
    key = (onto, x.head)
    if key not in known:
        tree, conflicts = gittrees.merge_tree(repo, onto, x.head)
        if conflicts or not tree:
            known[key] = ("", "")
        else:
            message = f"boss: predicted merge {x.id}"
            known[key] = (tree, gittrees.commit_tree(repo, tree, [onto, x.head], message))
    return known[key]


def _unit(s: Session, r: Record) -> list[Record]:
    """What the serial procedure merges at r's turn: r, or its group's pending members."""
    if not r.group:
        return [r]
    members = (s.j.record(w.id) for w in s.m.groups()[r.group])
    return [x for x in members if x.id in s.j.queue and not x.decided]


def _group_out(s: Session, name: str) -> bool:
    """A member of group name was decided without being merged: the group stays out whole."""
    return any(x.decided and x.verdict != MERGED for x in (s.j.record(w.id) for w in s.m.groups()[name]))
