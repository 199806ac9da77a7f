"""The work manifest (version 1): typed model, load, save and validation (SPEC section 3)."""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from boss import yamlio
from boss.errors import InputError, ManifestError
from boss.git import branch_name_problem
from boss.overlaps import find_overlaps

VERSION = 1
SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
ID_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
AGENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
COMMIT_RE = re.compile(r"[0-9a-f]{7,64}")
TOP_REQUIRED = ("version", "plan", "base", "workers")
TOP_KEYS = (
    "version", "plan", "task", "base", "base_commit", "integration_test", "setup", "copy",
    "defaults", "workers",
)  # fmt: skip
WORKER_REQUIRED = ("id", "title", "scope", "test")
WORKER_KEYS = (
    "id", "title", "branch", "scope", "depends_on", "test", "instructions", "write_test",
    "agent", "max_iterations", "max_strategies", "agent_timeout", "test_timeout", "stall_timeout",
)  # fmt: skip
# Settings a worker may override; their defaults live in `defaults`.
SETTING_DEFAULTS: dict[str, Any] = {
    "agent": "claude",
    "max_iterations": 5,
    "max_strategies": 2,
    "agent_timeout": 1800,
    "test_timeout": 600,
    "stall_timeout": 600,
}
COUNT_SETTINGS = ("max_iterations", "max_strategies")  # 1..100; the other numbers are seconds


@dataclass(frozen=True)
class Settings:
    """The effective settings of one worker: its overrides over the plan's defaults."""

    agent: str
    max_iterations: int
    max_strategies: int
    agent_timeout: int
    test_timeout: int
    stall_timeout: int


@dataclass(frozen=True)
class Worker:
    """One unit of work: a branch, a scope, dependencies and an acceptance test."""

    id: str
    title: str
    branch: str
    scope: tuple[str, ...]
    test: str
    depends_on: tuple[str, ...] = ()
    instructions: str = ""
    write_test: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)

    def in_scope(self, path: str) -> bool:
        """True when a repo-relative POSIX path matches any scope regex."""
        return any(re.search(rx, path) for rx in self.scope)


@dataclass(frozen=True)
class _Graph:
    """The dependency graph, computed once per manifest: order and ancestor bitmasks."""

    index: dict[str, int]
    order: list[int]
    ancestors: list[int]  # bit j of ancestors[i]: worker j is an ancestor of worker i


@dataclass(frozen=True)
class Manifest:
    """A whole plan: the source of truth, editable by hand."""

    plan: str
    base: str
    workers: tuple[Worker, ...]
    task: str = ""
    base_commit: str = ""
    integration_test: str = ""
    setup: str = ""
    copy: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)

    def worker(self, worker_id: str) -> Worker:
        """The worker with this id; ManifestError naming the plan when there is none."""
        return self.workers[self._position(worker_id)]

    def settings(self, worker: Worker) -> Settings:
        """The effective settings of a worker."""
        merged = {**SETTING_DEFAULTS, **self.defaults, **worker.overrides}
        return Settings(**merged)

    @cached_property
    def _graph(self) -> _Graph:
        # Kahn's algorithm with a heap of manifest positions: dependencies first, manifest
        # order among workers that are ready together; O(n log n + edges).
        index = {w.id: i for i, w in enumerate(self.workers)}
        deps = [[index[d] for d in w.depends_on if d in index] for w in self.workers]
        waiting = [len(d) for d in deps]
        users: list[list[int]] = [[] for _ in self.workers]
        for i, ds in enumerate(deps):
            for d in ds:
                users[d].append(i)
        ready = [i for i, n in enumerate(waiting) if n == 0]
        heapq.heapify(ready)
        order: list[int] = []
        ancestors = [0] * len(self.workers)
        while ready:
            i = heapq.heappop(ready)
            order.append(i)
            for d in deps[i]:
                ancestors[i] |= ancestors[d] | (1 << d)
            for u in users[i]:
                waiting[u] -= 1
                if waiting[u] == 0:
                    heapq.heappush(ready, u)
        return _Graph(index, order, ancestors)

    def order(self) -> list[Worker]:
        """Workers in dependency order (dependencies first, manifest order among equals)."""
        return [self.workers[i] for i in self._graph.order]

    def waves(self) -> list[list[Worker]]:
        """Workers grouped by the earliest wave they can run in (longest dependency chain)."""
        g = self._graph
        level = [0] * len(self.workers)
        for i in g.order:
            deps = [g.index[d] for d in self.workers[i].depends_on if d in g.index]
            level[i] = 1 + max((level[d] for d in deps), default=0)
        waves: list[list[Worker]] = [[] for _ in range(max(level, default=0))]
        for i, w in enumerate(self.workers):
            if level[i]:
                waves[level[i] - 1].append(w)
        return waves

    def ancestors(self, worker_id: str) -> set[str]:
        """Every worker that worker_id depends on, directly or not."""
        mask = self._graph.ancestors[self._position(worker_id)]
        return {w.id for j, w in enumerate(self.workers) if mask >> j & 1}

    def dependents(self, worker_id: str) -> set[str]:
        """Every worker that depends on worker_id, directly or not."""
        bit = 1 << self._position(worker_id)
        return {w.id for w, mask in zip(self.workers, self._graph.ancestors, strict=True) if mask & bit}

    def concurrent(self, a: str, b: str) -> bool:
        """True when two workers may run at the same time (neither depends on the other)."""
        return a != b and self._concurrent(self._position(a), self._position(b))

    def _concurrent(self, i: int, j: int) -> bool:
        anc = self._graph.ancestors
        return i != j and not (anc[i] >> j & 1) and not (anc[j] >> i & 1)

    def _position(self, worker_id: str) -> int:
        i = self._graph.index.get(worker_id)
        if i is None:
            known = ", ".join(w.id for w in self.workers)
            msg = f"plan {self.plan}: no worker {worker_id!r} (workers: {known})"
            raise ManifestError(msg)
        return i


def slugify(text: str, limit: int = 40) -> str:
    """A slug of text: lowercase ASCII letters, digits and single dashes."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:limit].rstrip("-") or "plan"


def default_branch(worker_id: str, title: str) -> str:
    """feat/<id lowercased>-<slug of title>."""
    return f"feat/{worker_id.lower()}-{slugify(title, 40)}"


def _show(value: object) -> str:
    """A key or value as it reads on one line of an error message."""
    text = str(value)
    return text if re.fullmatch(r"[\w.-]{1,64}", text) else repr(text)[:80]


class _Problems:
    """Collects validation problems, each a one-line message naming file, worker and field."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[str] = []

    def add(self, where: str, problem: str) -> None:
        self.items.append(f"{self.source}: {where}: {problem}")

    def raise_if_any(self) -> None:
        if self.items:
            raise ManifestError("\n".join(self.items), self.items)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _missing(value: Any) -> bool:
    return value is None or value == [] or (isinstance(value, str) and not value.strip())


def _check_setting(p: _Problems, where: str, key: str, value: Any) -> None:
    if key == "agent":
        if not isinstance(value, str) or not AGENT_RE.fullmatch(value):
            p.add(f"{where} field agent", "must be an agent profile name (letters, digits, ._-)")
    elif key in COUNT_SETTINGS:
        if not _is_int(value) or not 1 <= value <= 100:
            p.add(f"{where} field {key}", "must be a whole number from 1 to 100")
    elif not _is_int(value) or value < 0:
        p.add(f"{where} field {key}", "must be a whole number of seconds >= 0 (0: no limit)")


def _strings(value: Any) -> tuple[str, ...] | None:
    """One string or a list of strings as a tuple; None when it is neither."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _check_keys(p: _Problems, where: str, raw: dict[Any, Any], allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    for key in sorted(set(raw) - set(allowed), key=str):
        prefix = f"{where} field" if where else "field"
        p.add(f"{prefix} {_show(key)}", f"unknown key (allowed: {', '.join(allowed)})")


def _parse_scope(p: _Problems, where: str, value: Any) -> tuple[str, ...]:
    scope = _strings(value if value is not None else ())
    if scope is None:
        p.add(f"{where} field scope", "must be a regex or a list of regexes")
        return ()
    for rx in scope:
        if not rx:
            p.add(f"{where} field scope", "empty regex (write '^' to allow every path)")
            continue
        try:
            re.compile(rx)
        except re.error as e:
            p.add(f"{where} field scope", f"invalid regex {rx!r}: {e}")
    return scope


def _parse_worker(p: _Problems, raw: Any, index: int) -> Worker | None:
    if not isinstance(raw, dict):
        p.add(f"workers[{index}]", "must be a mapping with id, title, scope and test")
        return None
    wid = raw.get("id")
    where = f"worker {_show(wid)}" if isinstance(wid, str) and wid else f"workers[{index}]"
    before = len(p.items)
    _check_keys(p, where, raw, WORKER_KEYS)
    for key in WORKER_REQUIRED:
        if _missing(raw.get(key)):
            p.add(f"{where} field {key}", "required field is missing")
    if isinstance(wid, str) and wid and not ID_RE.fullmatch(wid):
        p.add(f"{where} field id", "bad id: must match [A-Za-z][A-Za-z0-9_-]{0,31}")
    elif wid is not None and not isinstance(wid, str):
        p.add(f"{where} field id", "must be a string")
    for key in ("title", "test", "instructions", "branch"):
        if raw.get(key) is not None and not isinstance(raw.get(key), str):
            p.add(f"{where} field {key}", "must be a string")
    scope = _parse_scope(p, where, raw.get("scope"))
    deps = _strings(raw.get("depends_on") if raw.get("depends_on") not in (None, "") else [])
    if deps is None:
        p.add(f"{where} field depends_on", "must be a worker id or a list of worker ids")
        deps = ()
    write_test = raw.get("write_test", False)
    if not isinstance(write_test, bool):
        p.add(f"{where} field write_test", "must be true or false")
    overrides = {k: raw[k] for k in SETTING_DEFAULTS if k in raw}
    for key, value in overrides.items():
        _check_setting(p, where, key, value)
    if len(p.items) > before:
        return None
    title = str(raw["title"]).strip()
    branch = raw.get("branch") or default_branch(str(wid), title)
    return Worker(
        id=str(wid),
        title=title,
        branch=str(branch),
        scope=scope,
        test=str(raw["test"]),
        depends_on=tuple(dict.fromkeys(deps)),
        instructions=str(raw.get("instructions") or ""),
        write_test=bool(write_test),
        overrides=overrides,
    )


def _find_cycles(workers: Iterable[Worker]) -> list[list[str]]:
    """Dependency cycles, each as [a, b, ..., a]; iterative, so long chains cannot overflow."""
    graph = {w.id: [d for d in w.depends_on if d != w.id] for w in workers}
    color: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    for root in graph:
        if root in color:
            continue
        color[root] = 1
        path, stack = [root], [iter(graph[root])]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                color[path.pop()] = 2
                stack.pop()
            elif nxt in graph and color.get(nxt) == 1:
                cycle = path[path.index(nxt) :]
                if frozenset(cycle) not in seen:
                    seen.add(frozenset(cycle))
                    cycles.append([*cycle, nxt])
            elif nxt in graph and nxt not in color:
                color[nxt] = 1
                path.append(nxt)
                stack.append(iter(graph[nxt]))
    return cycles


def _graph_entries(raw_workers: list[Any]) -> list[Worker]:
    """Every worker entry with a string id, valid or not, as far as the graph checks need it."""
    entries = []
    for r in raw_workers:
        if isinstance(r, dict) and isinstance(r.get("id"), str) and r["id"]:
            deps = r.get("depends_on")
            deps = _strings(deps if deps not in (None, "") else []) or ()
            entries.append(Worker(r["id"], "", "", (), "", tuple(dict.fromkeys(deps))))
    return entries


def _check_graph(p: _Problems, workers: list[Worker], raw_workers: list[Any], base: Any) -> None:
    entries = _graph_entries(raw_workers)
    ids: set[str] = set()
    for e in entries:
        if e.id in ids:
            p.add(f"worker {_show(e.id)} field id", "duplicate id (ids must be unique in the plan)")
        ids.add(e.id)
    for e in entries:
        for d in e.depends_on:
            if d == e.id:
                p.add(f"worker {_show(e.id)} field depends_on", "a worker cannot depend on itself")
            elif d not in ids:
                p.add(f"worker {_show(e.id)} field depends_on", f"names no worker {_show(d)}")
    for cycle in _find_cycles(entries):
        p.add(
            f"worker {cycle[0]} field depends_on",
            f"dependency cycle {' -> '.join(cycle)} (each depends on the next)",
        )
    branches: dict[str, str] = {}
    for w in workers:
        problem = branch_name_problem(w.branch)
        if problem:
            p.add(
                f"worker {w.id} field branch",
                f"invalid branch name {w.branch!r}: {problem} (see git check-ref-format)",
            )
        elif w.branch == base:
            p.add(f"worker {w.id} field branch", f"{w.branch!r} is the plan's base branch")
        elif w.branch in branches:
            p.add(
                f"worker {w.id} field branch",
                f"branch {w.branch!r} is also worker {branches[w.branch]}'s",
            )
        else:
            branches[w.branch] = w.id


def _check_top(p: _Problems, raw: dict[Any, Any]) -> None:
    _check_keys(p, "", raw, TOP_KEYS)
    for key in TOP_REQUIRED:
        if _missing(raw.get(key)):
            p.add(f"field {key}", "required field is missing")
    if raw.get("version") not in (None, VERSION):
        p.add(
            "field version",
            f"unsupported version {_show(raw.get('version'))} (this tool reads version {VERSION})",
        )
    plan = raw.get("plan")
    if plan is not None and (not isinstance(plan, str) or not SLUG_RE.fullmatch(plan)):
        p.add("field plan", f"bad slug {_show(plan)}: must match [a-z0-9][a-z0-9-]{{0,62}}")
    for key in ("task", "base", "base_commit", "integration_test", "setup"):
        if raw.get(key) is not None and not isinstance(raw.get(key), str):
            p.add(f"field {key}", "must be a string")
    base = raw.get("base")
    if isinstance(base, str) and base.strip():
        problem = branch_name_problem(base)
        if problem:
            p.add("field base", f"invalid branch name {base!r}: {problem}")
    commit = raw.get("base_commit")
    if isinstance(commit, str) and commit and not COMMIT_RE.fullmatch(commit):
        p.add("field base_commit", "must be a commit hash (7 to 64 lowercase hex digits)")


def from_dict(raw: Any, source: str) -> Manifest:
    """Build and validate a manifest from parsed YAML; ManifestError lists every problem."""
    p = _Problems(source)
    if not isinstance(raw, dict):
        p.add("top level", "must be a mapping with version, plan, base and workers")
        p.raise_if_any()
    _check_top(p, raw)
    copy = _strings(raw.get("copy") if raw.get("copy") not in (None, "") else [])
    if copy is None:
        p.add("field copy", "must be a list of paths")
        copy = ()
    for c in copy:
        if not c or Path(c).is_absolute() or ".." in Path(c).parts:
            p.add("field copy", f"{c!r} must be a path inside the repository")
    defaults = raw.get("defaults")
    defaults = {} if defaults is None else defaults
    if not isinstance(defaults, dict):
        p.add("field defaults", "must be a mapping")
        defaults = {}
    _check_keys(p, "defaults", defaults, SETTING_DEFAULTS)
    for key in SETTING_DEFAULTS:
        if key in defaults:
            _check_setting(p, "defaults", key, defaults[key])
    raw_workers = raw.get("workers") or []
    if not isinstance(raw_workers, list):
        p.add("field workers", "must be a list")
        raw_workers = []
    workers = [w for i, r in enumerate(raw_workers) if (w := _parse_worker(p, r, i)) is not None]
    _check_graph(p, workers, raw_workers, raw.get("base"))
    p.raise_if_any()
    return Manifest(
        plan=str(raw["plan"]),
        base=str(raw["base"]),
        workers=tuple(workers),
        task=str(raw.get("task") or ""),
        base_commit=str(raw.get("base_commit") or ""),
        integration_test=str(raw.get("integration_test") or ""),
        setup=str(raw.get("setup") or ""),
        copy=copy,
        defaults={**SETTING_DEFAULTS, **defaults},
    )


def to_dict(m: Manifest) -> dict[str, Any]:
    """The manifest as plain data in the documented key order."""
    out: dict[str, Any] = {
        "version": VERSION,
        "plan": m.plan,
        "task": m.task,
        "base": m.base,
        "base_commit": m.base_commit,
        "integration_test": m.integration_test,
        "setup": m.setup,
        "copy": list(m.copy),
        "defaults": {**SETTING_DEFAULTS, **m.defaults},
        "workers": [],
    }
    for w in m.workers:
        entry: dict[str, Any] = {
            "id": w.id,
            "title": w.title,
            "branch": w.branch,
            "scope": list(w.scope),
            "depends_on": list(w.depends_on),
            "test": w.test,
            "instructions": w.instructions,
        }
        if w.write_test:
            entry["write_test"] = True
        entry.update(w.overrides)
        out["workers"].append(entry)
    return out


def display_path(path: Path) -> str:
    """path relative to the current directory when it is below it, for messages."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (OSError, ValueError):
        return str(path)


def load(path: Path) -> Manifest:
    """Read and validate a manifest file; errors name it relative to the current directory."""
    source = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        msg = f"{source}: cannot read: {e.strerror}"
        raise InputError(msg) from e
    return from_dict(yamlio.load(text, source), source)


def save(m: Manifest, path: Path) -> None:
    """Write a manifest atomically."""
    header = "# boss work manifest (version 1): the source of truth; edit it, then `boss render`.\n"
    yamlio.write_atomic(path, header + yamlio.dump(to_dict(m)))


def with_base(m: Manifest, base: str, base_commit: str) -> Manifest:
    """A copy of m with its base recorded."""
    return replace(m, base=base, base_commit=base_commit)


def scope_overlaps(m: Manifest, tracked: Iterable[str] = ()) -> list[tuple[str, str, str]]:
    """Pairs of workers that may run at once with overlapping scopes, with an example path.

    Two scopes overlap when a tracked path matches both, or when the literal part of a plain
    scope (`^src/auth/`, `^README\\.md$`) is matched by the other: see boss.overlaps.
    """
    ws = m.workers
    found = find_overlaps([w.scope for w in ws], m._concurrent, tracked)
    return [(ws[i].id, ws[j].id, example or "(every path)") for i, j, example in found]


def overlap_warning(a: str, b: str, example: str) -> str:
    """The one-line warning for two concurrent workers whose scopes overlap."""
    return (
        f"workers {a} and {b} may run at the same time and their scopes overlap "
        f"(both match {example}); they may conflict at merge: narrow a scope or make one "
        "depend on the other"
    )
