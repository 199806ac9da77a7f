"""What a command really runs: wrappers, interpreters, git's global options and find's actions.

Pure functions over argument lists: `wrapper()` finds the inner command of sudo, env, timeout,
nice, nohup, xargs, npx, uv run ... (or the shell string of bash -c, watch, flock -c);
`interpreter()` finds the program of python, node, perl, ruby, php, awk and the shells;
`git_call()` strips git's global options; `find_call()` splits find's roots, expression,
-exec commands and output files.
"""

from __future__ import annotations

from worker.shellparse import Record


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
SHELLS = frozenset({"bash", "sh", "zsh", "dash", "ksh", "mksh", "ash", "posh", "yash"})
INFO_FLAGS = frozenset({"--version", "-V", "--help", "-h", "-v", "version"})


def _is_option(text: str) -> bool:
    return text.startswith("-") and text != "-"


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


class Program(Record):
    """What an interpreter runs: inline code, a module, a script file, stdin, or nothing."""

    __slots__ = ("args", "code", "code_arg", "inplace", "kind", "script")

    def __init__(
        self,
        kind: str,  # "code", "module", "script", "stdin", "info", "shell"
        code: str | None = None,  # inline code; for "shell" the command string
        code_arg: Arg | None = None,
        script: Arg | None = None,
        args: tuple[Arg, ...] = (),  # module and its arguments, or the files after the program
        inplace: bool = False,  # perl/ruby -i: the files after the program are edited
    ) -> None:
        self.kind = kind
        self.code = code
        self.code_arg = code_arg
        self.script = script
        self.args = args
        self.inplace = inplace


class _Lang(Record):
    """How an interpreter takes its program."""

    __slots__ = (
        "code_opts",
        "inplace_letter",
        "module_opt",
        "prepend_opts",
        "program_operand",
        "script_opt",
        "valued",
    )  # fmt: skip

    def __init__(
        self,
        code_opts: frozenset[str],  # option (or cluster ending) whose value is inline code
        valued: frozenset[str] = frozenset(),
        module_opt: str = "",  # python -m
        script_opt: str = "",  # php -f, awk -f
        inplace_letter: str = "",  # perl/ruby -i
        prepend_opts: frozenset[str] = frozenset(),  # perl -M, ruby -r: modules that run code
        program_operand: bool = False,  # awk: the first operand is the program
    ) -> None:
        self.code_opts = code_opts
        self.valued = valued
        self.module_opt = module_opt
        self.script_opt = script_opt
        self.inplace_letter = inplace_letter
        self.prepend_opts = prepend_opts
        self.program_operand = program_operand


_NODE_VALUED = _s("-r", "--require", "--import", "--loader", "-C", "--input-type")
_AWK_VALUED = _s("-v", "-F", "--assign", "--field-separator")
LANGS: dict[str, _Lang] = {
    "python": _Lang(_s("-c"), _s("-W", "-X"), module_opt="-m"),
    "node": _Lang(_s("-e", "--eval", "-p", "--print"), _NODE_VALUED),
    "perl": _Lang(_s("-e", "-E"), _s("-I", "-x"), inplace_letter="i", prepend_opts=_s("-M", "-m")),
    "ruby": _Lang(_s("-e"), _s("-I", "-C"), inplace_letter="i", prepend_opts=_s("-r")),
    "php": _Lang(_s("-r"), _s("-c", "-d", "-z"), script_opt="-f"),
    "awk": _Lang(frozenset(), _AWK_VALUED, script_opt="-f", program_operand=True),
}


def language(name: str) -> str | None:
    """The interpreter family of a command name: python3.11 is python, gawk is awk."""
    if name in SHELLS:
        return "shell"
    for stem in ("python", "pypy"):
        if name.startswith(stem) and all(c.isdigit() or c == "." for c in name[len(stem) :]):
            return "python"
    if name in ("node", "nodejs"):
        return "node"
    if name in ("gawk", "mawk", "nawk", "awk", "busybox-awk"):
        return "awk"
    return name if name in LANGS else None


def interpreter(lang: str, args: tuple[Arg, ...]) -> Program:
    """The program an interpreter command runs (args: the words after its name)."""
    if lang == "shell":
        return _shell(args)
    spec = LANGS[lang]
    rest = list(args)
    code: list[str] = []
    code_arg: Arg | None = None
    inplace = False
    while rest and _is_option(_t(rest[0])):
        text = _t(rest.pop(0))
        if text == "--":
            break
        name, eq, inline = text.partition("=")
        if text in INFO_FLAGS and not code and not rest:
            return Program("info")
        if spec.module_opt and text == spec.module_opt and rest:
            return Program("module", args=tuple(rest))
        if spec.script_opt and text == spec.script_opt and rest:
            return Program("script", script=rest.pop(0), args=tuple(rest), inplace=inplace)
        opt = next((o for o in spec.prepend_opts if text.startswith(o)), None)
        if opt is not None:
            module = text[len(opt) :] or (_t(rest.pop(0)) if rest else "")
            code.append(f"use {module};")
            continue
        if spec.inplace_letter and not text.startswith("--") and spec.inplace_letter in text[1:]:
            inplace = True  # perl -pi -e ..., ruby -i.bak: the files that follow are edited
        code_opt = name if name in spec.code_opts else None
        if code_opt is None and not text.startswith("--") and len(text) > 1:
            cluster_end = f"-{text[-1]}"
            if cluster_end in spec.code_opts:
                code_opt = cluster_end
            elif f"-{text[1]}" in spec.code_opts and len(text) > 2:  # -cprint(1)
                code.append(text[2:])
                code_arg = Arg(text[2:], text[2:])
                continue
        if code_opt is not None:
            value = Arg(inline, inline) if eq else (rest.pop(0) if rest else Arg("", ""))
            code_arg = value
            code.append(value.value if value.value is not None else value.text)
            continue
        if name in spec.valued and not eq and rest:
            rest.pop(0)
    if code:
        return Program("code", "\n".join(code), code_arg, args=tuple(rest), inplace=inplace)
    if spec.program_operand and rest:
        program = rest.pop(0)
        return Program("code", _t(program), program, args=tuple(rest))
    if rest and _t(rest[0]) != "-":
        return Program("script", script=rest[0], args=tuple(rest[1:]), inplace=inplace)
    return Program("stdin")


def _t(arg: Arg) -> str:
    return arg.value if arg.value is not None else arg.text


def _shell(args: tuple[Arg, ...]) -> Program:
    rest = list(args)
    command_string = False
    info = True
    while rest and (_is_option(_t(rest[0])) or _t(rest[0]).startswith("+")):
        text = _t(rest.pop(0))
        if text == "--":
            break
        if text in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file") and rest:
            rest.pop(0)
        if not text.startswith("--") and "c" in text[1:]:
            command_string = True
        if text not in INFO_FLAGS and text != "-n":
            info = False
    if command_string:
        if not rest:
            return Program("stdin")
        arg = rest[0]
        return Program("shell", arg.value, arg, args=tuple(rest[1:]))
    if rest and _t(rest[0]) != "-":
        return Program("script", script=rest[0], args=tuple(rest[1:]))
    if args and info and not rest:
        return Program("info")
    return Program("stdin")


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
