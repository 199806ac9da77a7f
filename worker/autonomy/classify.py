"""Classify a shell command line into TIER 1 (safe), 2 (risky) or 3 (critical), with reasons.

`classify(command, cwd, worktree, policy)` parses the line with a real shell parser
(`worker.autonomy.shellparse`), walks every simple command of every list, pipeline, subshell, loop,
function body, command and process substitution and shell string (`bash -c`), follows `cd`,
unwraps wrappers (`worker.autonomy.unwrap`), resolves the paths each command writes or deletes (its
`targets` in the policy, and every redirection) against the worktree, and lets the policy
judge each part (`worker.autonomy.policy`). The line's tier is the highest of its parts; a line that
cannot be parsed is TIER 3. Nothing runs and nothing is written: the only I/O is resolving
paths (symlinks, whether a file exists) and reading a shell script the command would run,
so that its contents are judged too.
"""

from __future__ import annotations

from pathlib import Path

from worker.autonomy import interpreters as ip
from worker.autonomy import pathcheck as wpaths
from worker.autonomy import shellparse as sp
from worker.autonomy import unwrap as uw
from worker.autonomy.context import Context, make_context
from worker.autonomy.policy import Part, Policy, Verdict
from worker.autonomy.shellparse import Record

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the guard 3 ms
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

MAX_DEPTH = 6  # nested shell strings and scripts judged before giving up (TIER 3)
NO_FILE_ARGS = frozenset({"echo", "printf", "test", "[", "true", "false", ":"})
SETTERS = frozenset({"export", "declare", "typeset", "local", "readonly", "env"})
# Variables whose value other programs run as a command: their values are judged as commands.
COMMAND_VARIABLES = frozenset({"GIT_PAGER", "PAGER", "MANPAGER", "EDITOR", "VISUAL", "GIT_EDITOR",
                               "GIT_SEQUENCE_EDITOR", "GIT_SSH_COMMAND", "SUDO_ASKPASS"})  # fmt: skip


class PartDecision(Record):
    """One part of a command line: its text, tier, deciding rule, reason, all matching rules."""

    __slots__ = ("command", "matched", "reason", "rule", "tier")

    def __init__(
        self, command: str, tier: int, rule: str, reason: str, matched: tuple[str, ...] = ()
    ) -> None:
        self.command, self.tier, self.rule, self.reason, self.matched = command, tier, rule, reason, matched

    def to_json(self) -> dict[str, Any]:
        """The part as the `--json` output shows it."""
        return {"command": self.command, "tier": self.tier, "rule": self.rule,
                "reason": self.reason, "matched": list(self.matched)}  # fmt: skip


class Decision(Record):
    """A command line judged: the highest tier of its parts and why."""

    __slots__ = ("parts", "reason", "rule", "tier")

    def __init__(self, tier: int, reason: str, rule: str, parts: tuple[PartDecision, ...] = ()) -> None:
        self.tier, self.reason, self.rule, self.parts = tier, reason, rule, parts

    def to_json(self) -> dict[str, Any]:
        """{"tier": N, "reason": ..., "rule": ..., "parts": [...]}."""
        return {"tier": self.tier, "reason": self.reason, "rule": self.rule,
                "parts": [p.to_json() for p in self.parts]}  # fmt: skip


def classify(
    command: str,
    cwd: Path,
    worktree: Path,
    policy: Policy,
    *,
    env: Mapping[str, str] | None = None,
    context: Context | None = None,
) -> Decision:
    """Judge one shell command line run in cwd by an agent confined to worktree."""
    ctx = context or make_context(worktree, env)
    walker = _Walker(policy, ctx)
    walker.script(command, ctx.realpath(str(cwd)))
    return walker.decision()


def classify_path(
    path: str,
    cwd: Path,
    worktree: Path,
    policy: Policy,
    *,
    tool: str = "Write",
    kind: str = "write",
    context: Context | None = None,
) -> Decision:
    """Judge a file tool (Edit, Write ...) changing path: new file, existing file, or outside."""
    ctx = context or make_context(worktree)
    walker = _Walker(policy, ctx)
    part = Part((), f"{tool} {path}")
    walker.paths.target(part.effects, kind, uw.Arg(path, path), ctx.realpath(str(cwd)))
    walker.add(part)
    return walker.decision()


class _Walker:
    def __init__(self, policy: Policy, ctx: Context) -> None:
        self.policy = policy
        self.ctx = ctx
        self.paths = wpaths.Resolver(policy, ctx)
        self.parts: list[PartDecision] = []
        self.functions: set[str] = set()
        self.labels: list[str] = []
        self.in_substitution = 0

    def decision(self) -> Decision:
        if not self.parts:
            return Decision(1, "nothing to run", "nothing-to-run")
        top = max(self.parts, key=lambda p: p.tier)
        reason = f"{top.command}: {top.reason} (rule {top.rule})"
        return Decision(top.tier, reason, top.rule, tuple(self.parts))

    def record(self, text: str, verdict: Verdict) -> None:
        label = "".join(f"{x}: " for x in self.labels)
        self.parts.append(
            PartDecision(f"{label}{text}", verdict.tier, verdict.rule, verdict.reason, verdict.matched)
        )

    def add(self, part: Part) -> None:
        self.record(part.text, self.policy.judge(part))

    def fail(self, text: str, rule: str, reason: str) -> None:
        self.record(text, Verdict(3, rule, reason, (rule,)))

    def script(self, text: str, cwd: str | None, label: str = "") -> None:
        if len(self.labels) >= MAX_DEPTH:
            self.fail(text[:200], "cannot-parse", "shell strings nested too deeply to check")
            return
        try:
            tree = sp.parse(text)
        except sp.ShellSyntaxError as e:
            self.fail(text[:200], "cannot-parse", f"cannot parse: {e}")
            return
        if label:
            self.labels.append(label)
        try:
            self.group(tree, cwd)
        finally:
            if label:
                self.labels.pop()

    def group(self, group: sp.Group, cwd: str | None) -> str | None:
        current = cwd
        for item in group.items:
            if isinstance(item, sp.Command):
                current = self.command(item, current)
            elif isinstance(item, sp.Group):
                current = self.group(item, current)
            else:
                self.function(item, current)
        return cwd if group.isolated else current

    def function(self, fn: sp.Function, cwd: str | None) -> None:
        self.functions.add(fn.name)
        if _calls(fn.body, fn.name):
            self.add(Part((), fn.text, effects={"fork-bomb": fn.name}))
        self.group(fn.body, cwd)

    def command(self, cmd: sp.Command, cwd: str | None) -> str | None:
        for word in (*cmd.assignments, *cmd.words, *(r.target for r in cmd.redirects if r.target)):
            for sub in word.substitutions:
                self.in_substitution += 1  # its output becomes words: even echo's words count
                try:
                    self.group(sub, cwd)
                finally:
                    self.in_substitution -= 1
        args = tuple(uw.Arg(w.text, self.paths.expand(w, cwd)) for w in cmd.words)
        assignments = [uw.Arg(w.text, self.paths.expand(w, cwd)) for w in cmd.assignments]
        if args and args[0].value in SETTERS:
            assignments += [a for a in args[1:] if "=" in a.text and not a.text.startswith("-")]
        env_names = tuple(a.text.split("=", 1)[0] for a in assignments)
        self.command_variables(assignments, cwd)
        effects: dict[str, str] = {}
        stdin, body = self.redirects(cmd, cwd, effects)
        first = Part((), cmd.text, stdin or cmd.stdin, env_names=env_names, effects=effects)
        if not args:
            self.add(first)
            return cwd
        if args[0].value in self.functions:
            self.record(cmd.text, Verdict(1, "function-call", "calls a function judged above", ()))
            return cwd
        self.layers(args, first, cwd, body)
        return self.paths.cd(args, cwd) if args[0].value in ("cd", "pushd", "popd") else cwd

    def command_variables(self, assignments: list[uw.Arg], cwd: str | None) -> None:
        for arg in assignments:
            name = arg.text.partition("=")[0]
            if name not in COMMAND_VARIABLES:
                continue
            if arg.value is None:
                self.add(Part((), arg.text, effects={"dynamic-command": arg.text}))
            else:
                self.script(arg.value.partition("=")[2], cwd, label=f"${name}")

    def redirects(self, cmd: sp.Command, cwd: str | None, effects: dict[str, str]) -> tuple[str, str | None]:
        """Effects of the redirections; the kind of stdin and a static here-document body."""
        stdin, body = "", None
        for r in cmd.redirects:
            if r.heredoc is not None:
                stdin, body = "heredoc", r.heredoc
                if not r.heredoc_quoted and ("$(" in r.heredoc or "`" in r.heredoc):
                    effects["heredoc-substitution"] = r.heredoc.split("\n", 1)[0]
                continue
            if r.target is None:
                continue
            arg = uw.Arg(r.target.text, self.paths.expand(r.target, cwd))
            if r.op == "<<<":
                stdin, body = "herestring", arg.value
            elif r.op == "<":
                self.paths.read(effects, arg, cwd)
                stdin = stdin or "file"
            elif r.op == "<>" or r.op in (">", ">>", ">|", "&>", "&>>", ">&"):
                self.paths.target(effects, "write", arg, cwd)
        return stdin, body

    def layers(self, args: tuple[uw.Arg, ...], part: Part, cwd: str | None, body: str | None) -> None:
        """Judge a command and every command it wraps (sudo X, env X, xargs X, bash -c X ...)."""
        from_input, venv = False, False
        run_cwd = cwd
        for _ in range(MAX_DEPTH * 2):
            name = self.command_name(args[0], part.effects, run_cwd)
            venv = venv or self.paths.venv(args[0], run_cwd)
            part.argv = (name, *(a.value if a.value is not None else a.text for a in args[1:]))
            part.venv = venv
            inner = self.analyze(name, args, part, run_cwd, body, from_input)
            self.add(part)
            if inner is None:
                return
            args = inner.args
            if inner.cwd is not None:
                run_cwd = self.paths.resolve(inner.cwd, run_cwd)
            if inner.script is not None:
                if from_input or inner.from_input:  # xargs sh -c '...': the words come from input
                    self.add(Part((), part.text, effects={"dynamic-command": "a shell string fed by xargs"}))
                self.shell_string(inner.script, run_cwd, args_text=part.text)
                return
            if not args:
                return
            from_input = from_input or inner.from_input
            part = Part((), " ".join(a.text for a in args), part.stdin, env_names=part.env_names)
        self.fail(part.text, "cannot-parse", "wrappers nested too deeply to check")

    def shell_string(self, script: uw.Arg, cwd: str | None, args_text: str) -> None:
        if script.value is None:
            self.add(Part((), args_text, effects={"dynamic-command": script.text}))
        else:
            self.script(script.value, cwd, label="sh -c")

    def analyze(
        self,
        name: str,
        args: tuple[uw.Arg, ...],
        part: Part,
        cwd: str | None,
        body: str | None,
        from_input: bool,
    ) -> uw.Layer | None:
        """Fill in part's facts; return the inner command it runs, if it wraps one."""
        fx = part.effects
        self.paths.apply_targets(name, args, fx, cwd, from_input)
        if name not in NO_FILE_ARGS or self.in_substitution:
            for arg in args[1:]:
                self.paths.read(fx, arg, cwd)
        if name == "git":
            call = uw.git_call(args)
            part.argv = (name, *(a.value if a.value is not None else a.text for a in call.args[1:]))
            part.git_config = call.config
            self.paths.git_dirs(call.dirs, fx, cwd)
            return None
        if name == "find":
            self.find(uw.find_call(args), fx, cwd)
            return None
        if name in ("source", "."):
            if len(args) > 1 and not self.paths.is_venv_activate(args[1]):
                self.script_file(args[1], fx, cwd, shell=True)
            return None
        lang = ip.language(name)
        if lang is not None:
            return self.program(lang, args, part, cwd, body)
        return uw.wrapper(args)

    def program(
        self, lang: str, args: tuple[uw.Arg, ...], part: Part, cwd: str | None, body: str | None
    ) -> uw.Layer | None:
        fx = part.effects
        prog = ip.interpreter(lang, args[1:])
        if prog.kind == "shell":
            return uw.Layer(script=prog.code_arg or uw.Arg("", ""))
        if prog.kind == "module":
            return uw.Layer(prog.args)
        if prog.kind == "code":
            part.code = prog.code
            if prog.code_arg is not None and prog.code_arg.value is None:
                fx["dynamic-command"] = prog.code_arg.text
            if prog.inplace:
                for arg in prog.args:
                    self.paths.target(fx, "write", arg, cwd)
        elif prog.kind == "script" and prog.script is not None:
            self.script_file(prog.script, fx, cwd, shell=lang == "shell")
            if prog.inplace:
                for arg in prog.args:
                    self.paths.target(fx, "write", arg, cwd)
        elif prog.kind == "stdin":
            if lang == "shell" and body is not None and part.stdin in ("heredoc", "herestring"):
                self.script(body, cwd, label=f"{args[0].text} <<")
            elif part.stdin in ("pipe", "heredoc", "herestring"):
                fx["exec-stdin"] = f"{args[0].text} reads its program from {part.stdin}"
        return None

    def command_name(self, arg: uw.Arg, fx: dict[str, str], cwd: str | None) -> str:
        """The command's base name; a program run by path from the worktree is a script."""
        if arg.value is None:
            fx["dynamic-command"] = arg.text
            return arg.text
        if "/" not in arg.value:
            return arg.value
        path = self.paths.resolve(arg, cwd)
        inside = path is not None and self.paths.location(path) == "inside"
        if inside and Path(str(path)).parent.name not in ("bin", ".bin"):  # .venv/bin/pytest: pytest
            self.script_file(arg, fx, cwd, shell=None)
        return Path(arg.value).name

    def script_file(self, arg: uw.Arg, fx: dict[str, str], cwd: str | None, *, shell: bool | None) -> None:
        """A script the command runs: outside the worktree TIER 3; shell scripts are read and judged."""
        path = self.paths.resolve(arg, cwd)
        if path is None:
            fx["unchecked-script"] = arg.text
            return
        if self.paths.location(path) != "inside":
            fx["outside-script"] = arg.text
            return
        fx["worktree-script"] = arg.text
        if shell is False:
            return  # python, node ...: the code is not read; the OS sandbox is the backstop
        text = self.ctx.read_text(path)
        if text is None:
            fx["unchecked-script"] = f"{arg.text} (cannot be read)"
        elif shell or wpaths.is_shell_script(path, text):
            self.script(text, cwd, label=arg.text)

    def find(self, call: uw.FindCall, fx: dict[str, str], cwd: str | None) -> None:
        for root in call.roots:
            if call.delete:
                self.paths.target(fx, "delete", root, cwd)
        for out in call.writes:
            self.paths.target(fx, "write", out, cwd)
        for inner, in_dir in zip(call.execs, call.inner_cwd, strict=True):
            for root in call.roots:
                found = self.paths.resolve(root, cwd)
                args = tuple(uw.Arg(a.text, _found(a.value, found)) for a in inner)
                if not args:
                    continue
                text = " ".join(a.text for a in inner)
                self.layers(args, Part((), f"find -exec {text}"), cwd if not in_dir else found, None)


def _found(value: str | None, found: str | None) -> str | None:
    if value is None or "{}" not in value:
        return value
    return None if found is None else value.replace("{}", found)


def _calls(group: sp.Group, name: str) -> bool:
    for item in group.items:
        if isinstance(item, sp.Command) and item.words and item.words[0].text == name:
            return True
        if isinstance(item, sp.Group) and _calls(item, name):
            return True
        if isinstance(item, sp.Function) and _calls(item.body, name):
            return True
    return False
