"""The Markdown task file of `boss plan --from FILE.md` (SPEC section 3): plans written by hand.

    # Auth and UI                        the plan's title (its slug names the plan)
    Add a login flow and a settings page.     the task: the section's text
    - integration test: pytest -q        a list whose first item is a known field sets fields
    ## W1: Auth module                   a worker: `## ID: title`
    - scope: ^src/auth/, ^tests/auth/    its leading list sets its fields
    Implement login() ...                the rest of the section: its instructions, verbatim

Keys are case-insensitive; spaces, dashes and underscores are alike (`depends on`,
`depends_on`). An unknown key in a field list is an error (typos must not turn into text);
after a blank line the list goes on only with known keys, so instructions may start with a
list of their own. List values are separated by a comma and a space (`^a/, ^b/`), or written as
a nested list; wrap a value in backticks to keep it literal. Headings inside code fences are
text. `parse` returns the raw manifest; `boss.core.manifest.from_dict` validates it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from boss.core.errors import InputError, ManifestError
from boss.core.manifest import NUMBER_SETTINGS, SETTING_DEFAULTS, WORKER_KEYS, slugify
from boss.core.manifest_rules import control_problem

if TYPE_CHECKING:
    from pathlib import Path

_HEADING = re.compile(r"(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"[ ]{0,3}(`{3,}|~{3,})")
_ITEM = re.compile(r"[-*+][ \t]+(.*)")
_SUBITEM = re.compile(r"[ \t]+[-*+][ \t]+(.*)")
_FIELD = re.compile(r"([A-Za-z][A-Za-z0-9 _-]{0,40}?)[ \t]*:[ \t]*(.*)$")
_CODE = re.compile(r"(`+)(.+)\1", re.DOTALL)
_LIST_SPLIT = re.compile(r",\s+(?=(?:[^`]*`[^`]*`)*[^`]*$)")  # a comma + space outside `code`

TOP_FIELDS = ("version", "plan", "task", "base", "base_commit", "integration_test", "setup", "copy")
WORKER_FIELDS = tuple(k for k in WORKER_KEYS if k not in ("id", "title"))
LIST_FIELDS = ("scope", "depends_on", "copy")
BOOL_FIELDS = ("write_test", *(k for k, v in SETTING_DEFAULTS.items() if isinstance(v, bool)))
INT_FIELDS = ("version", *(k for k, v in SETTING_DEFAULTS.items() if type(v) is int))


@dataclass
class _Section:
    """A heading and the lines below it, each with its 1-based line number."""

    heading: str
    line: int
    body: list[tuple[int, str]] = field(default_factory=list)


def _key(text: str) -> str:
    return re.sub(r"[\s_-]+", "_", text.strip().lower())


def _near(key: str, allowed: tuple[str, ...]) -> str | None:
    """The field a misspelt key was meant to be (`integraton test`), if it is that close."""
    import difflib

    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.8)
    return close[0] if close else None


def _field_like(key: str, allowed: tuple[str, ...]) -> bool:
    """A key that is a field, or so close to one that it must be a typo, not text."""
    return key in allowed or _near(key, allowed) is not None


def _unquote(text: str) -> str:
    """text without the backticks of a code span wrapping all of it (`pytest -q`)."""
    text = text.strip()
    m = _CODE.fullmatch(text)
    if m is None or re.search(rf"(?<!`){m.group(1)}(?!`)", m.group(2)):
        return text
    inner = m.group(2)
    if len(inner) > 2 and inner[0] == inner[-1] == " " and inner.strip():
        inner = inner[1:-1]
    return inner


def _value(key: str, inline: str, items: list[str]) -> Any:
    if key in LIST_FIELDS:
        parts = [p for p in _LIST_SPLIT.split(inline) if p.strip()] + items
        if key == "depends_on":
            parts = [q for p in parts for q in re.split(r"[\s,]+", _unquote(p)) if q]
        return [_unquote(p) for p in parts]
    text = _unquote(inline if not items else ", ".join(items))
    if key in BOOL_FIELDS and text.lower() in ("true", "yes", "on", "false", "no", "off"):
        return text.lower() in ("true", "yes", "on")
    if key in INT_FIELDS and re.fullmatch(r"[0-9]{1,18}", text):
        return int(text)
    if key in NUMBER_SETTINGS and re.fullmatch(r"\$?[0-9]{1,12}(\.[0-9]{1,9})?", text):
        return float(text.lstrip("$"))
    return text


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def fail(self, line: int, where: str, problem: str) -> None:
        self.problems.append(f"{self.source}:{line}: {where}: {problem}")

    def sections(self, text: str) -> list[_Section]:
        sections: list[_Section] = []
        fence = ""
        for n, line in enumerate(text.splitlines(), 1):
            opened = _FENCE.match(line)
            if fence:
                if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                    fence = ""
            elif opened:
                fence = opened.group(1)
            elif (h := _HEADING.match(line)) and len(h.group(1)) <= 2:
                level = len(h.group(1))
                if level == 1 and sections:
                    self.fail(n, "plan", "a second `# ` heading; a plan has one `# Title`")
                elif level == 2 and not sections:
                    self.fail(n, "plan", "a worker (`## `) before the plan's `# Title` heading")
                else:
                    sections.append(_Section(h.group(2).strip(), n))
                continue
            if sections:
                sections[-1].body.append((n, line))
            elif line.strip():
                self.fail(n, "plan", "text before the plan's `# Title` heading")
        return sections

    def fields(
        self, body: list[tuple[int, str]], start: int, allowed: tuple[str, ...], where: str
    ) -> tuple[dict[str, Any], int]:
        """Parse the list block at body[start]; its fields and the index after it."""
        found: dict[str, Any] = {}
        i = start
        while i < len(body):
            n, line = body[i]
            item = _ITEM.match(line)
            if not item:
                # After a blank line the list goes on only with another known field: a list
                # that starts the free text (instructions, task) is not a typo.
                j = i
                while j < len(body) and not body[j][1].strip():
                    j += 1
                nxt = _ITEM.match(body[j][1]) if j < len(body) and not line.strip() else None
                known = _FIELD.match(nxt.group(1).strip()) if nxt else None
                if known is None or not _field_like(_key(known.group(1)), allowed):
                    break
                i += 1
                continue
            i += 1
            items: list[str] = []
            inline_extra: list[str] = []
            while i < len(body) and body[i][1][:1] in (" ", "\t") and body[i][1].strip():
                sub = _SUBITEM.match(body[i][1])
                (items if sub else inline_extra).append(sub.group(1) if sub else body[i][1])
                i += 1
            m = _FIELD.match(item.group(1).strip())
            key = _key(m.group(1)) if m else ""
            if key not in allowed:
                what = _key(m.group(1)) if m else item.group(1).strip()[:40]
                guess = _near(key, allowed) if key else None
                hint = f"did you mean {guess}? " if guess else ""
                self.fail(
                    n,
                    f"{where} field {what}",
                    f"unknown field ({hint}allowed: {', '.join(allowed)}); write the list as "
                    "`- key: value`, and start free text with a sentence, not a list",
                )
                continue
            if key in found:
                self.fail(n, f"{where} field {key}", "given twice")
            inline = " ".join([m.group(2) if m else "", *inline_extra]).strip()
            found[key] = _value(key, inline, [item.strip() for item in items])
        return found, i

    def top(self, section: _Section) -> dict[str, Any]:
        allowed = (*TOP_FIELDS, *SETTING_DEFAULTS)
        raw: dict[str, Any] = {}
        text: list[str] = []
        body, i = section.body, 0
        while i < len(body):
            item = _ITEM.match(body[i][1])
            m = _FIELD.match(item.group(1).strip()) if item else None
            if m and _field_like(_key(m.group(1)), allowed):
                found, i = self.fields(body, i, allowed, "plan")
                for key in found.keys() & raw.keys():
                    self.fail(body[i - 1][0], f"plan field {key}", "given twice")
                raw.update(found)
            else:
                text.append(body[i][1])
                i += 1
        task = _join(text)
        if task and raw.get("task"):
            self.fail(section.line, "plan field task", "given both as a field and as text")
        raw.setdefault("task", task or section.heading)
        return raw

    def worker(self, section: _Section) -> dict[str, Any]:
        m = re.fullmatch(r"(\S+?)[ \t]*:[ \t]*(.*)", section.heading)
        if m is None:
            self.fail(section.line, f"worker {section.heading[:40]!r}", "heading must be `## ID: title`")
            return {}
        wid, title = m.group(1), m.group(2).strip()
        body, start = section.body, 0
        while start < len(body) and not body[start][1].strip():
            start += 1
        found: dict[str, Any] = {}
        lead = _ITEM.match(body[start][1]) if start < len(body) else None
        if lead and _FIELD.match(lead.group(1).strip()):
            found, start = self.fields(body, start, WORKER_FIELDS, f"worker {wid}")
        instructions = _join([line for _, line in body[start:]])
        if instructions and found.get("instructions"):
            self.fail(section.line, f"worker {wid} field instructions", "given both as a field and as text")
        return {"id": wid, "title": title, **found, "instructions": found.get("instructions") or instructions}


def _join(lines: list[str]) -> str:
    """Lines as text, without the blank lines around them; verbatim otherwise."""
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return "\n".join(line.rstrip() for line in lines)


def parse(text: str, source: str) -> dict[str, Any]:
    """The raw manifest a Markdown plan describes (version, plan, task, fields, workers).

    Raises ManifestError with one `FILE:LINE: where: problem` line per problem; the result
    still needs `from_dict` (and a base) to become a Manifest.
    """
    p = _Parser(source)
    # Line by line first, counted as an editor counts them (splitlines would also break at
    # some of these characters): a NUL byte or a terminal escape belongs in no plan.
    for n, line in enumerate(text.split("\n"), 1):
        problem = control_problem(line.replace("\t", " ").removesuffix("\r"))
        if problem:
            p.fail(n, "plan", problem)
    if p.problems:
        raise ManifestError("\n".join(p.problems), p.problems)
    sections = p.sections(text)
    if not sections:
        p.fail(1, "plan", "no `# Title` heading: the first `# ` heading names the plan")
        raise ManifestError("\n".join(p.problems), p.problems)
    title = sections[0]
    fields = p.top(title)
    raw: dict[str, Any] = {"version": fields.pop("version", 1)}
    raw["plan"] = fields.pop("plan", None) or slugify(title.heading)
    raw.update({k: v for k, v in fields.items() if k in TOP_FIELDS})
    defaults = {k: v for k, v in fields.items() if k in SETTING_DEFAULTS}
    if defaults:
        raw["defaults"] = defaults
    raw["workers"] = [p.worker(s) for s in sections[1:]]
    if not sections[1:]:
        p.fail(title.line, "plan field workers", "no workers: add a `## ID: title` section per worker")
    if p.problems:
        raise ManifestError("\n".join(p.problems), p.problems)
    return raw


def read(path: Path, source: str) -> dict[str, Any]:
    """Read and parse a Markdown plan file (see parse); InputError when it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError as e:
        msg = f"{source}: cannot read: {e.strerror}"
        raise InputError(msg) from e
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        msg = f"{source}:{line}: plan: byte {e.start}: not UTF-8 text"
        raise InputError(msg) from e
    return parse(text, source)
