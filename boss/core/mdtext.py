"""Jinja filters that put manifest values into generated Markdown and shell text safely."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from typing import Any

_LITERAL = re.compile(r"(?:[^\\.^$*+?{}\[\]|()]|\\[^A-Za-z0-9])+")


def oneline(text: object) -> str:
    """text with every run of whitespace (newlines included) turned into one space."""
    return " ".join(str(text).split())


def code(text: object) -> str:
    """An inline code span showing text literally, whatever backticks it holds."""
    t = oneline(text)
    if not t:
        return "(empty)"
    longest = max((len(r) for r in re.findall(r"`+", t)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if t[0] == "`" or t[-1] == "`" else ""
    return f"{ticks}{pad}{t}{pad}{ticks}"


def cell(text: object) -> str:
    """text made safe for one cell of a Markdown table."""
    return oneline(text).replace("|", "\\|")


def fence(text: object, lang: str = "") -> str:
    """A fenced code block holding text verbatim (the fence outgrows any backticks inside)."""
    body = str(text).rstrip("\n")
    longest = max((len(r) for r in re.findall(r"`{3,}", body)), default=2)
    ticks = "`" * (longest + 1)
    return f"{ticks}{lang}\n{body}\n{ticks}"


def mermaid(text: object) -> str:
    """text for a quoted Mermaid label: entity codes for the characters Mermaid reads."""
    t = oneline(text)
    for char, entity in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"), ("`", "#96;")):
        t = t.replace(char, entity)
    return t


def _unescape(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal)


def scope_words(rx: str) -> str:
    """What a scope regex allows, in plain words (Markdown)."""
    from boss.core.overlaps import simple_form  # the rest of this module is on a worker's path too

    form = simple_form(rx)
    if form is not None:
        kind, lit = form
        if kind == "exact":
            return f"the file {code(lit)}"
        if not lit:
            return "every path"
        if lit.endswith("/"):
            return f"everything under {code(lit)}"
        return f"every path starting with {code(lit)}"
    if (m := _LITERAL.fullmatch(rx.removesuffix("$"))) and rx.endswith("$"):
        return f"every path ending in {code(_unescape(m.group(0)))}"
    if _LITERAL.fullmatch(rx):
        return f"every path containing {code(_unescape(rx))}"
    return f"every path the regex {code(rx)} matches"


FILTERS: dict[str, Callable[..., Any]] = {
    "shquote": shlex.quote,
    "oneline": oneline,
    "code": code,
    "cell": cell,
    "fence": fence,
    "mermaid": mermaid,
    "scope_words": scope_words,
}
