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

import json
import os
import re
import zlib
from dataclasses import dataclass, field
from fnmatch import translate
from functools import cached_property
from pathlib import Path

from boss.errors import ConfigError, InputError
from worker.shellparse import Record, cache_dir

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the guard 3 ms
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

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
_LIST_KEYS = ("command", "prefix", "flags_any", "flags_none", "operands_any", "words_any", "words_only",
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


_GLOB = frozenset("*?[")
_COMPILED: dict[tuple[str, ...], tuple[frozenset[str], re.Pattern[str] | None]] = {}


def _compile(patterns: tuple[str, ...]) -> tuple[frozenset[str], re.Pattern[str] | None]:
    """Exact names as a set, glob patterns as one regex (fnmatch per pattern is slow to start)."""
    got = _COMPILED.get(patterns)
    if got is None:
        exact = frozenset(p for p in patterns if not _GLOB.intersection(p))
        globs = [translate(p) for p in patterns if _GLOB.intersection(p)]
        got = _COMPILED[patterns] = (exact, re.compile("|".join(globs)) if globs else None)
    return got


_REGEXES: dict[tuple[str, ...], re.Pattern[str]] = {}


def _code_regex(patterns: tuple[str, ...]) -> re.Pattern[str]:
    got = _REGEXES.get(patterns)
    if got is None:
        got = _REGEXES[patterns] = re.compile("|".join(f"(?:{p})" for p in patterns))
    return got


def any_match(patterns: tuple[str, ...], values: Sequence[str]) -> bool:
    """True when any value matches any pattern (fnmatch syntax, case-sensitive)."""
    exact, rx = _compile(patterns)
    return any(v in exact or (rx is not None and rx.match(v)) for v in values)


@dataclass(frozen=True)
class Match:
    """Conditions on a Part; every condition given must hold, a list matches on any item."""

    command: tuple[str, ...] = ()
    prefix: tuple[str, ...] = ()
    args: tuple[tuple[str, ...], ...] = ()
    flags_any: tuple[str, ...] = ()
    flags_none: tuple[str, ...] = ()
    operands_any: tuple[str, ...] = ()
    words_any: tuple[str, ...] = ()
    words_only: tuple[str, ...] = ()
    max_operands: int | None = None
    min_operands: int | None = None
    code_any: tuple[str, ...] = ()  # regexes, compiled when first used
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

    def matches(self, p: Part) -> bool:
        """True when part satisfies every condition (and not the `unless` ones)."""
        argv = p.argv
        if self.command and not (argv and any_match(self.command, argv[:1])):
            return False
        if self.prefix and tuple(argv[: len(self.prefix)]) != self.prefix:
            return False
        if self.args:
            ops = p.operands
            if len(ops) < len(self.args):
                return False
            if not all(any_match(alts, (ops[i],)) for i, alts in enumerate(self.args)):
                return False
        if self.flags_any and not p.flags.intersection(self.flags_any):
            return False
        if self.flags_none and p.flags.intersection(self.flags_none):
            return False
        if self.operands_any and not any_match(self.operands_any, p.operands):
            return False
        if self.words_any and not any_match(self.words_any, argv[1:]):
            return False
        if self.words_only and not (len(argv) > 1 and set(argv[1:]) <= set(self.words_only)):
            return False
        if self.max_operands is not None and len(p.operands) > self.max_operands:
            return False
        if self.min_operands is not None and len(p.operands) < self.min_operands:
            return False
        if self.code_any and not (p.code and _code_regex(self.code_any).search(p.code)):
            return False
        if self.env_any and not any_match(self.env_any, p.env_names):
            return False
        if self.git_config_any and not any_match(self.git_config_any, p.git_config):
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


class Targets(Record):
    """Which arguments of a command are paths it writes, creates or deletes."""

    __slots__ = ("after_first", "all_but_last", "last", "operands", "options", "when_flags")

    def __init__(
        self,
        operands: str = "",
        last: str = "",
        after_first: str = "",
        all_but_last: str = "",
        options: tuple[tuple[str, str], ...] = (),  # ("-o", "write"), ("of=", "write")
        when_flags: tuple[str, ...] = (),
    ) -> None:
        self.operands = operands
        self.last = last
        self.after_first = after_first
        self.all_but_last = all_but_last
        self.options = options
        self.when_flags = when_flags


class Verdict(Record):
    """A part judged: its tier, the deciding rule and reason, and every rule that matched."""

    __slots__ = ("matched", "reason", "rule", "tier")

    def __init__(self, tier: int, rule: str, reason: str, matched: tuple[str, ...]) -> None:
        self.tier = tier
        self.rule = rule
        self.reason = reason
        self.matched = matched


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

    @cached_property
    def _index(self) -> tuple[dict[str, tuple[int, ...]], tuple[int, ...]]:
        """Rules by exact command name, and the rules every part must be checked against."""
        by_name: dict[str, list[int]] = {}
        general: list[int] = []
        for i, rule in enumerate(self.rules):
            if rule.disabled:
                continue
            names = rule.match.command or rule.match.prefix[:1]
            if names and not any(_GLOB.intersection(n) for n in names):
                for name in names:
                    by_name.setdefault(name, []).append(i)
            else:
                general.append(i)
        return {k: tuple(v) for k, v in by_name.items()}, tuple(general)

    def judge(self, part: Part) -> Verdict:
        """The part's tier: its identity (project rules first) and every matching aspect."""
        by_name, general = self._index
        order = sorted({*by_name.get(part.argv[0], ()), *general}) if part.argv else general
        matched = [r for r in (self.rules[i] for i in order) if r.match.matches(part)]
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
    def __init__(self, path: Path, check: bool = True) -> None:
        self.path = path
        self.check = check  # compile regexes now (the default policy's are checked by tests)

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
            kw["code_any"] = self.strings(f"{where}.code_any", raw["code_any"])
            for pattern in kw["code_any"] if self.check else ():
                try:
                    re.compile(pattern)
                except re.error as e:
                    raise self.fail(f"{where}.code_any", f"invalid regex {pattern!r}: {e}") from e
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


def _load_yaml(path: Path) -> Any:
    """Parse a policy file, with libyaml when available (the guard loads it on every call)."""
    import yaml

    from boss import yamlio

    loader = getattr(yaml, "CSafeLoader", None)
    if loader is None:  # pragma: no cover - PyYAML without libyaml
        return yamlio.load_file(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        msg = f"{path}: cannot read: {e.strerror}"
        raise ConfigError(msg) from e
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - CSafeLoader is the safe loader
    except yaml.YAMLError:
        try:
            return yamlio.load(text, str(path))  # the pure loader words the error with its line
        except InputError as e:
            raise ConfigError(str(e)) from e


def _read(path: Path) -> dict[str, Any]:
    raw = _load_yaml(path) or {}
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


def _merge(policy: Policy | None, path: Path, raw: dict[str, Any], project: bool) -> Policy:
    load = _Loader(path, check=project)
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
        at = index.get(rid) if isinstance(rid, str) else None
        base = rules[at] if at is not None else None
        rule = load.rule(item, i, base, project)
        if at is not None:
            rules[at] = rule
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
    tiers = {
        **(policy.tiers if policy else {}),
        **{int(k): str(v) for k, v in (raw.get("tiers") or {}).items()},
    }
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
    own = [repo / PROJECT_POLICY] if repo is not None else []
    files = [DEFAULT_POLICY, *(p for p in [*own, *extra] if p.is_file())]
    key = _stamp(files)
    raws = _cache_get(key) if key else None
    checked = raws is not None
    if raws is None:
        raws = [_read(path) for path in files]
    policy = _merge(None, DEFAULT_POLICY, raws[0], project=False)
    for path, raw in zip(files[1:], raws[1:], strict=True):
        policy = _merge(policy, path, raw, project=True)
    if check_examples and not checked and len(files) > 1:
        from worker.classify import example_problems

        problems = example_problems(policy, [r for r in policy.rules if r.touched])
        if problems:
            raise ConfigError("; ".join(problems[:5]))
    if key and not checked:
        _cache_put(key, raws)
    return policy


def _stamp(files: list[Path]) -> str:
    """A key for the files' current contents (path, size and modification time)."""
    try:
        parts = [f"{p.resolve()}:{(st := p.stat()).st_size}:{st.st_mtime_ns}" for p in files]
    except OSError:
        return ""
    return "\n".join(parts)


def _cache_file(key: str) -> Path:
    return cache_dir() / f"policy-{zlib.crc32(key.encode()):08x}.json"


def _cache_get(key: str) -> list[dict[str, Any]] | None:
    """The parsed files checked before (JSON: no YAML parser to import on the guard's path)."""
    try:
        data = json.loads(_cache_file(key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key or not isinstance(data.get("files"), list):
        return None
    files = data["files"]
    return files if all(isinstance(d, dict) for d in files) else None


def _cache_put(key: str, raws: list[dict[str, Any]]) -> None:
    path = _cache_file(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"key": key, "files": raws}), encoding="utf-8")
        tmp.replace(path)
    except (OSError, TypeError, ValueError):
        pass  # no cache: the next load parses the YAML again
