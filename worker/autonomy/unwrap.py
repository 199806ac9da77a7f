"""What a command really runs: wrappers, git's global options and find's actions.

Pure functions over argument lists: `wrapper()` finds the inner command of sudo, env, timeout,
nice, nohup, xargs, npx, uv run ... (or the shell string of watch, flock -c, env -S);
`git_call()` strips git's global options; `find_call()` splits find's roots, expression,
-exec commands and output files. Interpreters (python -c, bash -c ...) are in
`worker.autonomy.interpreters`.
"""

from __future__ import annotations

from worker.autonomy.shellparse import Record


class Arg(Record):
    """One argument: its literal text and its value (None when the shell computes it)."""

    __slots__ = ("text", "value")

    def __init__(self, text: str, value: str | None) -> None:
        self.text = text
        self.value = value


class Layer(Record):
    """What a wrapper runs: an inner argv, or a shell string (`script`)."""

    __slots__ = ("args", "cwd", "from_input", "script")

    def __init__(
        self,
        args: tuple[Arg, ...] = (),
        script: Arg | None = None,
        from_input: bool = False,  # xargs: more operands come from standard input
        cwd: Arg | None = None,  # the directory the inner command runs in (env -C, direnv exec)
    ) -> None:
        self.args = args
        self.script = script
        self.from_input = from_input
        self.cwd = cwd


class _Spec(Record):
    """How to find a wrapper's inner command."""

    __slots__ = (
        "assignments",
        "cwd_opts",
        "cwd_positional",
        "default",
        "from_input",
        "joined",
        "lookup",
        "script_opts",
        "skip",
        "until_dashdash",
        "valued",
    )  # fmt: skip

    def __init__(
        self,
        valued: frozenset[str] = frozenset(),  # options that take the next word as their value
        skip: int = 0,  # positional words before the inner command (timeout's duration)
        script_opts: frozenset[str] = frozenset(),  # options whose value is a shell string
        cwd_opts: frozenset[str] = frozenset(),
        cwd_positional: bool = False,
        from_input: bool = False,
        joined: bool = False,  # the remaining words are one shell string (watch)
        default: tuple[str, ...] = (),  # what runs when no command follows (xargs: echo)
        assignments: bool = False,  # NAME=value words may precede the command (env)
        until_dashdash: bool = False,  # the command follows `--` (mise exec)
        lookup: frozenset[str] = frozenset(),  # options that make it run nothing (command -v)
    ) -> None:
        self.valued = valued
        self.skip = skip
        self.script_opts = script_opts
        self.cwd_opts = cwd_opts
        self.cwd_positional = cwd_positional
        self.from_input = from_input
        self.joined = joined
        self.default = default
        self.assignments = assignments
        self.until_dashdash = until_dashdash
        self.lookup = lookup


def _s(*words: str) -> frozenset[str]:
    return frozenset(words)


_XARGS = _s("-I", "-L", "-n", "-P", "-s", "-d", "-E", "-a", "--arg-file", "--delimiter",
            "--max-args", "--max-procs", "--max-lines", "--replace", "--eof", "--max-chars",
            "--process-slot-var")  # fmt: skip
WRAPPERS: dict[tuple[str, ...], _Spec] = {
    ("sudo",): _Spec(
        _s(
            "-u",
            "-g",
            "-C",
            "-D",
            "-h",
            "-p",
            "-r",
            "-t",
            "-U",
            "-T",
            "--user",
            "--group",
            "--chdir",
            "--prompt",
            "--role",
            "--type",
            "--host",
            "--close-from",
            "--other-user",
        ),
        cwd_opts=_s("-D", "--chdir"),
    ),
    ("doas",): _Spec(_s("-a", "-C", "-u")),
    ("env",): _Spec(
        _s("-u", "--unset", "-C", "--chdir", "-S", "--split-string"),
        script_opts=_s("-S", "--split-string"),
        cwd_opts=_s("-C", "--chdir"),
        assignments=True,
    ),
    ("timeout",): _Spec(_s("-s", "--signal", "-k", "--kill-after"), skip=1),
    ("nice",): _Spec(_s("-n", "--adjustment")),
    ("nohup",): _Spec(),
    ("time",): _Spec(_s("-f", "--format", "-o", "--output")),
    ("stdbuf",): _Spec(_s("-i", "-o", "-e")),
    ("command",): _Spec(lookup=_s("-v", "-V")),
    ("builtin",): _Spec(),
    ("exec",): _Spec(_s("-a")),
    ("setsid",): _Spec(),
    ("ionice",): _Spec(_s("-c", "-n", "-p", "-P", "-u", "--class", "--classdata")),
    ("chronic",): _Spec(),
    ("unbuffer",): _Spec(),
    ("flock",): _Spec(
        _s("-w", "--wait", "--timeout", "-E", "--conflict-exit-code"),
        skip=1,
        script_opts=_s("-c", "--command"),
    ),
    ("watch",): _Spec(_s("-n", "--interval", "-q", "--equexit"), joined=True),
    ("xargs",): _Spec(_XARGS, from_input=True, default=("echo",)),
    ("npx",): _Spec(_s("-p", "--package", "--cache"), script_opts=_s("-c", "--call")),
    ("pnpx",): _Spec(_s("-p", "--package")),
    ("bunx",): _Spec(_s("-p", "--package")),
    ("uvx",): _Spec(_s("--from", "--with", "--python", "-p", "--with-requirements", "--index")),
    ("npm", "exec"): _Spec(_s("-p", "--package", "-w", "--workspace"), script_opts=_s("-c", "--call")),
    ("pnpm", "dlx"): _Spec(_s("-p", "--package")),
    ("pnpm", "exec"): _Spec(),
    ("yarn", "dlx"): _Spec(_s("-p", "--package")),
    ("yarn", "exec"): _Spec(),
    ("uv", "run"): _Spec(
        _s(
            "--with",
            "--python",
            "-p",
            "--package",
            "--project",
            "--directory",
            "--extra",
            "--group",
            "--index",
            "--env-file",
            "--with-requirements",
        ),
        cwd_opts=_s("--directory"),
    ),
    ("uv", "tool", "run"): _Spec(_s("--from", "--with", "--python", "-p")),
    ("poetry", "run"): _Spec(_s("-C", "--directory", "-P", "--project"), cwd_opts=_s("-C", "--directory")),
    ("pipenv", "run"): _Spec(),
    ("pdm", "run"): _Spec(_s("-p", "--project")),
    ("hatch", "run"): _Spec(),
    ("rye", "run"): _Spec(),
    ("conda", "run"): _Spec(_s("-n", "--name", "-p", "--prefix", "--cwd"), cwd_opts=_s("--cwd")),
    ("mamba", "run"): _Spec(_s("-n", "--name", "-p", "--prefix", "--cwd"), cwd_opts=_s("--cwd")),
    ("bundle", "exec"): _Spec(),
    ("direnv", "exec"): _Spec(skip=1, cwd_positional=True),
    ("mise", "exec"): _Spec(until_dashdash=True),
    ("mise", "x"): _Spec(until_dashdash=True),
    ("devbox", "run"): _Spec(),
}


def _is_option(text: str) -> bool:
    return text.startswith("-") and text != "-"


def _t(arg: Arg) -> str:
    return arg.value if arg.value is not None else arg.text


def wrapper_key(args: tuple[Arg, ...]) -> tuple[str, ...] | None:
    """The WRAPPERS key that args (the whole command, name first) start with, if any."""
    words = tuple(a.value or "" for a in args[:3])
    for n in (3, 2, 1):
        if words[:n] in WRAPPERS:
            return words[:n]
    return None


def wrapper(args: tuple[Arg, ...]) -> Layer | None:
    """The inner command of a wrapper command (name first); None when it is not one."""
    key = wrapper_key(args)
    if key is None:
        return None
    spec = WRAPPERS[key]
    rest = list(args[len(key) :])
    cwd: Arg | None = None
    skipped = 0
    while rest:
        word = rest[0]
        text = word.value if word.value is not None else word.text
        if spec.until_dashdash:
            rest.pop(0)
            if text == "--":
                break
            continue
        if text == "--":
            rest.pop(0)
            break
        if text in spec.lookup:
            return None
        name, eq, inline = text.partition("=")
        if _is_option(text) and (name in spec.script_opts or text in spec.script_opts):
            rest.pop(0)
            script = Arg(inline, inline) if eq else (rest.pop(0) if rest else None)
            return Layer(script=script, cwd=cwd) if script is not None else None
        if _is_option(text):
            rest.pop(0)
            value = Arg(inline, inline) if eq else None
            if not eq and (text in spec.valued) and rest:
                value = rest.pop(0)
            if value is not None and (name in spec.cwd_opts or text in spec.cwd_opts):
                cwd = value
            continue
        if spec.assignments and "=" in text and not text.startswith("="):
            rest.pop(0)
            continue
        if skipped < spec.skip:
            skipped += 1
            popped = rest.pop(0)
            if spec.cwd_positional:
                cwd = popped
            continue
        break
    if spec.joined and rest:
        joined = " ".join(a.text for a in rest)
        dynamic = any(a.value is None for a in rest)
        return Layer(script=Arg(joined, None if dynamic else joined), cwd=cwd)
    if not rest:
        if spec.default:
            return Layer(tuple(Arg(w, w) for w in spec.default), from_input=spec.from_input)
        return None
    return Layer(tuple(rest), from_input=spec.from_input, cwd=cwd)


class GitCall(Record):
    """git with its global options taken out."""

    __slots__ = ("args", "config", "dirs")

    def __init__(
        self,
        args: tuple[Arg, ...],  # "git", the subcommand and its arguments
        dirs: tuple[Arg, ...] = (),  # -C, --git-dir, --work-tree values
        config: tuple[str, ...] = (),  # -c keys, lowercased; "config-env" and "exec-path" too
    ) -> None:
        self.args = args
        self.dirs = dirs
        self.config = config


_GIT_VALUED = _s("-C", "-c", "--git-dir", "--work-tree", "--namespace", "--config-env",
                 "--exec-path", "--super-prefix", "--attr-source", "--list-cmds")  # fmt: skip


def git_call(args: tuple[Arg, ...]) -> GitCall:
    """Strip git's global options (args: the whole command, "git" first)."""
    rest = list(args[1:])
    dirs: list[Arg] = []
    config: list[str] = []
    while rest and _is_option(_t(rest[0])):
        text = _t(rest.pop(0))
        name, eq, inline = text.partition("=")
        if name not in _GIT_VALUED:
            continue
        value = Arg(inline, inline) if eq else (rest.pop(0) if rest else Arg("", ""))
        if name in ("-C", "--git-dir", "--work-tree"):
            dirs.append(value)
        elif name == "-c":
            config.append(_t(value).split("=", 1)[0].lower())
        elif name in ("--config-env", "--exec-path"):
            config.append(name.lstrip("-"))
    return GitCall((args[0], *rest), tuple(dirs), tuple(config))


class FindCall(Record):
    """find split into roots, its expression, -exec commands and files it writes."""

    __slots__ = ("delete", "execs", "expression", "filtered", "inner_cwd", "roots", "writes")

    def __init__(
        self,
        roots: tuple[Arg, ...],
        expression: tuple[Arg, ...],
        execs: tuple[tuple[Arg, ...], ...] = (),
        writes: tuple[Arg, ...] = (),
        delete: bool = False,
        filtered: bool = False,  # the expression selects by name or path
        inner_cwd: tuple[bool, ...] = (),  # -execdir: the command runs in the found directory
    ) -> None:
        self.roots = roots
        self.expression = expression
        self.execs = execs
        self.writes = writes
        self.delete = delete
        self.filtered = filtered
        self.inner_cwd = inner_cwd


_FIND_EXEC = _s("-exec", "-execdir", "-ok", "-okdir")
_FIND_WRITE = _s("-fprint", "-fprint0", "-fls")
_FIND_FILTERS = _s("-name", "-iname", "-path", "-ipath", "-regex", "-iregex", "-wholename",
                   "-iwholename", "-newer", "-mtime", "-mmin", "-size", "-empty", "-user")  # fmt: skip


def find_call(args: tuple[Arg, ...]) -> FindCall:
    """Split a find command (args: the whole command, "find" first)."""
    rest = list(args[1:])
    while rest and _t(rest[0]) in ("-H", "-L", "-P", "-O0", "-O1", "-O2", "-O3"):
        rest.pop(0)
    roots: list[Arg] = []
    while rest and not _is_option(_t(rest[0])) and _t(rest[0]) not in ("(", "!", ","):
        roots.append(rest.pop(0))
    expression: list[Arg] = []
    execs: list[tuple[Arg, ...]] = []
    in_dir: list[bool] = []
    writes: list[Arg] = []
    delete = filtered = False
    while rest:
        word = rest.pop(0)
        text = _t(word)
        if text in _FIND_EXEC:
            inner: list[Arg] = []
            while rest and _t(rest[0]) not in (";", "+"):
                inner.append(rest.pop(0))
            if rest:
                rest.pop(0)
            execs.append(tuple(inner))
            in_dir.append(text in ("-execdir", "-okdir"))
            expression.append(word)
            continue
        expression.append(word)
        if text == "-delete":
            delete = True
        elif text in _FIND_FILTERS:
            filtered = True
        elif text in _FIND_WRITE and rest:
            writes.append(rest.pop(0))
        elif text == "-fprintf" and len(rest) >= 2:
            writes.append(rest.pop(0))
            rest.pop(0)
    return FindCall(
        tuple(roots) or (Arg(".", "."),), tuple(expression), tuple(execs), tuple(writes),
        delete, filtered, tuple(in_dir),
    )  # fmt: skip
