"""The tier policy: a vendor-neutral YAML document of rules, and how a rule judges one command.

The default policy ships as `worker/default_policy.yaml`; a project's `.boss/policy.yaml`
(and a worker's rendered overlay) extend it. Format, version 1:

    version: 1
    defaults: {unknown_command: 3}          # tier of a command no rule knows
    paths: {harmless: [...], secrets: [...], not_secret: [...], writable: [...]}
    targets: {rm: {operands: delete}, ...}  # which arguments a command writes or deletes
    rules:
      - id: net-egress
        tier: 3
        reason: network egress
        match: {command: [curl, wget]}       # every key given must hold
        examples: {match: ["curl https://x"], not_match: ["ls"]}

A rule with `command` or `prefix` identifies commands; the others (`effect`, `env_any`, ...)
judge aspects of any command. A command's tier is the highest of: its identity (the first
matching project rule; else the highest matching default rule, where `fallback: true` rules
count only when no other does; else `defaults.unknown_command`) and every matching aspect
rule. A project rule with the id of a default rule overrides the fields it gives (`disabled:
true` removes it); new ids are the project's own rules. `paths` lists are extended, `targets`
merged per command.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cached_property
from pathlib import Path
from typing import Any

from boss import yamlio
from boss.errors import ConfigError

DEFAULT_POLICY = Path(__file__).with_name("default_policy.yaml")
PROJECT_POLICY = Path(".boss") / "policy.yaml"
EFFECTS = frozenset(
    {
        "create-inside", "write-inside", "delete-inside", "write-outside", "git-internals",
        "secret-path", "unresolved-target", "exec-stdin", "dynamic-command", "worktree-script",
        "outside-script", "unchecked-script", "network-device", "fork-bomb", "git-elsewhere",
        "heredoc-substitution",
    }
)  # fmt: skip
TARGET_KINDS = ("write", "create", "delete")
_TARGET_KEYS = ("operands", "last", "after_first", "all_but_last")
_LIST_KEYS = ("command", "prefix", "flags_any", "flags_none", "operands_any", "words_only",
              "env_any", "git_config_any", "stdin", "effect")  # fmt: skip
_MATCH_KEYS = {*_LIST_KEYS, "args", "max_operands", "min_operands", "code_any", "venv", "unless"}
_RULE_KEYS = {"id", "tier", "reason", "match", "examples", "fallback", "disabled"}
_TOP_KEYS = {"version", "tiers", "defaults", "paths", "targets", "rules"}
_PATH_KEYS = ("harmless", "secrets", "not_secret", "writable")
_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


@dataclass
class Part:
    """One command as rules see it, after unwrapping; argv[0] is the command's base name."""

    argv: tuple[str, ...]
    text: str
    stdin: str = ""  # "", "pipe", "heredoc" or "herestring"
    code: str | None = None  # inline program of python -c, node -e, awk ...
    env_names: tuple[str, ...] = ()
    git_config: tuple[str, ...] = ()
    venv: bool = False
    effects: dict[str, str] = field(default_factory=dict)  # effect -> what caused it

    @cached_property
    def _split(self) -> tuple[frozenset[str], tuple[str, ...]]:
        flags: set[str] = set()
        operands: list[str] = []
        rest = False
        for word in self.argv[1:]:
            if rest or word == "-" or not word.startswith("-"):
                operands.append(word)
            elif word == "--":
                rest = True
            elif word.startswith("--"):
                flags.add(word.split("=", 1)[0])
            else:
                flags.add(word)
                flags.update(f"-{ch}" for ch in word[1:] if ch.isalnum())
        return frozenset(flags), tuple(operands)

    @property
    def flags(self) -> frozenset[str]:
        """Options given: words starting with -, short clusters split (-rf gives -r and -f)."""
        return self._split[0]

    @property
    def operands(self) -> tuple[str, ...]:
        """The other words after the command name."""
        return self._split[1]


def _any(patterns: Sequence[str], values: Sequence[str]) -> bool:
    return any(fnmatchcase(v, p) for p in patterns for v in values)


@dataclass(frozen=True)
class Match:
    """Conditions on a Part; every condition given must hold, a list matches on any item."""

    command: tuple[str, ...] = ()
    prefix: tuple[str, ...] = ()
    args: tuple[tuple[str, ...], ...] = ()
    flags_any: tuple[str, ...] = ()
    flags_none: tuple[str, ...] = ()
    operands_any: tuple[str, ...] = ()
    words_only: tuple[str, ...] = ()
    max_operands: int | None = None
    min_operands: int | None = None
    code_any: tuple[re.Pattern[str], ...] = ()
    env_any: tuple[str, ...] = ()
    git_config_any: tuple[str, ...] = ()
    stdin: tuple[str, ...] = ()
    effect: tuple[str, ...] = ()
    venv: bool | None = None
    unless: Match | None = None

    @property
    def identifies(self) -> bool:
        """True when the match names commands (an identity rule, not an aspect rule)."""
        return bool(self.command or self.prefix)

    def matches(self, p: Part) -> bool:  # noqa: C901, PLR0911 - one check per condition
        """True when part satisfies every condition (and not the `unless` ones)."""
        argv = p.argv
        if self.command and not (argv and _any(self.command, argv[:1])):
            return False
        if self.prefix and tuple(argv[: len(self.prefix)]) != self.prefix:
            return False
        if self.args:
            ops = p.operands
            if len(ops) < len(self.args):
                return False
            if not all(_any(alts, (ops[i],)) for i, alts in enumerate(self.args)):
                return False
        if self.flags_any and not p.flags.intersection(self.flags_any):
            return False
        if self.flags_none and p.flags.intersection(self.flags_none):
            return False
        if self.operands_any and not _any(self.operands_any, p.operands):
            return False
        if self.words_only and not (len(argv) > 1 and set(argv[1:]) <= set(self.words_only)):
            return False
        if self.max_operands is not None and len(p.operands) > self.max_operands:
            return False
        if self.min_operands is not None and len(p.operands) < self.min_operands:
            return False
        if self.code_any and not (p.code and any(rx.search(p.code) for rx in self.code_any)):
            return False
        if self.env_any and not _any(self.env_any, p.env_names):
            return False
        if self.git_config_any and not _any(self.git_config_any, p.git_config):
            return False
        if self.stdin and p.stdin not in self.stdin:
            return False
        if self.effect and not any(e in p.effects for e in self.effect):
            return False
        if self.venv is not None and p.venv != self.venv:
            return False
        return not (self.unless is not None and self.unless.matches(p))


@dataclass(frozen=True)
class Rule:
    """One policy rule; `project` when it comes from a project's own file (first match wins)."""

    id: str
    tier: int
    reason: str
    match: Match
    examples: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())  # (match, not_match)
    fallback: bool = False
    disabled: bool = False
    project: bool = False
    source: str = ""
    touched: bool = False  # defined or overridden outside the default policy


@dataclass(frozen=True)
class Targets:
    """Which arguments of a command are paths it writes, creates or deletes."""

    operands: str = ""
    last: str = ""
    after_first: str = ""
    all_but_last: str = ""
    options: tuple[tuple[str, str], ...] = ()  # ("-o", "write"), ("of=", "write")
    when_flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    """A part judged: its tier, the deciding rule and reason, and every rule that matched."""

    tier: int
    rule: str
    reason: str
    matched: tuple[str, ...]


@dataclass(frozen=True)
class Policy:
    """The merged policy: rules in evaluation order, path lists, target table, defaults."""

    rules: tuple[Rule, ...]
    unknown_tier: int = 3
    tiers: Mapping[int, str] = field(default_factory=dict)
    harmless: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    not_secret: tuple[str, ...] = ()
    writable: tuple[str, ...] = ()
    targets: Mapping[str, Targets] = field(default_factory=dict)
    sources: tuple[str, ...] = ()

    def rule(self, rule_id: str) -> Rule | None:
        """The rule with this id, or None."""
        return next((r for r in self.rules if r.id == rule_id), None)

    def judge(self, part: Part) -> Verdict:
        """The part's tier: its identity (project rules first) and every matching aspect."""
        matched = [r for r in self.rules if not r.disabled and r.match.matches(part)]
        ids = tuple(r.id for r in matched)
        identity = [r for r in matched if r.match.identifies]
        own = [r for r in identity if r.project]
        chosen = own[:1] or [r for r in identity if not r.fallback] or identity
        candidates = [(r.tier, r.id, r.reason) for r in chosen]
        if part.argv and not chosen:
            why = f"{part.argv[0]} is not in the policy (add a rule to .boss/policy.yaml)"
            candidates.append((self.unknown_tier, "unknown-command", why))
        candidates += [(r.tier, r.id, r.reason) for r in matched if not r.match.identifies]
        if not candidates:
            return Verdict(1, "nothing-to-run", "only assignments or redirections", ids)
        best = max(candidates, key=lambda c: c[0])  # first of the highest: identity on ties
        return Verdict(best[0], best[1], best[2], ids)


# --- loading ----------------------------------------------------------------------------------


class _Loader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {where}: {problem}")

    def strings(self, where: str, value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
            raise self.fail(where, "must be a string or a list of strings")
        return tuple(str(v) for v in value)

    def match(self, where: str, raw: Any) -> Match:
        if not isinstance(raw, dict) or not raw:
            raise self.fail(where, "must be a mapping of conditions")
        unknown = sorted(set(raw) - _MATCH_KEYS)
        if unknown:
            raise self.fail(f"{where}.{unknown[0]}", f"unknown condition (known: {_known()})")
        kw: dict[str, Any] = {k: self.strings(f"{where}.{k}", raw[k]) for k in _LIST_KEYS if k in raw}
        bad = sorted(set(kw.get("effect", ())) - EFFECTS)
        if bad:
            raise self.fail(f"{where}.effect", f"unknown effect {bad[0]!r}")
        if "args" in raw:
            if not isinstance(raw["args"], list):
                raise self.fail(f"{where}.args", "must be a list (one entry per position)")
            kw["args"] = tuple(self.strings(f"{where}.args", a) for a in raw["args"])
        for key in ("max_operands", "min_operands"):
            if key in raw:
                if isinstance(raw[key], bool) or not isinstance(raw[key], int) or raw[key] < 0:
                    raise self.fail(f"{where}.{key}", "must be a whole number >= 0")
                kw[key] = raw[key]
        if "code_any" in raw:
            try:
                kw["code_any"] = tuple(re.compile(p) for p in self.strings(where, raw["code_any"]))
            except re.error as e:
                raise self.fail(f"{where}.code_any", f"invalid regex: {e}") from e
        if "venv" in raw:
            if not isinstance(raw["venv"], bool):
                raise self.fail(f"{where}.venv", "must be true or false")
            kw["venv"] = raw["venv"]
        if "unless" in raw:
            kw["unless"] = self.match(f"{where}.unless", raw["unless"])
        return Match(**kw)

    def rule(self, raw: Any, index: int, base: Rule | None, project: bool) -> Rule:
        rid = raw.get("id") if isinstance(raw, dict) else None
        where = f"rule {rid}" if isinstance(rid, str) else f"rules[{index}]"
        if not isinstance(raw, dict):
            raise self.fail(where, "must be a mapping")
        unknown = sorted(set(raw) - _RULE_KEYS)
        if unknown:
            raise self.fail(f"{where}: field {unknown[0]}", f"unknown key (known: {_RULE_KEYS})")
        if not isinstance(rid, str) or not _ID.fullmatch(rid):
            raise self.fail(f"{where}: field id", "must be a slug like net-egress")
        tier = raw.get("tier", base.tier if base else None)
        if tier not in (1, 2, 3):
            raise self.fail(f"{where}: field tier", "must be 1, 2 or 3")
        reason = raw.get("reason", base.reason if base else None)
        if not isinstance(reason, str) or not reason.strip():
            raise self.fail(f"{where}: field reason", "must be a sentence saying why")
        if "match" in raw:
            match = self.match(f"{where}: field match", raw["match"])
        elif base is not None:
            match = base.match
        else:
            raise self.fail(f"{where}: field match", "is required")
        examples = base.examples if base and "examples" not in raw else self.examples(where, raw)
        flags = {}
        for key in ("fallback", "disabled"):
            value = raw.get(key, getattr(base, key) if base else False)
            if not isinstance(value, bool):
                raise self.fail(f"{where}: field {key}", "must be true or false")
            flags[key] = value
        return Rule(
            rid, tier, reason.strip(), match, examples, flags["fallback"], flags["disabled"],
            project=base.project if base else project, source=str(self.path),
            touched=project or (base is not None and base.touched),
        )  # fmt: skip

    def examples(self, where: str, raw: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        ex = raw.get("examples") or {}
        if not isinstance(ex, dict) or set(ex) - {"match", "not_match"}:
            raise self.fail(f"{where}: field examples", "must be {match: [...], not_match: [...]}")
        return (
            self.strings(f"{where}: field examples.match", ex.get("match") or []),
            self.strings(f"{where}: field examples.not_match", ex.get("not_match") or []),
        )

    def targets(self, raw: Any) -> dict[str, Targets]:
        if not isinstance(raw, dict):
            raise self.fail("field targets", "must map command names to target specs")
        out = {}
        for name, spec in raw.items():
            where = f"field targets.{name}"
            if not isinstance(spec, dict):
                raise self.fail(where, "must be a mapping")
            unknown = sorted(set(spec) - {*_TARGET_KEYS, "options", "when_flags"})
            if unknown:
                raise self.fail(f"{where}.{unknown[0]}", "unknown key")
            kinds = {k: spec.get(k, "") for k in _TARGET_KEYS}
            options = spec.get("options") or {}
            if not isinstance(options, dict):
                raise self.fail(f"{where}.options", "must map options to write|create|delete")
            for key, kind in [*kinds.items(), *options.items()]:
                if kind and kind not in TARGET_KINDS:
                    raise self.fail(f"{where}.{key}", f"must be one of {', '.join(TARGET_KINDS)}")
            when = self.strings(f"{where}.when_flags", spec.get("when_flags") or [])
            out[str(name)] = Targets(**kinds, options=tuple(options.items()), when_flags=when)
        return out


def _known() -> str:
    return ", ".join(sorted(_MATCH_KEYS))


def _read(path: Path) -> dict[str, Any]:
    raw = yamlio.load_file(path) or {}
    if not isinstance(raw, dict):
        msg = f"{path}: top level: must be a mapping"
        raise ConfigError(msg)
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        msg = f"{path}: field {unknown[0]}: unknown key (known: {', '.join(sorted(_TOP_KEYS))})"
        raise ConfigError(msg)
    if raw.get("version", 1) != 1:
        msg = f"{path}: field version: must be 1"
        raise ConfigError(msg)
    return raw


def _merge(policy: Policy | None, path: Path, project: bool) -> Policy:
    raw = _read(path)
    load = _Loader(path)
    rules = list(policy.rules) if policy else []
    index = {r.id: i for i, r in enumerate(rules)}
    raw_rules = raw.get("rules") or []
    if not isinstance(raw_rules, list):
        raise load.fail("field rules", "must be a list of rules")
    seen: set[str] = set()
    for i, item in enumerate(raw_rules):
        rid = item.get("id") if isinstance(item, dict) else None
        if isinstance(rid, str) and rid in seen:
            raise load.fail(f"rule {rid}: field id", "is used twice in this file")
        seen.add(str(rid))
        base = rules[index[rid]] if isinstance(rid, str) and rid in index else None
        rule = load.rule(item, i, base, project)
        if base is not None:
            rules[index[rid]] = rule
        else:
            index[rule.id] = len(rules)
            rules.append(rule)
    defaults = raw.get("defaults") or {}
    unknown_tier = defaults.get("unknown_command", policy.unknown_tier if policy else 3)
    if unknown_tier not in (1, 2, 3):
        raise load.fail("field defaults.unknown_command", "must be 1, 2 or 3")
    paths = raw.get("paths") or {}
    if not isinstance(paths, dict) or set(paths) - set(_PATH_KEYS):
        raise load.fail("field paths", f"must be a mapping with keys {', '.join(_PATH_KEYS)}")
    lists = {
        k: (getattr(policy, k) if policy else ()) + load.strings(f"field paths.{k}", paths.get(k, []))
        for k in _PATH_KEYS
    }
    targets = {**(policy.targets if policy else {}), **load.targets(raw.get("targets") or {})}
    tiers = {**(policy.tiers if policy else {}), **(raw.get("tiers") or {})}
    return Policy(
        rules=tuple(sorted(rules, key=lambda r: not r.project)),  # project rules first
        unknown_tier=unknown_tier, tiers=tiers, targets=targets,
        sources=(*(policy.sources if policy else ()), str(path)), **lists,
    )  # fmt: skip


def load_policy(
    repo: Path | None = None, extra: Sequence[Path] = (), *, check_examples: bool = True
) -> Policy:
    """The default policy, extended by `<repo>/.boss/policy.yaml` and the extra files given.

    The examples of every rule a project file defines or overrides are checked (they are
    tests); the default policy's own examples are checked by the test suite.
    """
    policy = _merge(None, DEFAULT_POLICY, project=False)
    files = [repo / PROJECT_POLICY] if repo is not None else []
    for path in [*files, *extra]:
        if path.is_file():
            policy = _merge(policy, path, project=True)
    if check_examples and len(policy.sources) > 1:
        from worker.classify import example_problems

        problems = example_problems(policy, [r for r in policy.rules if r.touched])
        if problems:
            raise ConfigError("; ".join(problems[:5]))
    return policy
