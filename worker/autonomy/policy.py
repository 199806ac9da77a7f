"""The tier policy: a vendor-neutral YAML document of rules, and how a rule judges one command.

The default policy ships as `worker/autonomy/default_policy.yaml`; a project's `.boss/policy.yaml`
(and a worker's rendered overlay) extend it. Format, version 1:

    version: 1
    defaults: {unknown_command: 3}          # tier of a command no rule knows
    paths: {harmless: [...], secrets: [...], not_secret: [...], writable: [...], agent_config: [...]}
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
from fnmatch import translate
from pathlib import Path

from worker.autonomy.shellparse import Record

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the guard 3 ms
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

DEFAULT_POLICY = Path(__file__).with_name("default_policy.yaml")
PROJECT_POLICY = Path(".boss") / "policy.yaml"
EFFECTS = frozenset(
    {
        "create-inside", "write-inside", "delete-inside", "write-outside", "git-internals",
        "secret-path", "unresolved-target", "exec-stdin", "dynamic-command", "worktree-script",
        "outside-script", "unchecked-script", "network-device", "fork-bomb", "git-elsewhere",
        "heredoc-substitution", "agent-config",
    }
)  # fmt: skip
TARGET_KINDS = ("write", "create", "delete", "reach")  # reach: only outside the worktree counts
# An agent CLI's own configuration in the worktree (relative to it): the CLI loads it at its next
# start, before any hook (hooks, plugins, MCP servers, lint or test commands). Writing or deleting
# these is TIER 3 (rule agent-config), and the worker puts them back before each agent start
# (worker.agents.cli_config). Here, not in default_policy.yaml, so that a worker without a project
# policy needs no YAML parser to know them; `paths.agent_config` in a policy file extends it.
AGENT_CONFIG = (".claude", ".gemini", ".opencode", ".codex", "opencode.json", "opencode.jsonc",
                ".aider.conf.yml", ".mcp.json", ".cursor", ".vscode/mcp.json")  # fmt: skip


class Part(Record):
    """One command as rules see it, after unwrapping; argv[0] is the command's base name."""

    __slots__ = ("_parsed", "argv", "code", "effects", "env_names", "git_config", "stdin", "text", "venv")

    def __init__(
        self,
        argv: tuple[str, ...],
        text: str,
        stdin: str = "",  # "", "pipe", "heredoc", "herestring" or "file"
        *,
        code: str | None = None,  # inline program of python -c, node -e, awk ...
        env_names: tuple[str, ...] = (),
        git_config: tuple[str, ...] = (),
        venv: bool = False,
        effects: dict[str, str] | None = None,  # effect -> what caused it
    ) -> None:
        self.argv = argv
        self.text = text
        self.stdin = stdin
        self.code = code
        self.env_names = env_names
        self.git_config = git_config
        self.venv = venv
        self.effects = {} if effects is None else effects
        self._parsed: tuple[tuple[str, ...], frozenset[str], tuple[str, ...]] | None = None

    def _split(self) -> tuple[frozenset[str], tuple[str, ...]]:
        if self._parsed is not None and self._parsed[0] is self.argv:
            return self._parsed[1], self._parsed[2]
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
        self._parsed = (self.argv, frozenset(flags), tuple(operands))
        return self._parsed[1], self._parsed[2]

    @property
    def flags(self) -> frozenset[str]:
        """Options given: words starting with -, short clusters split (-rf gives -r and -f)."""
        return self._split()[0]

    @property
    def operands(self) -> tuple[str, ...]:
        """The other words after the command name."""
        return self._split()[1]


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


class Match(Record):
    """Conditions on a Part; every condition given must hold, a list matches on any item."""

    __slots__ = ("args", "code_any", "command", "effect", "env_any", "flags_any", "flags_none",
                 "git_config_any", "max_operands", "min_operands", "operands_any", "prefix", "stdin",
                 "unless", "venv", "words_any", "words_only")  # fmt: skip

    def __init__(
        self,
        *,
        command: tuple[str, ...] = (),
        prefix: tuple[str, ...] = (),
        args: tuple[tuple[str, ...], ...] = (),
        flags_any: tuple[str, ...] = (),
        flags_none: tuple[str, ...] = (),
        operands_any: tuple[str, ...] = (),
        words_any: tuple[str, ...] = (),
        words_only: tuple[str, ...] = (),
        max_operands: int | None = None,
        min_operands: int | None = None,
        code_any: tuple[str, ...] = (),  # regexes, compiled when first used
        env_any: tuple[str, ...] = (),
        git_config_any: tuple[str, ...] = (),
        stdin: tuple[str, ...] = (),
        effect: tuple[str, ...] = (),
        venv: bool | None = None,
        unless: Match | None = None,
    ) -> None:
        self.command, self.prefix, self.args = command, prefix, args
        self.flags_any, self.flags_none, self.operands_any = flags_any, flags_none, operands_any
        self.words_any, self.words_only = words_any, words_only
        self.max_operands, self.min_operands = max_operands, min_operands
        self.code_any, self.env_any, self.git_config_any = code_any, env_any, git_config_any
        self.stdin, self.effect, self.venv, self.unless = stdin, effect, venv, unless

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


class Rule(Record):
    """One policy rule; `project` when it comes from a project's own file (first match wins)."""

    __slots__ = ("disabled", "examples", "fallback", "id", "match", "project", "reason", "source", "tier",
                 "touched")  # fmt: skip

    def __init__(
        self,
        id: str,
        tier: int,
        reason: str,
        match: Match,
        examples: tuple[tuple[str, ...], tuple[str, ...]] = ((), ()),  # (match, not_match)
        fallback: bool = False,
        disabled: bool = False,
        project: bool = False,
        source: str = "",
        touched: bool = False,  # defined or overridden outside the default policy
    ) -> None:
        self.id, self.tier, self.reason, self.match, self.examples = id, tier, reason, match, examples
        self.fallback, self.disabled, self.project = fallback, disabled, project
        self.source, self.touched = source, touched


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


class Policy(Record):
    """The merged policy: rules in evaluation order, path lists, target table, defaults."""

    __slots__ = ("_index_cache", "agent_config", "harmless", "not_secret", "rules", "secrets", "sources",
                 "targets", "tiers", "unknown_tier", "writable")  # fmt: skip

    def __init__(
        self,
        rules: tuple[Rule, ...],
        unknown_tier: int = 3,
        tiers: Mapping[int, str] | None = None,
        harmless: tuple[str, ...] = (),
        secrets: tuple[str, ...] = (),
        not_secret: tuple[str, ...] = (),
        writable: tuple[str, ...] = (),
        targets: Mapping[str, Targets] | None = None,
        sources: tuple[str, ...] = (),
        agent_config: tuple[str, ...] = (),
    ) -> None:
        self.rules, self.unknown_tier, self.tiers = rules, unknown_tier, tiers or {}
        self.harmless, self.secrets, self.not_secret, self.writable = harmless, secrets, not_secret, writable
        self.agent_config = agent_config
        self.targets, self.sources = targets or {}, sources
        self._index_cache: tuple[dict[str, tuple[int, ...]], tuple[int, ...]] | None = None

    def rule(self, rule_id: str) -> Rule | None:
        """The rule with this id, or None."""
        return next((r for r in self.rules if r.id == rule_id), None)

    @property
    def _index(self) -> tuple[dict[str, tuple[int, ...]], tuple[int, ...]]:
        """Rules by exact command name, and the rules every part must be checked against."""
        if self._index_cache is not None:
            return self._index_cache
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
        self._index_cache = ({k: tuple(v) for k, v in by_name.items()}, tuple(general))
        return self._index_cache

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
