"""The work manifest (version 1): typed model, load, save and validation (SPEC section 3)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from boss.core import manifest_graph, yamlio
from boss.core.errors import ManifestError
from boss.core.manifest_rules import (
    AGENT_RE,
    COMMIT_RE,
    COUNT_SETTINGS,
    GROUP_RE,
    ID_RE,
    NUMBER_SETTINGS,
    PLAN_ONLY_SETTINGS,
    SETTING_DEFAULTS,
    SLUG_RE,
    TOP_KEYS,
    TOP_REQUIRED,
    VERSION,
    WORKER_KEYS,
    WORKER_REQUIRED,
    Problems,
    check_branches,
    check_groups,
    check_keys,
    check_references,
    check_scope,
    check_setting,
    check_text,
    check_top,
    missing,
    show,
    strings,
)
from boss.core.overlaps import find_overlaps

__all__ = [
    "AGENT_RE", "COMMIT_RE", "COUNT_SETTINGS", "GROUP_RE", "ID_RE", "NUMBER_SETTINGS", "PLAN_ONLY_SETTINGS",
    "SETTING_DEFAULTS", "SLUG_RE",
    "TOP_KEYS", "TOP_REQUIRED", "VERSION", "WORKER_KEYS", "WORKER_REQUIRED", "Manifest", "Settings",
    "Worker", "default_branch", "display_path", "from_dict", "group_warnings", "load",
    "overlap_warning", "save", "scope_overlaps", "scope_warnings", "slugify", "to_dict", "with_base",
]  # fmt: skip


@dataclass(frozen=True)
class Settings:
    """The effective settings of one worker: its overrides over the plan's defaults."""

    agent: str
    max_iterations: int
    max_strategies: int
    agent_timeout: int
    test_timeout: int
    stall_timeout: int
    test_network: bool = False
    rate_limit_timeout: int = 900
    max_cost_usd: float = 0.0
    max_tokens: int = 0
    max_minutes: float = 0.0
    budget_usd: float = 0.0


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
    group: str = ""  # workers of one group are merged together and judged as a unit

    def in_scope(self, path: str) -> bool:
        """True when a repo-relative POSIX path matches any scope regex."""
        return any(re.search(rx, path) for rx in self.scope)


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
    def _graph(self) -> manifest_graph.Graph:
        ws = self.workers
        return manifest_graph.build([w.id for w in ws], [w.depends_on for w in ws], [w.group for w in ws])

    def order(self) -> list[Worker]:
        """Workers in dependency order (dependencies first, manifest order among equals, the
        members of a group one after the other)."""
        return [self.workers[i] for i in self._graph.order]

    def groups(self) -> dict[str, list[Worker]]:
        """Each group's members, in order()."""
        out: dict[str, list[Worker]] = {}
        for w in self.order():
            if w.group:
                out.setdefault(w.group, []).append(w)
        return out

    def group_of(self, worker_id: str) -> list[Worker]:
        """The members of worker_id's group in order() (itself alone when it has no group)."""
        w = self.worker(worker_id)
        return self.groups()[w.group] if w.group else [w]

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


def _parse_worker(p: Problems, raw: Any, index: int) -> Worker | None:
    if not isinstance(raw, dict):
        p.add(f"workers[{index}]", "must be a mapping with id, title, scope and test")
        return None
    wid = raw.get("id")
    where = f"worker {show(wid)}" if isinstance(wid, str) and wid else f"workers[{index}]"
    before = len(p.items)
    check_keys(p, where, raw, WORKER_KEYS)
    for key in WORKER_REQUIRED:
        if missing(raw.get(key)):
            p.add(f"{where} field {key}", "required field is missing")
    if isinstance(wid, str) and wid and not ID_RE.fullmatch(wid):
        p.add(f"{where} field id", "bad id: must match [A-Za-z][A-Za-z0-9_-]{0,31}")
    elif wid is not None and not isinstance(wid, str):
        p.add(f"{where} field id", "must be a string")
    for key in ("title", "test", "instructions", "branch", "group"):
        if raw.get(key) is not None and not isinstance(raw.get(key), str):
            p.add(f"{where} field {key}", "must be a string")
    scope = check_scope(p, where, raw.get("scope"))
    deps = strings(raw.get("depends_on") if raw.get("depends_on") not in (None, "") else [])
    if deps is None:
        p.add(f"{where} field depends_on", "must be a worker id or a list of worker ids")
        deps = ()
    write_test = raw.get("write_test", False)
    if not isinstance(write_test, bool):
        p.add(f"{where} field write_test", "must be true or false")
    overrides = {k: raw[k] for k in SETTING_DEFAULTS if k in raw}
    for key, value in overrides.items():
        check_setting(p, where, key, value)
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
        group=str(raw.get("group") or ""),
    )


def from_dict(raw: Any, source: str) -> Manifest:
    """Build and validate a manifest from parsed YAML; ManifestError lists every problem."""
    p = Problems(source)
    if not isinstance(raw, dict):
        p.add("top level", "must be a mapping with version, plan, base and workers")
        p.raise_if_any()
    check_text(p, raw)
    if p.items:  # a NUL byte makes every later check say something confusing about it
        p.raise_if_any()
    check_top(p, raw)
    copy = strings(raw.get("copy") if raw.get("copy") not in (None, "") else [])
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
    check_keys(p, "defaults", defaults, SETTING_DEFAULTS)
    for key in SETTING_DEFAULTS:
        if key in defaults:
            check_setting(p, "defaults", key, defaults[key])
    raw_workers = raw.get("workers") or []
    if not isinstance(raw_workers, list):
        p.add("field workers", "must be a list")
        raw_workers = []
    workers = [w for i, r in enumerate(raw_workers) if (w := _parse_worker(p, r, i)) is not None]
    check_references(p, raw_workers)
    check_groups(p, raw_workers)
    check_branches(p, ((w.id, w.branch) for w in workers), raw.get("base"))
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
        if w.group:
            entry["group"] = w.group
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
    return from_dict(yamlio.load_file(path, source, cached=True), source)


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
    scope (`^src/auth/`, `^README\\.md$`) is matched by the other: see boss.core.overlaps.
    """
    ws = m.workers
    found = find_overlaps([w.scope for w in ws], m._concurrent, tracked)
    return [(ws[i].id, ws[j].id, example or "(every path)") for i, j, example in found]


def scope_warnings(m: Manifest) -> list[str]:
    """Warnings for scope regexes that can match no git path: a literal backslash (`\\\\.`,
    usually one backslash too many in YAML) never occurs in one."""
    return [
        f"worker {w.id} field scope: {pattern!r} matches a literal backslash, which no path in git "
        "has, so it matches nothing; in YAML single quotes write one backslash ('^src/calc\\.py$')"
        for w in m.workers
        for pattern in w.scope
        if "\\\\" in pattern
    ] + group_warnings(m)


def group_warnings(m: Manifest) -> list[str]:
    """Warnings for groups of one worker: such a group changes nothing (its worker is judged
    alone anyway), so it is most likely a misspelt name that split a group in two."""
    return [
        f"worker {ws[0].id} field group: {name!r} is its group alone, which changes nothing; "
        "is the name misspelt in another worker?"
        for name, ws in m.groups().items()
        if len(ws) == 1
    ]


def overlap_warning(a: str, b: str, example: str) -> str:
    """The one-line warning for two concurrent workers whose scopes overlap."""
    return (
        f"workers {a} and {b} may run at the same time and their scopes overlap "
        f"(both match {example}); they may conflict at merge: narrow a scope or make one "
        "depend on the other"
    )
