"""The mechanical gates: the red gate's judgement, and the frozen acceptance-test files."""

from __future__ import annotations

import hashlib
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from boss.proc import Outcome

# pytest: 1 = tests failed; 2 = interrupted (collection errors), 3 internal, 4 usage, 5 none collected.
_PYTEST_CRASH = {
    2: "a collection error or interruption",
    3: "an internal error",
    4: "a usage error",
    5: "no tests were collected",
}
_CRASH_OUTPUT = (
    (re.compile(r"command not found|: not found$", re.M), "a command was not found"),
    (re.compile(r"syntax error near unexpected token|syntax error: unexpected end"), "a shell syntax error"),
    (re.compile(r"^(?:E\s+)?(?:  File .*\n(?:.*\n)*?)?SyntaxError: ", re.M), "a Python syntax error"),
    (re.compile(r"can't open file .*No such file or directory"), "the test script does not exist"),
)


def is_pytest(command: str) -> bool:
    """True when the command runs pytest (its exit codes then tell failures from crashes)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return "pytest" in command
    return any(Path(w).name in ("pytest", "py.test") or w == "pytest" for w in words)


@dataclass(frozen=True)
class Verdict:
    """The red gate's judgement of a test run."""

    ok: bool
    reason: str


_NOT_FOUND = re.compile(r"file or directory not found|file not found:", re.IGNORECASE)


def judge_red(outcome: Outcome, command: str, output: str, write_test: bool = False) -> Verdict:
    """Red gate: the test must fail, and fail as a test failure rather than a crash."""
    code = outcome.exit_code
    if outcome.timed_out:
        return Verdict(False, "the acceptance test timed out before any work (raise test_timeout?)")
    if code == 0:
        return Verdict(
            False,
            "the acceptance test already passes before any work: it does not "
            "test the missing feature (or there is nothing to do)",
        )
    if code in (126, 127):
        what = "not executable" if code == 126 else "not found"
        return Verdict(False, f"the acceptance test cannot run: its command was {what} (exit {code})")
    if outcome.killed_by_signal:
        return Verdict(False, f"the acceptance test crashed: killed by signal {outcome.killed_by_signal}")
    if is_pytest(command) and code == 4 and _NOT_FOUND.search(output):
        fix = (
            "the agent's write-test run did not create it where the test command looks"
            if write_test
            else "the test must exist before the worker starts, or set write_test: true to have "
            "the agent write it first"
        )
        return Verdict(
            False, f"the acceptance test cannot run: pytest found no such test file or folder (exit 4); {fix}"
        )
    if is_pytest(command) and code in _PYTEST_CRASH:
        return Verdict(
            False,
            f"the acceptance test cannot run: pytest reported {_PYTEST_CRASH[code]} "
            f"(exit {code}); a missing feature must fail inside a test, e.g. import it "
            "inside the test function",
        )
    for pattern, what in _CRASH_OUTPUT:
        if pattern.search(output) and not (is_pytest(command) and code == 1):
            return Verdict(False, f"the acceptance test cannot run: {what} (exit {code})")
    return Verdict(True, f"fails as a test failure (exit {code})")


_INTERPRETERS = ("bash", "sh", "zsh", "dash", "node", "ruby", "perl", "deno", "bun")
_TEST_NAME = re.compile(
    r"(^|/)(tests?|spec|__tests__)(/|$)|(^|/)test_[^/]*$|_test\.[^/]+$|\.(test|spec)\.[^/]+$"
)


_DOTTED_TEST = re.compile(r"(?:[A-Za-z_]\w*\.)+test\w*|(?:[A-Za-z_]\w*\.)*test_\w+")


def _candidates(words: list[str]) -> list[str]:
    """The words of a test command that name the test itself (not the code it checks)."""
    if not words:
        return []
    first = Path(words[0]).name
    found = [words[0]] if "/" in words[0] else []
    runs_pytest = first in ("pytest", "py.test") or (
        first.startswith("python") and words[1:3] == ["-m", "pytest"]
    )
    if runs_pytest:
        found += [w for w in words[1:] if not w.startswith("-")]
    elif first in _INTERPRETERS or first.startswith("python"):
        args = [w for w in words[1:] if not w.startswith("-")]
        if args and "-c" not in words and "-m" not in words:
            found.append(args[0])
    found += [w for w in words[1:] if _TEST_NAME.search(w.split("::", 1)[0])]
    # `python -m unittest pkg.test_mod` names a test module by its dotted name.
    found += [w.replace(".", "/") + ".py" for w in words[1:] if _DOTTED_TEST.fullmatch(w)]
    return found


def test_paths(command: str, worktree: Path) -> list[str]:
    """Repo-relative test files or folders the command runs, that exist in the worktree.

    Those are frozen after the red gate. Files a test merely reads (`grep x src/a.py`) are
    the code under test and stay editable.
    """
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    found = []
    root = worktree.resolve()
    for word in _candidates(words):
        candidate = word.split("::", 1)[0]
        if not candidate or "=" in candidate:
            continue
        p = (worktree / candidate).resolve()
        try:
            rel = p.relative_to(root).as_posix()
        except ValueError:
            continue
        if rel not in ("", ".") and p.exists():
            found.append(rel)
    return sorted(set(found))


class Frozen:
    """The acceptance test's files as they were at the red gate; changes to them are refused."""

    def __init__(self, worktree: Path, paths: list[str]) -> None:
        self.worktree = worktree
        self.roots = paths
        self.snapshot: dict[str, bytes] = self._read()

    def _files(self) -> list[Path]:
        files: list[Path] = []
        for rel in self.roots:
            p = self.worktree / rel
            if p.is_file():
                files.append(p)
            elif p.is_dir():
                files.extend(
                    f
                    for f in p.rglob("*")
                    if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc"
                )
        return files

    def _read(self) -> dict[str, bytes]:
        return {f.relative_to(self.worktree).as_posix(): f.read_bytes() for f in self._files()}

    def tampered(self) -> list[str]:
        """Paths under the frozen roots that were changed, added or deleted since the snapshot."""
        now = self._read()
        changed = {p for p in self.snapshot if now.get(p) != self.snapshot[p]}
        changed.update(p for p in now if p not in self.snapshot)
        return sorted(changed)

    def restore(self) -> list[str]:
        """Put the frozen files back as they were; the paths that had been tampered with."""
        changed = self.tampered()
        for rel in changed:
            p = self.worktree / rel
            if rel in self.snapshot:
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(self.snapshot[rel])
            else:
                p.unlink(missing_ok=True)
        return changed

    def digest(self) -> str:
        """One hash of the frozen files, recorded with the red gate's evidence."""
        h = hashlib.sha256()
        for rel in sorted(self.snapshot):
            h.update(rel.encode() + b"\0" + self.snapshot[rel] + b"\0")
        return h.hexdigest()[:16]
