"""A pytest acceptance test judged by a report the worker controls, not by its exit code.

The code under test runs inside the pytest process and can end it with `os._exit(0)`, skip or
xfail its tests, or leave forged bytecode behind. So a pytest command parsed confidently as one
plain invocation gets options appended: a junit report in a folder outside the worktree, no
cache provider, a fixed rootdir; the run reads no bytecode cached in the worktree. The gate
then asks the report which tests ran and how they ended.
"""

from __future__ import annotations

import os
import posixpath
import re
import shlex
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from boss.core import git
from boss.core.errors import GitError

# Files of the test's harness: pytest reads them from every folder between the worktree's root
# and the test (conftest.py), or takes the first it finds walking up (the configuration files).
HARNESS = (
    "conftest.py",
    "pytest.ini",
    ".pytest.ini",
    "pytest.toml",
    ".pytest.toml",
    "pyproject.toml",
    "tox.ini",
    "setup.cfg",
)
# Options whose value is the next word, so that word is no test path.
_VALUED = frozenset(
    (
        *("-k", "-m", "-p", "-c", "-o", "-r", "-W", "-n", "--rootdir", "--confcutdir", "--basetemp"),
        *("--deselect", "--ignore", "--ignore-glob", "--junitxml", "--junit-xml", "--junitprefix"),
        *("--junit-prefix", "--tb", "--maxfail", "--durations", "--durations-min", "--import-mode"),
        *("--log-level", "--log-format", "--log-date-format", "--log-cli-level", "--log-file"),
        *("--log-file-level", "--capture", "--color", "--code-highlight", "--config-file"),
        *("--override-ini", "--cov-report", "--cov-config", "--cov-fail-under", "--dist", "--timeout"),
        *("--reruns", "--doctest-glob", "--assert", "--show-capture", "--verbosity", "--pythonwarnings"),
    )
)
# Outside quotes: shell syntax that makes a command more than one plain pytest invocation.
_SHELL_SYNTAX = frozenset(";&|<>()$`\\*?[]{}~!#\n")
_ENTRY = re.compile(r"python[0-9.]*")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_CACHES = ("__pycache__", ".pytest_cache")


@dataclass(frozen=True)
class Invocation:
    """A test command parsed as one plain pytest invocation: its arguments after `pytest`."""

    args: tuple[str, ...]

    @property
    def rootdir(self) -> str | None:
        """The --rootdir the command sets itself, if any."""
        found = None
        for i, word in enumerate(self.args):
            if word.startswith("--rootdir="):
                found = word.split("=", 1)[1]
            elif word == "--rootdir" and i + 1 < len(self.args):
                found = self.args[i + 1]
        return found

    def targets(self) -> list[str]:
        """The positional arguments: test files, folders and node ids."""
        found, skip = [], False
        for word in self.args:
            if skip:
                skip = False
            elif word in _VALUED:
                skip = True
            elif not word.startswith("-"):
                found.append(word)
        return found


def _shell_syntax(command: str) -> str | None:
    """The first character outside quotes that the shell would treat specially, if any."""
    quote = ""
    for ch in command:
        if (ord(ch) < 0x20 and ch not in " \t") or ord(ch) == 0x7F:
            return repr(ch)
        if quote == "'":
            quote = "" if ch == "'" else quote
        elif quote == '"':
            if ch in "$`\\!":
                return ch
            quote = "" if ch == '"' else quote
        elif ch in "'\"":
            quote = ch
        elif ch in _SHELL_SYNTAX:
            return ch
    return "an unterminated quote" if quote else None


def parse(command: str) -> Invocation | str:
    """The command as one plain pytest invocation, or why it cannot be read as one."""
    if syntax := _shell_syntax(command):
        return f"the test command is not one plain pytest invocation (it uses {syntax})"
    words = shlex.split(command)
    while words and _ASSIGNMENT.match(words[0]):
        words = words[1:]
    name = Path(words[0]).name if words else ""
    if name in ("pytest", "py.test"):
        return Invocation(tuple(words[1:]))
    if _ENTRY.fullmatch(name) and words[1:3] == ["-m", "pytest"]:
        return Invocation(tuple(words[3:]))
    if _ENTRY.fullmatch(name) and words[1:2] == ["-mpytest"]:
        return Invocation(tuple(words[2:]))
    return "the test command does not start with pytest, py.test or python -m pytest"


def options(inv: Invocation, cwd: Path, report: Path) -> list[str]:
    """What the worker appends: its report, no cache provider, a rootdir the report's ids name."""
    added = [f"--junitxml={report}", "--junit-prefix=", "-p", "no:cacheprovider"]
    if inv.rootdir is None:
        added.append(f"--rootdir={cwd}")
    return added


def is_pytest(command: str) -> bool:
    """True when the command runs pytest (its exit codes then tell failures from crashes)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return "pytest" in command
    return any(Path(w).name in ("pytest", "py.test") or w == "pytest" for w in words)


def run_env(report_dir: Path) -> dict[str, str]:
    """No bytecode written, and none read from the worktree: a fresh private cache folder."""
    return {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(report_dir / "pycache")}


def clean_caches(root: Path) -> list[str]:
    """Delete the untracked bytecode and pytest caches under root; the paths deleted."""
    try:
        tracked = set(git.ls_files(root))
    except GitError:  # not a checkout: nothing in it is tracked
        tracked = set()
    deleted: list[str] = []
    for top, dirs, files in os.walk(root, followlinks=False):
        rel_top = Path(top).relative_to(root)
        if ".git" in dirs:
            dirs.remove(".git")
        for name in [d for d in dirs if d in _CACHES]:
            rel = (rel_top / name).as_posix()
            if not any(t.startswith(rel + "/") for t in tracked):
                p = Path(top) / name
                p.unlink() if p.is_symlink() else shutil.rmtree(p)
                dirs.remove(name)
                deleted.append(rel)
        for name in files:
            rel = (rel_top / name).as_posix()
            if name.endswith((".pyc", ".pyo")) and rel not in tracked:
                (Path(top) / name).unlink()
                deleted.append(rel)
    return deleted


@dataclass(frozen=True)
class Case:
    """One testcase of a junit report: its id (dotted module path, classes, name) and outcome."""

    id: str
    outcome: str  # passed, failed, error, skipped or xfailed
    message: str = ""


def read(report: Path) -> list[Case] | None:
    """The testcases of a junit report, or None when there is no readable report."""
    try:
        root = ET.parse(report).getroot()  # noqa: S314 - our own path, deleted before the run
    except (OSError, ET.ParseError):
        return None
    cases = []
    for case in root.iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = "failed" if child.tag == "failure" else child.tag
                if child.tag == "skipped" and child.get("type") == "pytest.xfail":
                    outcome = "xfailed"
                message = child.get("message", "")
                break
        cases.append(Case(f"{classname}.{name}" if classname else name, outcome, message))
    return cases


def _dotted(target: str, cwd: Path, rootdir: Path) -> str | None:
    """A test path or node id as the report names it (dotted, from rootdir); None if no test."""
    before, bracket, params = target.partition("[")
    path, *names = before.split("::")
    p = (cwd / path).resolve()
    if not (p.is_dir() or (p.is_file() and p.suffix == ".py")):
        return None
    try:
        rel = p.relative_to(rootdir.resolve()).as_posix()
    except ValueError:
        return None
    if rel == ".":
        return ""
    dotted = ".".join([re.sub(r"\.py$", "", rel.replace("/", ".")), *names])
    return dotted + bracket + params


def _under(case_id: str, dotted: str) -> bool:
    return not dotted or case_id == dotted or case_id.startswith((dotted + ".", dotted + "["))


def problems(cases: list[Case], inv: Invocation, cwd: Path, expected: list[str] | None) -> list[str]:
    """Why the report does not show the acceptance test passing; empty when it does.

    With `expected` (the ids the red gate's run reported, other than skipped), each of them must
    have passed. Without it, every test the command names (all it ran when it names none) must.
    """
    if not cases:
        return ["pytest's report lists no test: none ran"]
    ran = {c.id for c in cases}
    bad = {c.id: c for c in cases if c.outcome != "passed"}  # an id reported twice counts its worst
    found = [f"{c.id} {_said(c)}" for c in cases if c.outcome in ("failed", "error")]
    if expected is not None:
        for i in expected:
            if i not in ran:
                found.append(f"{i} did not run")
            elif i in bad:
                found.append(f"{i} {_said(bad[i])}")
        return list(dict.fromkeys(found))
    rootdir = (cwd / inv.rootdir) if inv.rootdir else cwd
    named = [d for d in (_dotted(t, cwd, rootdir) for t in inv.targets()) if d is not None] or [""]
    for dotted in named:
        mine = [c for c in cases if _under(c.id, dotted)]
        if not mine:
            found.append(f"{dotted or 'the test'}: none of its tests ran")
        found += [f"{c.id} {_said(c)}" for c in mine if c.outcome in ("skipped", "xfailed")]
    return list(dict.fromkeys(found))


def _said(case: Case) -> str:
    verb = {"failed": "failed", "error": "errored", "skipped": "was skipped", "xfailed": "xfailed"}
    why = f" ({case.message[:200]})" if case.message else ""
    return verb.get(case.outcome, case.outcome) + why


_TEST_FOLDER = re.compile(r"(^|/)(tests?|testing|spec|__tests__)(/|$)")


def harness(worktree: Path, roots: list[str]) -> list[str]:
    """The files a test's outcome rests on besides its own: conftest.py and pytest's
    configuration files in each folder from the root to each test (present or not), and the
    helper modules beside a test file in a test folder (tests/helpers.py) with its __init__.py."""
    folders, found = {""}, set()
    for rel in roots:
        p = Path(rel)
        for parent in (p, *p.parents) if (worktree / rel).is_dir() else p.parents:
            folders.add("" if parent.as_posix() == "." else parent.as_posix())
        beside = p.parent.as_posix()
        if (worktree / rel).is_file() and _TEST_FOLDER.search(beside):
            found.add(f"{beside}/__init__.py")
            found.update(f"{beside}/{f.name}" for f in (worktree / beside).glob("*.py") if not f.is_symlink())
    found.update(f"{d}/{name}" if d else name for d in folders for name in HARNESS)
    return sorted(found)


def harness_in_tree(roots: list[str], files: Collection[str], folders: Collection[str]) -> list[str]:
    """harness() judged from a tree's tracked files and folders instead of a worktree: only the
    harness files the tree holds (pytest finds no other before the worker runs)."""
    found: set[str] = set()
    parents = {""}
    for rel in roots:
        p = Path(rel)
        for parent in (p, *p.parents) if rel in folders else p.parents:
            parents.add("" if parent.as_posix() == "." else parent.as_posix())
        beside = p.parent.as_posix()
        if rel in files and _TEST_FOLDER.search(beside):
            found.add(f"{beside}/__init__.py")
            found.update(f for f in files if f.endswith(".py") and posixpath.dirname(f) == beside)
    found.update(f"{d}/{name}" if d else name for d in parents for name in HARNESS)
    return sorted(f for f in found if f in files)
