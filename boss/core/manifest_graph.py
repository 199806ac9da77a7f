"""The dependency graph of a manifest's workers: their order, their ancestors.

Workers are ordered dependencies first, manifest order among workers that are ready together,
and the members of a group (their `group` field) one after the other: the merge ceremony
merges a group as a unit, so nothing may come between its members. A group is ordered as one
node (ready when every worker a member depends on outside the group is), placed by its first
member in the manifest; its members follow in their own dependency order. Validation refuses
groups that make this impossible (boss.core.manifest_rules.check_groups); should a manifest
built in code have one anyway, the order ignores groups rather than drop workers.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Graph:
    """The dependency graph, computed once per manifest: order and ancestor bitmasks."""

    index: dict[str, int]
    order: list[int]
    ancestors: list[int]  # bit j of ancestors[i]: worker j is an ancestor of worker i


def _kahn(deps: Sequence[Sequence[int]]) -> list[int]:
    """Kahn's algorithm with a heap of positions: O(n log n + edges); a cycle's nodes are left out."""
    waiting = [len(d) for d in deps]
    users: list[list[int]] = [[] for _ in deps]
    for i, ds in enumerate(deps):
        for d in ds:
            users[d].append(i)
    ready = [i for i, n in enumerate(waiting) if n == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for u in users[i]:
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, u)
    return order


def _grouped(deps: list[list[int]], groups: Sequence[str]) -> list[int]:
    """The order with each group's members together (groups contracted to one node)."""
    first: dict[str, int] = {}
    unit_of: list[int] = []
    members: list[list[int]] = []
    for i, g in enumerate(groups):
        if g and g in first:
            unit_of.append(first[g])
            members[first[g]].append(i)
            continue
        if g:
            first[g] = len(members)
        unit_of.append(len(members))
        members.append([i])
    unit_deps = [
        sorted({unit_of[d] for i in ms for d in deps[i] if unit_of[d] != u}) for u, ms in enumerate(members)
    ]
    order: list[int] = []
    for u in _kahn(unit_deps):
        ms = members[u]
        local = {w: k for k, w in enumerate(ms)}
        inner = [[local[d] for d in deps[w] if d in local] for w in ms]
        order.extend(ms[k] for k in _kahn(inner))
    return order


def build(ids: Sequence[str], depends_on: Sequence[Sequence[str]], groups: Sequence[str]) -> Graph:
    """The graph of workers ids (in manifest order), their dependencies and their groups."""
    index = {w: i for i, w in enumerate(ids)}
    deps = [[index[d] for d in ds if d in index] for ds in depends_on]
    order = _grouped(deps, groups) if any(groups) else []
    if len(order) != len(ids):
        order = _kahn(deps)
    ancestors = [0] * len(ids)
    for i in order:
        for d in deps[i]:
            ancestors[i] |= ancestors[d] | (1 << d)
    return Graph(index, order, ancestors)
