"""The rules of the manifest (SPEC section 3) as checks on parsed YAML: every problem is one
line naming the file, the worker and the field. `boss.core.manifest.from_dict` applies them."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from typing import Any

from boss.core.errors import ManifestError
from boss.core.git import branch_name_problem

VERSION = 1
SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
ID_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
AGENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
COMMIT_RE = re.compile(r"[0-9a-f]{7,64}")
GROUP_RE = ID_RE  # a group's name reads like a worker id
TOP_REQUIRED = ("version", "plan", "base", "workers")
TOP_KEYS = (
    "version", "plan", "task", "base", "base_commit", "integration_test", "setup", "copy",
    "defaults", "workers",
)  # fmt: skip
WORKER_REQUIRED = ("id", "title", "scope", "test")
WORKER_KEYS = (
    "id", "title", "branch", "scope", "depends_on", "test", "instructions", "write_test", "group",
    "agent", "max_iterations", "max_strategies", "agent_timeout", "test_timeout", "stall_timeout",
    "test_network", "rate_limit_timeout", "max_cost_usd", "max_tokens", "max_minutes",
)  # fmt: skip
# Settings a worker may override; their defaults live in `defaults`.
SETTING_DEFAULTS: dict[str, Any] = {
    "agent": "claude",
    "max_iterations": 5,
    "max_strategies": 2,
    "agent_timeout": 1800,
    "test_timeout": 600,
    "stall_timeout": 600,
    "test_network": False,  # the acceptance test's sandbox keeps the host's network (boss.core.sandbox)
    # How long a provider's rate limit or overload may last (from the first limited agent run of
    # a streak) before the worker gives up (worker.lifecycle.backoff).
    "rate_limit_timeout": 900,
    # Budgets (boss.core.spend): what a worker may spend across all its agent runs, and the plan
    # as a whole (a plan setting: in defaults only); 0: no cap.
    "max_cost_usd": 0.0,
    "max_tokens": 0,
    "max_minutes": 0.0,
    "budget_usd": 0.0,
}
PLAN_ONLY_SETTINGS = ("budget_usd",)  # in defaults, never a worker's own
NUMBER_SETTINGS = ("max_cost_usd", "max_minutes", "budget_usd")  # numbers >= 0, fractions too
COUNT_SETTINGS = ("max_iterations", "max_strategies")  # 1..100; the other numbers are seconds
BOOL_SETTINGS = ("test_network",)
MAX_SECONDS = 366 * 24 * 3600  # a timeout longer than a year is a typo (and overflows a clock)
# Fields whose own rule (a pattern, git's branch rules) already refuses every control character.
_STRICT_FIELDS = frozenset({"id", "plan", "base", "base_commit", "branch", "agent", "group"})
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_ONE_LINE = re.compile(r"[\x00-\x1f\x7f]")


def show(value: object) -> str:
    """A key or value as it reads on one line of an error message."""
    text = str(value)
    return text if re.fullmatch(r"[\w.-]{1,64}", text) else repr(text)[:80]


class Problems:
    """Collects validation problems, each a one-line message naming file, worker and field."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[str] = []

    def add(self, where: str, problem: str) -> None:
        self.items.append(f"{self.source}: {where}: {problem}")

    def raise_if_any(self) -> None:
        if self.items:
            raise ManifestError("\n".join(self.items), self.items)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def missing(value: Any) -> bool:
    return value is None or value == [] or (isinstance(value, str) and not value.strip())


def check_setting(p: Problems, where: str, key: str, value: Any) -> None:
    if key == "agent":
        if not isinstance(value, str) or not AGENT_RE.fullmatch(value):
            p.add(f"{where} field agent", "must be an agent profile name (letters, digits, ._-)")
    elif key in BOOL_SETTINGS:
        if not isinstance(value, bool):
            p.add(f"{where} field {key}", "must be true or false")
    elif key in COUNT_SETTINGS:
        if not is_int(value) or not 1 <= value <= 100:
            p.add(f"{where} field {key}", "must be a whole number from 1 to 100")
    elif key in NUMBER_SETTINGS:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e9:
            unit = "minutes" if key == "max_minutes" else "US dollars"
            p.add(f"{where} field {key}", f"must be a number of {unit} >= 0 (0: no cap)")
    elif key == "max_tokens":
        if not is_int(value) or not 0 <= value < 10**15:
            p.add(f"{where} field {key}", "must be a whole number of tokens >= 0 (0: no cap)")
    elif not is_int(value) or value < 0:
        p.add(f"{where} field {key}", "must be a whole number of seconds >= 0 (0: no limit)")
    elif value > MAX_SECONDS:
        p.add(f"{where} field {key}", f"must be at most {MAX_SECONDS} seconds (a year; 0: no limit)")


def control_problem(text: str, multiline: bool = False) -> str | None:
    """Why text holds a character it cannot (a NUL byte, a control character), or None."""
    found = (_CONTROL if multiline else _CONTROL_ONE_LINE).search(text)
    if found is None:
        return None
    what = "a NUL byte" if found.group() == "\0" else f"the control character {found.group()!r}"
    return f"contains {what} (at character {found.start() + 1})"


def _texts(value: Any) -> Iterable[str]:
    """Every string in value (keys too), iteratively: parsed YAML may nest deep."""
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            todo.extend(item.keys())
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)


def check_text(p: Problems, raw: dict[Any, Any]) -> None:
    """No NUL byte and no control character but tab and line breaks in any value (a scope
    regex, a test command), none at all in a key: the worker would crash on a NUL (no argv or
    environment can hold one), and a terminal escape shows a person what is not there."""

    def check(where: str, key: Any, value: Any) -> None:
        if key in _STRICT_FIELDS and isinstance(value, str):
            return
        for text in _texts([key, value]):
            problem = control_problem(text, multiline=text is not key)
            if problem:
                p.add(where, problem)
                return

    for key, value in raw.items():
        if key != "workers" or not isinstance(value, list):
            check(f"field {show(key)}", key, value)
            continue
        for i, w in enumerate(value):
            if not isinstance(w, dict):
                continue
            wid = w.get("id")
            named = isinstance(wid, str) and wid and control_problem(wid) is None
            where = f"worker {show(wid)}" if named else f"workers[{i}]"
            for k, v in w.items():
                check(f"{where} field {show(k)}", k, v)


def strings(value: Any) -> tuple[str, ...] | None:
    """One string or a list of strings as a tuple; None when it is neither."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def check_keys(p: Problems, where: str, raw: dict[Any, Any], allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    for key in sorted(set(raw) - set(allowed), key=str):
        prefix = f"{where} field" if where else "field"
        p.add(f"{prefix} {show(key)}", f"unknown key (allowed: {', '.join(allowed)})")


def check_scope(p: Problems, where: str, value: Any) -> tuple[str, ...]:
    scope = strings(value if value is not None else ())
    if scope is None:
        p.add(f"{where} field scope", "must be a regex or a list of regexes")
        return ()
    for rx in scope:
        if not rx:
            p.add(f"{where} field scope", "empty regex (write '^' to allow every path)")
            continue
        try:
            with warnings.catch_warnings():  # "possible nested set": Python's, not a problem of ours
                warnings.simplefilter("ignore", FutureWarning)
                re.compile(rx)
        except re.error as e:
            p.add(f"{where} field scope", f"invalid regex {show(rx)}: {e}")
        except (RecursionError, OverflowError, MemoryError):
            p.add(f"{where} field scope", f"regex {show(rx)} is too complex")
    return scope


def find_cycles(graph: dict[str, tuple[str, ...]]) -> list[list[str]]:
    """Dependency cycles, each as [a, b, ..., a]; iterative, so long chains cannot overflow."""
    deps = {node: [d for d in ds if d != node] for node, ds in graph.items()}
    color: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    for root in deps:
        if root in color:
            continue
        color[root] = 1
        path, stack = [root], [iter(deps[root])]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                color[path.pop()] = 2
                stack.pop()
            elif nxt in deps and color.get(nxt) == 1:
                cycle = path[path.index(nxt) :]
                if frozenset(cycle) not in seen:
                    seen.add(frozenset(cycle))
                    cycles.append([*cycle, nxt])
            elif nxt in deps and nxt not in color:
                color[nxt] = 1
                path.append(nxt)
                stack.append(iter(deps[nxt]))
    return cycles


def check_references(p: Problems, raw_workers: list[Any]) -> None:
    """Unique ids, dependencies that name workers, no cycles: over every entry with an id."""
    entries: list[tuple[str, tuple[str, ...]]] = []
    for r in raw_workers:
        if isinstance(r, dict) and isinstance(r.get("id"), str) and r["id"]:
            deps = r.get("depends_on")
            deps = strings(deps if deps not in (None, "") else []) or ()
            entries.append((r["id"], tuple(dict.fromkeys(deps))))
    ids: set[str] = set()
    for wid, _ in entries:
        if wid in ids:
            p.add(f"worker {show(wid)} field id", "duplicate id (ids must be unique in the plan)")
        ids.add(wid)
    for wid, deps in entries:
        for d in deps:
            if d == wid:
                p.add(f"worker {show(wid)} field depends_on", "a worker cannot depend on itself")
            elif d not in ids:
                known = ", ".join(show(i) for i in sorted(ids, key=str))
                p.add(f"worker {show(wid)} field depends_on", f"names no worker {show(d)} (workers: {known})")
    for cycle in find_cycles(dict(entries)):
        p.add(
            f"worker {cycle[0]} field depends_on",
            f"dependency cycle {' -> '.join(cycle)} (each depends on the next)",
        )


def check_groups(p: Problems, raw_workers: list[Any]) -> None:
    """Group names, and groups the ceremony can merge one member after another: no worker
    outside a group may stand between two of its members (a member depends on it and it
    depends on another member), and no two groups may each wait for the other."""
    node: dict[str, str] = {}  # worker id -> its group's node, or its own
    entries: list[tuple[str, tuple[str, ...]]] = []
    for r in raw_workers:
        if not isinstance(r, dict) or not isinstance(r.get("id"), str) or not r["id"]:
            continue
        wid, group = r["id"], r.get("group")
        if not isinstance(group, str):  # another type: _parse_worker says it must be a string
            group = None
        elif group and not GROUP_RE.fullmatch(group):
            p.add(f"worker {show(wid)} field group", "must be a name matching [A-Za-z][A-Za-z0-9_-]{0,31}")
            group = None
        node[wid] = f"group {group}" if group else wid
        deps = r.get("depends_on")
        entries.append((wid, strings(deps if deps not in (None, "") else []) or ()))
    if not any(n.startswith("group ") for n in node.values()) or find_cycles(dict(entries)):
        return  # no group, or a plain cycle (reported as such)
    graph: dict[str, tuple[str, ...]] = {}
    for wid, deps in entries:
        outside = tuple(node[d] for d in deps if d in node and node[d] != node[wid])
        graph[node[wid]] = (*graph.get(node[wid], ()), *outside)
    for cycle in find_cycles(graph):
        group = next(n for n in cycle if n.startswith("group "))
        member = next(w for w, n in node.items() if n == group)
        p.add(
            f"worker {show(member)} field group",
            f"{group} cannot be merged one member after another: {' -> '.join(cycle)} (each "
            "depends on the next); put the workers between them in the group, or drop a dependency",
        )


def check_branches(p: Problems, branches: Iterable[tuple[str, str]], base: Any) -> None:
    """Each (worker id, branch): a valid name, not the base, not another worker's."""
    owners: dict[str, str] = {}
    for wid, branch in branches:
        problem = branch_name_problem(branch)
        if problem:
            p.add(
                f"worker {wid} field branch",
                f"invalid branch name {branch!r}: {problem} (see git check-ref-format)",
            )
        elif branch == base:
            p.add(f"worker {wid} field branch", f"{branch!r} is the plan's base branch")
        elif branch in owners:
            p.add(f"worker {wid} field branch", f"branch {branch!r} is also worker {owners[branch]}'s")
        else:
            owners[branch] = wid


def check_top(p: Problems, raw: dict[Any, Any]) -> None:
    check_keys(p, "", raw, TOP_KEYS)
    for key in TOP_REQUIRED:
        if missing(raw.get(key)):
            p.add(f"field {key}", "required field is missing")
    if raw.get("version") not in (None, VERSION):
        p.add(
            "field version",
            f"unsupported version {show(raw.get('version'))} (this tool reads version {VERSION})",
        )
    plan = raw.get("plan")
    if plan is not None and (not isinstance(plan, str) or not SLUG_RE.fullmatch(plan)):
        p.add("field plan", f"bad slug {show(plan)}: must match [a-z0-9][a-z0-9-]{{0,62}}")
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
