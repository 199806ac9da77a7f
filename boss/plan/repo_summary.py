"""What the planner is told about a repository: its tracked files within a budget, its tests."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

SUMMARY_BUDGET = 8000  # characters of file listing in the planning prompt
README_BUDGET = 2000


def summarize(paths: list[str], budget: int = SUMMARY_BUDGET) -> str:
    """The tracked files as a listing that fits budget: every file, or folders with counts.

    Deeper folders collapse first (`src/app/ (120 files)`); a listing that still does not fit
    is cut with a note of how much was left out.
    """
    header = f"{len(paths)} tracked file{'s' if len(paths) != 1 else ''}"
    full = "\n".join(paths)
    if len(full) <= budget:
        return f"{header}:\n{full}" if paths else f"{header}."
    for depth in (4, 3, 2, 1):
        text = _collapse(paths, depth)
        if len(text) <= budget:
            return f"{header}; folders {depth} level(s) deep are shown with their file counts:\n{text}"
    lines = _collapse(paths, 1).splitlines()
    kept: list[str] = []
    size = 0
    for line in lines:
        if size + len(line) + 1 > budget:
            break
        kept.append(line)
        size += len(line) + 1
    return f"{header} (listing cut, {len(lines) - len(kept)} entries left out):\n" + "\n".join(kept)


def _collapse(paths: list[str], depth: int) -> str:
    """Files less than depth folders deep as themselves, the others counted per folder."""
    entries: dict[str, int] = {}
    for p in paths:
        parts = p.split("/")
        if len(parts) - 1 < depth:
            entries[p] = 0
        else:
            key = "/".join(parts[:depth]) + "/"
            entries[key] = entries.get(key, 0) + 1
    return "\n".join(
        f"{name} ({n} file{'s' if n != 1 else ''})" if n else name for name, n in sorted(entries.items())
    )


def readme_excerpt(paths: list[str], read: Callable[[str], str | None]) -> str:
    """The start of the top-level README, if there is one."""
    for p in sorted(paths, key=len):
        if "/" not in p and re.fullmatch(r"(?i)readme(\.\w+)?", p):
            text = read(p) or ""
            return text[:README_BUDGET] + ("\n[...]" if len(text) > README_BUDGET else "")
    return ""


def detect_test_command(paths: list[str], read: Callable[[str], str | None]) -> str:
    """The project's test command as far as its files tell (empty when they do not)."""
    names = set(paths)
    makefile = read("Makefile") if "Makefile" in names else None
    if makefile and re.search(r"^test\s*:", makefile, re.MULTILINE):
        return "make test"
    python_markers = {"pytest.ini", "tox.ini", "conftest.py", "setup.cfg", "pyproject.toml"}
    if names & python_markers or any(re.search(r"(^|/)test_[^/]*\.py$", p) for p in paths):
        return "python -m pytest -q"
    if "package.json" in names:
        try:
            scripts = json.loads(read("package.json") or "{}").get("scripts") or {}
        except (ValueError, AttributeError):
            scripts = {}
        if isinstance(scripts, dict) and "test" in scripts:
            return "npm test"
    for marker, command in (("Cargo.toml", "cargo test"), ("go.mod", "go test ./...")):
        if marker in names:
            return command
    return ""


def reader(root: Path) -> Callable[[str], str | None]:
    """A function reading a repo-relative file under root as text (None when it cannot)."""

    def read(rel: str) -> str | None:
        try:
            return (root / rel).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    return read
