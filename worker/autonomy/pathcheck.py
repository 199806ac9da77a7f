"""Where a command's paths lead: inside the worktree (new or existing), its .git, a secret,
outside, or unknown until run time; the classifier turns these into effects the policy judges."""

from __future__ import annotations

import os
from fnmatch import fnmatchcase
from itertools import pairwise
from pathlib import Path

from worker.autonomy.interpreters import SHELLS
from worker.autonomy.policy import any_match
from worker.autonomy.shellparse import Word
from worker.autonomy.unwrap import Arg

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the guard 3 ms
if TYPE_CHECKING:
    from worker.autonomy.context import Context
    from worker.autonomy.policy import Policy

GLOB_CHARS = frozenset("*?[")
MAX_BRACES = 64


def is_shell_script(path: str, text: str) -> bool:
    """True for a shell script: a shell shebang, or no shebang and a .sh name or no suffix."""
    if "\0" in text:
        return False
    first = text.split("\n", 1)[0]
    if first.startswith("#!"):
        words = first[2:].split()
        names = [Path(w).name for w in words if not w.startswith("-")]
        if names and names[0] == "env":
            names = names[1:]
        return bool(names) and names[0] in SHELLS
    return Path(path).suffix in ("", ".sh", ".bash")


def brace_expand(text: str) -> list[str]:
    """Bash brace expansion ({a,b}, {1..3}) of a word; at most MAX_BRACES results."""
    start = _brace_start(text)
    if start < 0:
        return [text]
    depth, end, commas = 0, -1, []
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                end = i
                break
        elif text[i] == "," and depth == 1:
            commas.append(i)
    if end < 0:
        return [text]
    inner = text[start + 1 : end]
    if commas:
        bounds = [start, *commas, end]
        choices = [text[a + 1 : b] for a, b in pairwise(bounds)]
    elif ".." in inner and all(p.strip("-").isdigit() for p in inner.split("..", 1)):
        lo, hi = (int(p) for p in inner.split("..", 1))
        step = 1 if hi >= lo else -1
        choices = [str(n) for n in range(lo, hi + step, step)][:MAX_BRACES]
    else:
        rest = brace_expand(text[end + 1 :])
        return [text[: end + 1] + r for r in rest][:MAX_BRACES]
    out: list[str] = []
    for choice in choices:
        out.extend(brace_expand(text[:start] + choice + text[end + 1 :]))
        if len(out) >= MAX_BRACES:
            break
    return out[:MAX_BRACES]


def _brace_start(text: str) -> int:
    i = text.find("{")
    while i >= 0 and i > 0 and text[i - 1] == "$":
        i = text.find("{", i + 1)
    return i


def glob_base(value: str) -> str:
    """The part of a path before its first component with a glob character ('.' if none)."""
    parts = value.split("/")
    for i, part in enumerate(parts):
        if GLOB_CHARS.intersection(part):
            base = "/".join(parts[:i])
            return base if base or not value.startswith("/") else "/"
    return value


class Resolver:
    """Resolves arguments against the working directory and says where they lead."""

    def __init__(self, policy: Policy, ctx: Context) -> None:
        self.policy = policy
        self.ctx = ctx
        self.wt = ctx.worktree.rstrip("/") or "/"
        self.secrets = tuple(self._abs(p) for p in policy.secrets if _is_pathlike(p))
        self.secret_names = tuple(p for p in policy.secrets if not _is_pathlike(p))
        self.not_secret = tuple(policy.not_secret)
        self.writable = tuple(self._abs(p) for p in policy.writable)
        self.agent_config = tuple(policy.agent_config)
        env_venv = ctx.env.get("VIRTUAL_ENV")
        self.env_venv = bool(env_venv) and self._inside(ctx.realpath(str(env_venv)))

    def _abs(self, pattern: str) -> str:
        if pattern == "~" or pattern.startswith("~/"):
            return self.ctx.home + pattern[1:]
        return pattern

    def _inside(self, path: str) -> bool:
        return path == self.wt or path.startswith(self.wt + "/") or self.wt == "/"

    # --- expansion and resolution

    def expand(self, word: Word, cwd: str | None) -> str | None:
        """The word's value, or None when it depends on the run (substitutions, unknown vars)."""
        if word.substitutions:
            return None
        text = word.text
        if word.params:
            known = {"HOME": self.ctx.home, "PWD": cwd, "BOSS_WORKTREE": self.wt}
            for name in word.params:
                value = known.get(name)
                if value is None:
                    return None
                text = text.replace("${" + name + "}", value).replace("$" + name, value)
            if "$" in text:
                return None
        if word.tilde and text.startswith("~"):
            if text != "~" and not text.startswith("~/"):
                return None  # ~user: someone else's home
            text = self.ctx.home + text[1:]
        return text

    def resolve(self, arg: Arg, cwd: str | None) -> str | None:
        """The absolute, symlink-free path an argument names; None when it cannot be known."""
        value = arg.value
        if value is None:
            return None
        if not value.startswith("/"):
            if cwd is None:
                return None
            value = f"{cwd}/{value}"
        return self.ctx.realpath(value)

    def location(self, path: str, raw: str = "") -> str:
        """harmless, network, secret, git, agent (an agent CLI's configuration), inside or outside."""
        for candidate in (raw, path):
            if candidate and any_match(self.policy.harmless, (candidate,)):
                return "harmless"
            if candidate.startswith(("/dev/tcp/", "/dev/udp/")):
                return "network"
        if self._secret(path) or (raw and self._secret(os.path.normpath(raw))):
            return "secret"
        if self._inside(path):
            rel = path[len(self.wt) :].lstrip("/")
            if rel.split("/", 1)[0] == ".git":
                return "git"
            return "agent" if rel and _under(rel, self.agent_config) else "inside"
        if _under(path, self.writable):
            return "inside"
        return "outside"

    def _secret(self, path: str) -> bool:
        name = path.rsplit("/", 1)[-1]
        if any_match(self.not_secret, (name,)):
            return False
        return any_match(self.secret_names, (name,)) or _under(path, self.secrets)

    # --- effects

    def target(
        self, fx: dict[str, str], kind: str, arg: Arg, cwd: str | None, *, existing: bool = False
    ) -> None:
        """Record what writing, creating or deleting arg does."""
        if arg.value is None:
            fx.setdefault("unresolved-target", arg.text)
            return
        for value in brace_expand(arg.value):
            old = existing
            if GLOB_CHARS.intersection(value):
                value, old = glob_base(value) or ".", True
            raw = value if value.startswith("/") else ""
            path = self.resolve(Arg(value, value), cwd)
            if path is None:
                fx.setdefault("unresolved-target", arg.text)
                continue
            where = self.location(path, raw)
            if where == "harmless" or (kind == "reach" and where == "inside"):
                continue
            effect = {"network": "network-device", "secret": "secret-path", "git": "git-internals",
                      "agent": "agent-config", "outside": "write-outside"}.get(where)  # fmt: skip
            if effect is None:
                if kind == "delete":
                    effect = "delete-inside"
                elif old or self.ctx.exists(path):
                    effect = "" if kind == "create" else "write-inside"
                else:
                    effect = "create-inside"
            if effect:
                fx.setdefault(effect, arg.text)

    def read(self, fx: dict[str, str], arg: Arg, cwd: str | None) -> None:
        """Record reading a secret or a network device (other reads are TIER 1)."""
        value = arg.value
        if value is None or not value:
            return
        if value.startswith("-"):
            if "=" not in value:
                return
            value = value.split("=", 1)[1]
        if GLOB_CHARS.intersection(value):
            if self._glob_secret(value, cwd):
                fx.setdefault("secret-path", arg.text)
            return
        path = self.resolve(Arg(value, value), cwd)
        if path is None:
            return
        where = self.location(path, value if value.startswith("/") else "")
        if where == "secret":
            fx.setdefault("secret-path", arg.text)
        elif where == "network":
            fx.setdefault("network-device", arg.text)

    def _glob_secret(self, value: str, cwd: str | None) -> bool:
        """True when a glob could match a secret (as the shell expands it: * skips dotfiles)."""
        name = value.rsplit("/", 1)[-1]
        if GLOB_CHARS.intersection(name):
            if any(_glob_hits(name, s) for s in self.secret_names if not GLOB_CHARS.intersection(s)):
                return True
        elif self._secret(name):
            return True
        base_text = glob_base(value) or "."
        base = self.resolve(Arg(base_text, base_text), cwd)
        if base is None:
            return False
        if self._secret(base):
            return True
        first = value[len(glob_base(value)) :].lstrip("/").split("/", 1)[0]
        prefix = base.rstrip("/") + "/"
        return any(
            s.startswith(prefix) and _glob_hits(first, s[len(prefix) :].split("/", 1)[0])
            for s in self.secrets
        )

    def apply_targets(
        self, name: str, args: tuple[Arg, ...], fx: dict[str, str], cwd: str | None, from_input: bool
    ) -> None:
        """The paths a command writes or deletes, from the policy's `targets` table."""
        spec = self.policy.targets.get(name)
        if spec is None:
            return
        words = [a.value if a.value is not None else a.text for a in args[1:]]
        flags = {w for w in words if w.startswith("-")} | {
            f"-{c}" for w in words if w.startswith("-") and not w.startswith("--") for c in w[1:]
        }
        if spec.when_flags and not flags.intersection(spec.when_flags):
            return
        if from_input:
            fx.setdefault("unresolved-target", f"{name}: paths read from input")
        operands = _operands(args[1:])
        chosen: list[tuple[str, Arg]] = []
        for kind, picked in (
            (spec.operands, operands),
            (spec.last, operands[-1:]),
            (spec.after_first, operands[1:]),
            (spec.all_but_last, operands[:-1]),
        ):
            if kind:
                chosen += [(kind, a) for a in picked]
        rest = list(args[1:])
        for i, arg in enumerate(rest):
            text = arg.value if arg.value is not None else arg.text
            for option, kind in spec.options:
                if text == option and i + 1 < len(rest):
                    chosen.append((kind, rest[i + 1]))
                elif text.startswith(option if option.endswith("=") else option + "="):
                    value = text.split("=", 1)[1] if not option.endswith("=") else text[len(option) :]
                    chosen.append((kind, Arg(value, value if arg.value is not None else None)))
        for kind, arg in chosen:
            self.target(fx, kind, arg, cwd)

    def git_dirs(self, dirs: tuple[Arg, ...], fx: dict[str, str], cwd: str | None) -> None:
        """git must work on this worktree: -C, --git-dir, --work-tree and cwd stay inside."""
        current = cwd
        if current is None or self.location(current) not in ("inside", "git"):
            fx.setdefault("git-elsewhere", current or "an unknown directory")
            return
        for arg in dirs:
            path = self.resolve(arg, current)
            if path is None or self.location(path) not in ("inside", "git"):
                fx.setdefault("git-elsewhere", arg.text)
                return
            current = path

    def cd(self, args: tuple[Arg, ...], cwd: str | None) -> str | None:
        """The working directory after cd, pushd or popd (None when it cannot be known)."""
        if args[0].value == "popd":
            return None
        ops = [a for a in args[1:] if not (a.value or a.text).startswith("-") or a.value == "-"]
        if not ops:
            return self.ctx.home if args[0].value == "cd" else None
        if ops[0].value == "-":
            return None
        return self.resolve(ops[0], cwd)

    def venv(self, arg: Arg, cwd: str | None) -> bool:
        """True when the command runs from a virtual environment inside the worktree."""
        if self.env_venv:
            return True
        if arg.value is None or "/" not in arg.value:
            return False
        path = self.resolve(arg, cwd)
        return path is not None and self._inside(path) and Path(path).parent.name == "bin"

    def is_venv_activate(self, arg: Arg) -> bool:
        """True for `source .venv/bin/activate` (it only sets variables)."""
        return arg.value is not None and arg.value.endswith("bin/activate")


def _glob_hits(pattern: str, name: str) -> bool:
    """Would the shell glob pattern match name? (A leading dot must be matched explicitly.)"""
    if name.startswith(".") and not pattern.startswith("."):
        return False
    return fnmatchcase(name, pattern)


def _under(path: str, roots: tuple[str, ...]) -> bool:
    """True when path is one of roots (fnmatch patterns) or inside one."""
    if not roots:
        return False
    parents = [path]
    while "/" in parents[-1].rstrip("/"):
        parents.append(parents[-1].rsplit("/", 1)[0] or "/")
    return any_match(roots, parents)


def _is_pathlike(pattern: str) -> bool:
    return "/" in pattern or pattern.startswith("~")


def _operands(args: tuple[Arg, ...]) -> list[Arg]:
    out: list[Arg] = []
    rest = False
    for arg in args:
        text = arg.value if arg.value is not None else arg.text
        if rest or text == "-" or not text.startswith("-"):
            out.append(arg)
        elif text == "--":
            rest = True
    return out
