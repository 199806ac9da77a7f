"""Tiered autonomy, rendered per worker into each agent CLI's own configuration.

`render_enforcement(agent, run, policy, render)` writes into `run.config_dir` (outside the
worktree: the agent can neither edit nor commit it) the shared inputs, then calls the CLI's own
renderer (`worker.agents.clis.<agent>.render`), which writes the files that make the CLI call the guard
(`worker.autonomy.guard`) before every shell command and file edit, plus static deny rules for the
TIER 3 commands as a backstop. It returns what the agent profile must pass:
`{"settings": ..., "policy": ..., "args": [...], "env": {...}, "files": [...]}`.

A worker overlay policy (`policy.yaml` in the same folder) declares the worker's own test
command TIER 1. Static denies leave out the rules an approved, not yet used request needs,
so that the approved command can run once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from boss.core import approvals, yamlio
from boss.core.paths import PlanPaths
from worker.agents.profile import AgentRun
from worker.autonomy import guard
from worker.autonomy import shellparse as sp
from worker.autonomy.classify import classify
from worker.autonomy.policy import Policy, Rule
from worker.autonomy.shellparse import Record

OVERLAY = "policy.yaml"
HOOK_TIMEOUT = 120  # seconds; a hook that times out does not block, so be generous


def render_enforcement(
    agent: str, run: AgentRun, policy: Policy, render: Callable[[Inputs], dict[str, Any]]
) -> dict[str, Any]:
    """Write the agent's enforcement files into run.config_dir; what its profile must pass.

    `render` is the CLI's own renderer (in `worker.agents.clis.<agent>`); it gets the shared inputs.
    """
    folder = run.config_dir
    folder.mkdir(parents=True, exist_ok=True)
    overlay = write_overlay(run, folder / OVERLAY)
    hook = guard.hook_command(agent, run.plan, run.worker_id, policy=overlay)
    inputs = Inputs(folder, hook, static_denies(policy, released_rules(run, policy)), policy,
                    run.test_command.strip(), run)  # fmt: skip
    result: dict[str, Any] = {"args": [], "env": {}, "files": []}
    result.update(render(inputs))
    result["files"] = [str(overlay), *result["files"]]
    return result


def write_overlay(run: AgentRun, path: Path) -> Path:
    """The worker's overlay policy: its own test command is TIER 1 (an empty file if none)."""
    rules = []
    for i, words in enumerate(_simple_commands(run.test_command), start=1):
        rules.append({"id": f"worker-test-{i}", "tier": 1, "reason": "the worker's own acceptance test",
                      "match": {"prefix": [Path(words[0]).name, *words[1:]]}})  # fmt: skip
    text = yamlio.dump({"version": 1, "rules": rules})
    if not path.is_file() or path.read_text(encoding="utf-8") != text:  # unchanged: the guard's cache holds
        yamlio.write_atomic(path, text)
    return path


def _simple_commands(command: str) -> list[list[str]]:
    """The static words of each simple command in a command line ([] if it cannot be parsed)."""
    try:
        tree = sp.parse(command)
    except sp.ShellSyntaxError:
        return []
    found: list[list[str]] = []

    def walk(group: sp.Group) -> None:
        for item in group.items:
            if isinstance(item, sp.Group):
                walk(item)
            elif isinstance(item, sp.Command) and item.words and not any(w.dynamic for w in item.words):
                found.append([w.text for w in item.words])

    walk(tree)
    return found


def released_rules(run: AgentRun, policy: Policy) -> set[str]:
    """Rules an approved, unused request of this worker needs lifted for its one run."""
    folder = PlanPaths.of(run.repo, run.plan).approvals_dir
    ids: set[str] = set()
    for req in approvals.list_requests(folder, approvals.APPROVED):
        if req.worker == run.worker_id:
            decision = classify(req.command, Path(req.cwd or run.worktree), run.worktree, policy)
            ids.update(r for p in decision.parts if p.tier == 3 for r in p.matched)
    return ids


def static_denies(policy: Policy, released: Collection[str] = ()) -> list[tuple[Rule, list[str]]]:
    """TIER 3 rules simple enough for a CLI's prefix rules: (rule, command prefixes)."""
    own = {
        n for r in policy.rules if r.project and not r.disabled for n in r.match.command or r.match.prefix[:1]
    }
    out = []
    for rule in policy.rules:
        m = rule.match
        if rule.tier != 3 or rule.disabled or rule.fallback or rule.project or rule.id in released:
            continue
        extra = (m.prefix, m.flags_any, m.flags_none, m.operands_any, m.words_any, m.words_only,
                 m.code_any, m.env_any, m.git_config_any, m.stdin, m.effect, m.unless,
                 m.max_operands, m.min_operands, m.venv)  # fmt: skip
        if not m.command or any(x not in ((), None) for x in extra) or len(m.args) > 1:
            continue
        names = [c for c in m.command if not sp_glob(c) and c not in own]
        subs = list(m.args[0]) if m.args else [""]
        if any(sp_glob(s) for s in subs):
            continue
        prefixes = [f"{n} {s}".strip() for n in names for s in subs]
        if prefixes:
            out.append((rule, prefixes))
    return out


def sp_glob(text: str) -> bool:
    """True when a pattern is a glob, not a plain name."""
    return any(c in text for c in "*?[")


class Inputs(Record):
    """What every renderer needs: the folder, the hook command, static denies, the policy, the
    test, and the run itself."""

    __slots__ = ("denies", "folder", "hook", "policy", "run", "test")

    def __init__(
        self,
        folder: Path,
        hook: str,
        denies: list[tuple[Rule, list[str]]],
        policy: Policy,
        test: str,
        run: AgentRun,
    ) -> None:
        self.folder, self.hook, self.denies, self.policy = folder, hook, denies, policy
        self.test, self.run = test, run


def write_json(path: Path, data: object) -> Path:
    """Write data as indented JSON, atomically."""
    yamlio.write_atomic(path, json.dumps(data, indent=2) + "\n")
    return path
