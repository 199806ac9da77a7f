"""A shell command line as a small tree the classifier walks, built with bashlex (a real parser).

`parse(text)` returns a `Group` of `Command`s (simple commands), nested `Group`s (lists,
pipelines, subshells, brace groups, loops and conditionals) and `Function` definitions. Each
word keeps what the shell will expand in it: parameters, a leading tilde, and the command and
process substitutions inside it, parsed in turn. What bashlex cannot parse raises
`ShellSyntaxError`; the classifier treats that as TIER 3. A line with no shell syntax at all
(`git status`) is split into words without loading bashlex (`worker.autonomy.bashlex_loader`).
"""

from __future__ import annotations

from worker.autonomy.bashlex_loader import QUOTED_HEREDOCS, load_bashlex

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the guard 3 ms
if TYPE_CHECKING:
    from typing import Any

MAX_LENGTH = 10_000  # longer command lines are not parsed (Claude Code prompts on them too)


class ShellSyntaxError(Exception):
    """The command line cannot be parsed; the message says why."""


class Record:
    """A plain record class: dataclasses cost the guard about 0.5 ms each to define at import."""

    __slots__: tuple[str, ...] = ()

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__
        )

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, k) for k in self.__slots__))


class Word(Record):
    """One shell word: its text after quote removal and the expansions the shell will do."""

    __slots__ = ("params", "process", "substitutions", "text", "tilde")

    def __init__(
        self,
        text: str,
        params: tuple[str, ...] = (),  # parameter names expanded in it ($HOME -> HOME)
        tilde: bool = False,
        substitutions: tuple[Group, ...] = (),  # $(...), `...`, <(...), >(...)
        process: bool = False,  # the word is a process substitution <(...) or >(...)
    ) -> None:
        self.text = text
        self.params = params
        self.tilde = tilde
        self.substitutions = substitutions
        self.process = process

    @property
    def dynamic(self) -> bool:
        """True when the shell computes part of the word at run time."""
        return bool(self.params or self.substitutions)


class Redirect(Record):
    """A redirection: `op` as bashlex names it, a file target (None for `2>&1`), a heredoc."""

    __slots__ = ("fd", "heredoc", "heredoc_quoted", "op", "target")

    def __init__(
        self,
        op: str,
        fd: int | None,
        target: Word | None,
        heredoc: str | None = None,
        heredoc_quoted: bool = False,
    ) -> None:
        self.op = op
        self.fd = fd
        self.target = target
        self.heredoc = heredoc
        self.heredoc_quoted = heredoc_quoted


class Command(Record):
    """A simple command: assignments, words and redirections; `stdin` is "pipe" after a |."""

    __slots__ = ("assignments", "redirects", "stdin", "text", "words")

    def __init__(
        self,
        text: str,
        assignments: tuple[Word, ...] = (),
        words: tuple[Word, ...] = (),
        redirects: tuple[Redirect, ...] = (),
        stdin: str = "",
    ) -> None:
        self.text = text
        self.assignments = assignments
        self.words = words
        self.redirects = redirects
        self.stdin = stdin


class Group(Record):
    """Commands run in order; `isolated` when they run in their own shell (cd does not leak)."""

    __slots__ = ("isolated", "items")

    def __init__(self, items: tuple[Node, ...] = (), isolated: bool = False) -> None:
        self.items = items
        self.isolated = isolated


class Function(Record):
    """A function definition (its body runs only where the function is called)."""

    __slots__ = ("body", "name", "text")

    def __init__(self, name: str, body: Group, text: str) -> None:
        self.name = name
        self.body = body
        self.text = text


Node = Command | Group | Function


class _Builder:
    def __init__(self, source: str) -> None:
        self.source = source
        self.quoted_heredocs: set[int] = set()

    def text(self, node: Any) -> str:
        start, end = node.pos
        return self.source[start:end].strip()

    def word(self, node: Any) -> Word:
        params: list[str] = []
        subs: list[Group] = []
        tilde = process = False
        for part in getattr(node, "parts", []) or []:
            kind = part.kind
            if kind == "parameter":
                params.append(_param_name(getattr(part, "value", "")))
            elif kind == "tilde":
                tilde = True
            elif kind in ("commandsubstitution", "processsubstitution"):
                process = process or kind == "processsubstitution"
                subs.append(Group((self.node(part.command, piped=False),), isolated=True))
        return Word(node.word, tuple(params), tilde, tuple(subs), process)

    def redirect(self, node: Any) -> Redirect:
        fd = node.input if isinstance(node.input, int) else None
        target = node.output
        heredoc = getattr(node, "heredoc", None)
        if heredoc is not None:
            body = heredoc.value.rsplit("\n", 1)[0] if "\n" in heredoc.value else ""
            quoted = id(node) in self.quoted_heredocs
            return Redirect(node.type, fd, None, body, quoted)
        if isinstance(target, int) or target is None:
            return Redirect(node.type, fd, None)
        return Redirect(node.type, fd, self.word(target))

    def node(self, node: Any, *, piped: bool) -> Node:
        kind = node.kind
        if kind == "command":
            return self.command(node, piped)
        if kind == "list":
            items = [p for p in node.parts if p.kind not in ("operator", "reservedword")]
            return Group(tuple(self.node(p, piped=piped) for p in items))
        if kind == "pipeline":
            elements = [p for p in node.parts if p.kind not in ("pipe", "reservedword")]
            return Group(
                tuple(
                    Group((self.node(p, piped=piped or i > 0),), isolated=len(elements) > 1)
                    for i, p in enumerate(elements)
                )
            )
        if kind == "compound":
            return self.compound(node, piped)
        if kind in ("for", "while", "until", "if"):
            return self.clause(node, piped)
        if kind == "function":
            name = next((p.word for p in node.parts if p.kind == "word"), "")
            body = next(p for p in node.parts if p.kind == "compound")
            return Function(name, Group((self.node(body, piped=False),)), self.text(node))
        msg = f"unsupported shell construct: {kind}"
        raise ShellSyntaxError(msg)

    def command(self, node: Any, piped: bool) -> Command:
        assignments, words, redirects = [], [], []
        for part in node.parts:
            if part.kind == "assignment":
                assignments.append(self.word(part))
            elif part.kind == "word":
                words.append(self.word(part))
            elif part.kind == "redirect":
                redirects.append(self.redirect(part))
        return Command(
            self.text(node),
            tuple(assignments),
            tuple(words),
            tuple(redirects),
            "pipe" if piped else "",
        )

    def compound(self, node: Any, piped: bool) -> Group:
        words = [p.word for p in node.list if p.kind == "reservedword"]
        inner = [self.node(p, piped=piped) for p in node.list if p.kind != "reservedword"]
        redirects = tuple(self.redirect(r) for r in getattr(node, "redirects", []) or [])
        if redirects:
            inner.append(Command(self.text(node), redirects=redirects))
        return Group(tuple(inner), isolated=bool(words) and words[0] == "(")

    def clause(self, node: Any, piped: bool) -> Group:
        items: list[Node] = []
        for part in node.parts:
            if part.kind == "word":  # the words a for loop iterates over: run their substitutions
                items.extend(self.word(part).substitutions)
            elif part.kind not in ("reservedword", "operator"):
                items.append(self.node(part, piped=piped))
        return Group(tuple(items))


def _param_name(value: str) -> str:
    """The variable a parameter expansion reads: HOME in ${HOME:-x}, # and @ kept as they are."""
    value = value.lstrip("!#")
    name = ""
    for ch in value:
        if ch.isalnum() or ch == "_":
            name += ch
        else:
            break
    return name or value[:1] or "?"


def parse(text: str) -> Group:
    """The command line as a Group; ShellSyntaxError when bashlex cannot parse it."""
    if len(text) > MAX_LENGTH:
        msg = f"command longer than {MAX_LENGTH} characters"
        raise ShellSyntaxError(msg)
    if all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()):
        return Group()  # blank or only comments (which bashlex fails on)
    plain = _plain(text)
    if plain is not None:
        return plain
    bashlex = load_bashlex()
    builder = _Builder(text)
    QUOTED_HEREDOCS.append(builder.quoted_heredocs)
    try:
        trees = bashlex.parse(text)
        return Group(tuple(builder.node(t, piped=False) for t in trees))
    except ShellSyntaxError:
        raise
    except RecursionError as e:
        msg = "nested too deeply"
        raise ShellSyntaxError(msg) from e
    except Exception as e:  # bashlex raises ParsingError, NotImplementedError, IndexError ...
        rest = _without_time(text)
        if isinstance(e, NotImplementedError) and rest is not None:
            return parse(rest)  # bashlex cannot parse the `time` keyword; it only measures
        msg = str(e).split("\n", 1)[0] or type(e).__name__
        if isinstance(e, NotImplementedError):
            msg = f"not supported by the parser: {msg}"
        raise ShellSyntaxError(msg) from e
    finally:
        QUOTED_HEREDOCS.pop()


# Characters with no meaning to the shell: a line of only these is words split on blanks, so
# `git status` or `pytest -q tests/x` need no parser (and the guard need not import bashlex).
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \t._/-=:,@+%")
_RESERVED = frozenset({"if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done",
                       "case", "esac", "function", "select", "time", "coproc", "in"})  # fmt: skip


def _plain(text: str) -> Group | None:
    """The IR of a line with no shell syntax at all (None when it has some: bashlex decides)."""
    if not _PLAIN.issuperset(text):
        return None
    words = text.split()
    count = 0
    while count < len(words) and _assignment(words[count]):
        count += 1
    if count < len(words) and words[count] in _RESERVED:
        return None
    command = Command(
        " ".join(words),
        tuple(Word(w) for w in words[:count]),
        tuple(Word(w) for w in words[count:]),
    )
    return Group((command,))


def _assignment(word: str) -> bool:
    name, eq, _ = word.partition("=")
    return bool(eq) and bool(name) and not name[0].isdigit() and name.replace("_", "a").isalnum()


def _without_time(text: str) -> str | None:
    """The command line without a leading `time` or `time -p` keyword, None when it has none."""
    words = text.lstrip().split(None, 2)
    if not words or words[0] != "time" or len(words) < 2:
        return None
    rest = text.lstrip()[len("time") :].lstrip()
    if rest.startswith("-p ") or rest == "-p":
        rest = rest[2:].lstrip()
    return rest or None
