"""The work manifest (version 1): typed model, load, save and validation (SPEC section 3)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from boss import yamlio
from boss.errors import ManifestError

VERSION = 1
SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
ID_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
AGENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
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
        for w in self.workers:
            if w.id == worker_id:
                return w
        known = ", ".join(w.id for w in self.workers)
        msg = f"plan {self.plan}: no worker {worker_id!r} (workers: {known})"
        raise ManifestError(msg)

    def settings(self, worker: Worker) -> Settings:
        """The effective settings of a worker."""
        merged = {**SETTING_DEFAULTS, **self.defaults, **worker.overrides}
        return Settings(**merged)

    def order(self) -> list[Worker]:
        """Workers in dependency order (dependencies first, manifest order among equals)."""
        done: set[str] = set()
        result: list[Worker] = []
        pending = list(self.workers)
        while pending:
            for w in pending:
                if all(d in done for d in w.depends_on):
                    result.append(w)
                    done.add(w.id)
                    pending.remove(w)
                    break
            else:  # pragma: no cover - validation rejects cycles before this is reached
                break
        return result

    def waves(self) -> list[list[Worker]]:
        """Workers grouped by the earliest wave they can run in (longest dependency chain)."""
        level: dict[str, int] = {}
        for w in self.order():
            level[w.id] = 1 + max((level[d] for d in w.depends_on), default=0)
        count = max(level.values(), default=0)
        return [[w for w in self.workers if level[w.id] == n] for n in range(1, count + 1)]

    def ancestors(self, worker_id: str) -> set[str]:
        """Every worker that worker_id depends on, directly or not."""
        by_id = {w.id: w for w in self.workers}
        seen: set[str] = set()
        stack = list(by_id[worker_id].depends_on)
        while stack:
            d = stack.pop()
            if d not in seen:
                seen.add(d)
                stack.extend(by_id[d].depends_on)
        return seen

    def dependents(self, worker_id: str) -> set[str]:
        """Every worker that depends on worker_id, directly or not."""
        return {w.id for w in self.workers if worker_id in self.ancestors(w.id)}

    def concurrent(self, a: str, b: str) -> bool:
        """True when two workers may run at the same time (neither depends on the other)."""
        return a != b and a not in self.ancestors(b) and b not in self.ancestors(a)


def slugify(text: str, limit: int = 40) -> str:
    """A slug of text: lowercase ASCII letters, digits and single dashes."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:limit].rstrip("-") or "plan"


def default_branch(worker_id: str, title: str) -> str:
    """feat/<id lowercased>-<slug of title>."""
    return f"feat/{worker_id.lower()}-{slugify(title, 40)}"


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


def _check_setting(p: _Problems, where: str, key: str, value: Any) -> None:
    if key == "agent":
        if not isinstance(value, str) or not AGENT_RE.fullmatch(value):
            p.add(f"{where} field agent", "must be an agent profile name (letters, digits, ._-)")
    elif key in ("max_iterations", "max_strategies"):
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


def _parse_worker(p: _Problems, raw: Any, index: int) -> Worker | None:
    if not isinstance(raw, dict):
        p.add(f"workers[{index}]", "must be a mapping with id, title, scope and test")
        return None
    wid = raw.get("id")
    where = f"worker {wid}" if isinstance(wid, str) and wid else f"workers[{index}]"
    before = len(p.items)
    for key in sorted(set(raw) - set(WORKER_KEYS), key=str):
        p.add(f"{where} field {key}", f"unknown key (allowed: {', '.join(WORKER_KEYS)})")
    for key in WORKER_REQUIRED:
        if raw.get(key) in (None, "", []):
            p.add(f"{where} field {key}", "required field is missing")
    if isinstance(wid, str) and wid and not ID_RE.fullmatch(wid):
        p.add(f"{where} field id", "must match [A-Za-z][A-Za-z0-9_-]{0,31}")
    elif wid is not None and not isinstance(wid, str):
        p.add(f"{where} field id", "must be a string")
    for key in ("title", "test", "instructions", "branch"):
        if raw.get(key) is not None and not isinstance(raw.get(key), str):
            p.add(f"{where} field {key}", "must be a string")
    scope = _strings(raw.get("scope", ()))
    if scope is None:
        p.add(f"{where} field scope", "must be a regex or a list of regexes")
        scope = ()
    for rx in scope:
        try:
            re.compile(rx)
        except re.error as e:
            p.add(f"{where} field scope", f"invalid regex {rx!r}: {e}")
    deps = _strings(raw.get("depends_on") or [])
    if deps is None:
        p.add(f"{where} field depends_on", "must be a worker id or a list of worker ids")
        deps = ()
    write_test = raw.get("write_test", False)
    if not isinstance(write_test, bool):
        p.add(f"{where} field write_test", "must be true or false")
    overrides = {k: raw[k] for k in SETTING_DEFAULTS if k in raw}
    for key, value in overrides.items():
        _check_setting(p, f"{where}", key, value)
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
        depends_on=deps,
        instructions=str(raw.get("instructions") or ""),
        write_test=bool(write_test),
        overrides=overrides,
    )


def _find_cycle(workers: Iterable[Worker]) -> list[str] | None:
    graph = {w.id: list(w.depends_on) for w in workers}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in graph.get(node, []):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep in graph and dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def from_dict(raw: Any, source: str) -> Manifest:
    """Build and validate a manifest from parsed YAML; ManifestError lists every problem."""
    p = _Problems(source)
    if not isinstance(raw, dict):
        p.add("top level", "must be a mapping with version, plan, base and workers")
        p.raise_if_any()
    for key in sorted(set(raw) - set(TOP_KEYS), key=str):
        p.add(f"field {key}", f"unknown key (allowed: {', '.join(TOP_KEYS)})")
    for key in TOP_REQUIRED:
        if raw.get(key) in (None, "", []):
            p.add(f"field {key}", "required field is missing")
    if raw.get("version") not in (None, VERSION):
        p.add(
            "field version",
            f"unsupported version {raw.get('version')!r} (this tool reads version {VERSION})",
        )
    plan = raw.get("plan")
    if plan is not None and (not isinstance(plan, str) or not SLUG_RE.fullmatch(plan)):
        p.add("field plan", f"bad slug {plan!r}: must match [a-z0-9][a-z0-9-]{{0,62}}")
    for key in ("task", "base", "base_commit", "integration_test", "setup"):
        if raw.get(key) is not None and not isinstance(raw.get(key), str):
            p.add(f"field {key}", "must be a string")
    base = raw.get("base")
    if isinstance(base, str) and base:
        from boss.git import valid_branch_name

        if not valid_branch_name(base):
            p.add("field base", f"invalid branch name {base!r}")
    commit = raw.get("base_commit")
    if isinstance(commit, str) and commit and not re.fullmatch(r"[0-9a-f]{7,64}", commit):
        p.add("field base_commit", "must be a commit hash")
    copy = _strings(raw.get("copy") or [])
    if copy is None:
        p.add("field copy", "must be a list of paths")
        copy = ()
    for c in copy:
        if Path(c).is_absolute() or ".." in Path(c).parts:
            p.add("field copy", f"{c!r} must be a path inside the repository")
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, dict):
        p.add("field defaults", "must be a mapping")
        defaults = {}
    for key in sorted(set(defaults) - set(SETTING_DEFAULTS), key=str):
        p.add(f"defaults field {key}", f"unknown key (allowed: {', '.join(SETTING_DEFAULTS)})")
    for key in set(defaults) & set(SETTING_DEFAULTS):
        _check_setting(p, "defaults", key, defaults[key])
    raw_workers = raw.get("workers") or []
    if not isinstance(raw_workers, list):
        p.add("field workers", "must be a list")
        raw_workers = []
    workers = [w for i, r in enumerate(raw_workers) if (w := _parse_worker(p, r, i)) is not None]
    _check_graph(p, workers)
    p.raise_if_any()
    return Manifest(
        plan=str(plan),
        base=str(base),
        workers=tuple(workers),
        task=str(raw.get("task") or ""),
        base_commit=str(raw.get("base_commit") or ""),
        integration_test=str(raw.get("integration_test") or ""),
        setup=str(raw.get("setup") or ""),
        copy=copy,
        defaults={k: v for k, v in defaults.items() if k in SETTING_DEFAULTS},
    )


def _check_graph(p: _Problems, workers: list[Worker]) -> None:
    from boss.git import valid_branch_name

    seen: dict[str, str] = {}
    branches: dict[str, str] = {}
    for w in workers:
        if w.id in seen:
            p.add(f"worker {w.id} field id", "duplicate id (ids must be unique in the plan)")
        seen[w.id] = w.id
        if not valid_branch_name(w.branch):
            p.add(
                f"worker {w.id} field branch",
                f"invalid branch name {w.branch!r} (see git check-ref-format)",
            )
        elif w.branch in branches:
            p.add(
                f"worker {w.id} field branch",
                f"branch {w.branch!r} is also worker {branches[w.branch]}'s",
            )
        else:
            branches[w.branch] = w.id
        for d in w.depends_on:
            if d not in {x.id for x in workers}:
                p.add(f"worker {w.id} field depends_on", f"names no worker {d!r}")
            elif d == w.id:
                p.add(f"worker {w.id} field depends_on", "a worker cannot depend on itself")
    cycle = _find_cycle(workers)
    if cycle and len(cycle) > 2:
        p.add(f"worker {cycle[0]} field depends_on", f"dependency cycle: {' -> '.join(cycle)}")


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


def load(path: Path) -> Manifest:
    """Read and validate a manifest file."""
    return from_dict(yamlio.load_file(path), str(path))


def save(m: Manifest, path: Path) -> None:
    """Write a manifest atomically."""
    header = "# boss work manifest (version 1): the source of truth; edit it, then `boss render`.\n"
    yamlio.write_atomic(path, header + yamlio.dump(to_dict(m)))


def with_base(m: Manifest, base: str, base_commit: str) -> Manifest:
    """A copy of m with its base recorded."""
    return replace(m, base=base, base_commit=base_commit)


def scope_overlaps(m: Manifest, tracked: Iterable[str] = ()) -> list[tuple[str, str, str]]:
    """Pairs of workers that may run at once with overlapping scopes, with an example path.

    Two scopes overlap when a tracked path matches both, or when both are anchored (`^...`)
    and one's literal prefix starts with the other's.
    """
    paths = list(tracked)
    found: list[tuple[str, str, str]] = []
    ws = list(m.workers)
    for i, a in enumerate(ws):
        for b in ws[i + 1 :]:
            if not m.concurrent(a.id, b.id):
                continue
            example = next((f for f in paths if a.in_scope(f) and b.in_scope(f)), None)
            if example is None:
                example = _prefix_overlap(a.scope, b.scope)
            if example is not None:
                found.append((a.id, b.id, example))
    return found


def _literal_prefix(rx: str) -> str | None:
    if not rx.startswith("^"):
        return None
    m = re.match(r"(?:[^\\.^$*+?{}\[\]|()]|\\[./\-_])*", rx[1:])
    return (m.group(0) if m else "").replace("\\", "")


def _prefix_overlap(a: tuple[str, ...], b: tuple[str, ...]) -> str | None:
    for ra in a:
        for rb in b:
            pa, pb = _literal_prefix(ra), _literal_prefix(rb)
            if pa is None or pb is None:
                continue
            if pa.startswith(pb) or pb.startswith(pa):
                return (pa if len(pa) >= len(pb) else pb) or "(every path)"
    return None
