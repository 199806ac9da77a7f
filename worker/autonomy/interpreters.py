"""What an interpreter runs: inline code (python -c, node -e, perl -e, awk '...'), a module
(python -m), a script file, a shell string (bash -c), or its standard input."""

from __future__ import annotations

from worker.autonomy.shellparse import Record
from worker.autonomy.unwrap import Arg, _is_option, _s, _t

SHELLS = frozenset({"bash", "sh", "zsh", "dash", "ksh", "mksh", "ash", "posh", "yash"})
INFO_FLAGS = frozenset({"--version", "-V", "--help", "-h", "-v", "version"})


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
