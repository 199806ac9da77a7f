"""Reading policy files: validation (errors name the file, the rule and the field), merging a
project's file over the default one, checking examples, and a JSON cache of the parsed files so
the guard need not import a YAML parser on every call."""

from __future__ import annotations

import json
import os
import re
import zlib
from pathlib import Path

from boss.core.errors import ConfigError, InputError
from worker.autonomy.bashlex_loader import cache_dir
from worker.autonomy.policy import (
    AGENT_CONFIG,
    DEFAULT_POLICY,
    EFFECTS,
    PROJECT_POLICY,
    TARGET_KINDS,
    Match,
    Policy,
    Rule,
    Targets,
)  # fmt: skip

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the guard 3 ms
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from worker.autonomy.context import Context

_TARGET_KEYS = ("operands", "last", "after_first", "all_but_last")
_LIST_KEYS = ("command", "prefix", "flags_any", "flags_none", "operands_any", "words_any", "words_only",
              "env_any", "git_config_any", "stdin", "effect")  # fmt: skip
_MATCH_KEYS = {*_LIST_KEYS, "args", "max_operands", "min_operands", "code_any", "venv", "unless"}
_RULE_KEYS = {"id", "tier", "reason", "match", "examples", "fallback", "disabled"}
_TOP_KEYS = {"version", "tiers", "defaults", "paths", "targets", "rules"}
_PATH_KEYS = ("harmless", "secrets", "not_secret", "writable", "agent_config")
_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def load(repo: Path | None = None, extra: Sequence[Path] = (), *, check_examples: bool = True) -> Policy:
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
        problems = example_problems(policy, [r for r in policy.rules if r.touched])
        if problems:
            raise ConfigError("; ".join(problems[:5]))
    if key and not checked:
        _cache_put(key, raws)
    return policy


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
        unknown = sorted(set(raw) - _MATCH_KEYS, key=str)
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
        unknown = sorted(set(raw) - _RULE_KEYS, key=str)
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
            unknown = sorted(set(spec) - {*_TARGET_KEYS, "options", "when_flags"}, key=str)
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
    """Parse a policy file (boss.core.yamlio's loader: libyaml when available, duplicate keys refused)."""
    from boss.core import yamlio

    try:
        return yamlio.load_file(path)
    except InputError as e:
        raise ConfigError(str(e)) from e


def _read(path: Path) -> dict[str, Any]:
    raw = _load_yaml(path) or {}
    if not isinstance(raw, dict):
        msg = f"{path}: top level: must be a mapping"
        raise ConfigError(msg)
    unknown = sorted(set(raw) - _TOP_KEYS, key=str)
    if unknown:
        msg = f"{path}: field {unknown[0]!s:.40}: unknown key (known: {', '.join(sorted(_TOP_KEYS))})"
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
    if not isinstance(defaults, dict):
        raise load.fail("field defaults", "must be a mapping (unknown_command: 1, 2 or 3)")
    unknown_tier = defaults.get("unknown_command", policy.unknown_tier if policy else 3)
    if unknown_tier not in (1, 2, 3):
        raise load.fail("field defaults.unknown_command", "must be 1, 2 or 3")
    paths = raw.get("paths") or {}
    if not isinstance(paths, dict) or set(paths) - set(_PATH_KEYS):
        raise load.fail("field paths", f"must be a mapping with keys {', '.join(_PATH_KEYS)}")
    defaults = {"agent_config": AGENT_CONFIG}  # the default policy's list lives in code
    lists = {
        k: (getattr(policy, k) if policy else defaults.get(k, ()))
        + load.strings(f"field paths.{k}", paths.get(k, []))
        for k in _PATH_KEYS
    }
    targets = {**(policy.targets if policy else {}), **load.targets(raw.get("targets") or {})}
    raw_tiers = raw.get("tiers") or {}
    # A key reads back from the JSON cache as text ("1"), from YAML as a number.
    if not isinstance(raw_tiers, dict) or not all(
        str(k) in ("1", "2", "3") and isinstance(v, str) for k, v in raw_tiers.items()
    ):
        raise load.fail("field tiers", "must map a tier (1, 2 or 3) to its name")
    tiers = {**(policy.tiers if policy else {}), **{int(k): v for k, v in raw_tiers.items()}}
    return Policy(
        rules=tuple(sorted(rules, key=lambda r: not r.project)),  # project rules first
        unknown_tier=unknown_tier, tiers=tiers, targets=targets,
        sources=(*(policy.sources if policy else ()), str(path)), **lists,
    )  # fmt: skip


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


EXAMPLE_WORKTREE = "/boss-example/worktree"
EXAMPLE_HOME = "/boss-example/home"


def example_context() -> Context:
    """The stand-in world policy examples run in: files exist when their name starts `existing`."""
    from worker.autonomy.context import Context

    def exists(path: str) -> bool:
        return Path(path).name.startswith("existing") or EXAMPLE_WORKTREE.startswith(path)

    return Context(EXAMPLE_WORKTREE, EXAMPLE_HOME, {}, os.path.normpath, exists, lambda _path: None)


def example_problems(policy: Policy, rules: list[Rule] | None = None) -> list[str]:
    """Every policy example that its rule does not match (or not_match example it matches)."""
    from worker.autonomy.classify import classify

    ctx = example_context()
    problems = []
    cwd = Path(EXAMPLE_WORKTREE)
    for rule in policy.rules if rules is None else rules:
        if rule.disabled:
            continue
        for wanted, examples in ((True, rule.examples[0]), (False, rule.examples[1])):
            for example in examples:
                decision = classify(example, cwd, cwd, policy, context=ctx)
                hit = any(rule.id in p.matched for p in decision.parts)
                if hit != wanted:
                    field_name = "examples.match" if wanted else "examples.not_match"
                    verb = "does not match" if wanted else "matches"
                    problems.append(
                        f"{rule.source}: rule {rule.id}: field {field_name}: the rule {verb} {example!r}"
                    )
    return problems


def load_policy(
    repo: Path | None = None, extra: Sequence[Path] = (), *, check_examples: bool = True
) -> Policy:
    """The default policy, extended by `<repo>/.boss/policy.yaml` and the extra files given.

    The examples of every rule a project file defines or overrides are checked (they are
    tests); the default policy's own examples are checked by the test suite.
    """
    return load(repo, extra, check_examples=check_examples)
