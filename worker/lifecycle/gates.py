"""The mechanical gates: the red and green gates' judgement, and the frozen acceptance-test files."""

from __future__ import annotations

import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from boss.core import pytest_report
from boss.core.proc import Outcome
from boss.core.pytest_report import is_pytest
from worker.lifecycle.frozen import Frozen

__all__ = [
    "Frozen",
    "GateRun",
    "Verdict",
    "harness_paths",
    "judge_green",
    "judge_red",
    "prepare_run",
]

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


@dataclass(frozen=True)
class Verdict:
    """The red gate's judgement of a test run."""

    ok: bool
    reason: str


_NOT_FOUND = re.compile(r"file or directory not found|file not found:", re.IGNORECASE)


def judge_red(
    outcome: Outcome, command: str, output: str, write_test: bool = False, gate: GateRun | None = None
) -> Verdict:
    """Red gate: the test must fail, and fail as a test failure rather than a crash."""
    verdict = _judge_red(outcome, command, output, write_test)
    if not verdict.ok or gate is None or gate.report is None:
        return verdict
    cases = pytest_report.read(gate.report)
    if cases is None:
        return Verdict(
            False,
            f"the acceptance test cannot run: pytest exited {outcome.exit_code} without writing "
            "its report (the run ended before pytest finished, e.g. os._exit at import)",
        )
    if not any(c.outcome in ("failed", "error") for c in cases):
        return Verdict(False, f"the acceptance test cannot run: pytest exited {outcome.exit_code} "
                       "but its report shows no failing test")  # fmt: skip
    return verdict


def _judge_red(outcome: Outcome, command: str, output: str, write_test: bool) -> Verdict:
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


def harness_paths(command: str, worktree: Path, roots: list[str]) -> list[str]:
    """The files of a pytest test's harness, frozen with it (none for another command)."""
    return pytest_report.harness(worktree, roots) if is_pytest(command) else []


@dataclass(frozen=True)
class GateRun:
    """A test run as the gate asks for it: the command to run, its extra environment, and the
    report it reads (None: judged by exit code only, `note` says why)."""

    command: str
    env: dict[str, str] = field(default_factory=dict)
    report: Path | None = None
    note: str = ""
    invocation: pytest_report.Invocation | None = None
    cwd: Path = Path()


def prepare_run(command: str, cwd: Path, report_dir: Path) -> GateRun:
    """Make a test run judgeable by results: no bytecode cached in cwd is read (any command),
    and one plain pytest invocation gets a report in report_dir (a folder of ours outside the
    worktree, emptied here); any other command is judged by its exit code only (`note` says why)."""
    # Whatever the command, Python in it runs the sources: no bytecode the agent left is read.
    shutil.rmtree(report_dir, ignore_errors=True)
    report_dir.mkdir(parents=True)
    pytest_report.clean_caches(cwd)
    env = pytest_report.run_env(report_dir)
    if not is_pytest(command):
        return GateRun(command, env, note="judged by exit code only: the test command does not run pytest")
    parsed = pytest_report.parse(command)
    if isinstance(parsed, str):
        return GateRun(command, env, note=f"judged by exit code only: {parsed}")
    report = report_dir / "junit.xml"
    added = " ".join(shlex.quote(o) for o in pytest_report.options(parsed, cwd, report))
    return GateRun(f"{command} {added}", env, report, "", parsed, cwd)


def report_ids(gate: GateRun) -> list[str] | None:
    """The ids of the tests a red run's report shows run (not skipped); None without a report."""
    cases = pytest_report.read(gate.report) if gate.report else None
    if cases is None:
        return None
    return sorted({c.id for c in cases if c.outcome in ("passed", "failed", "error")})


def judge_green(outcome: Outcome, gate: GateRun, expected: list[str] | None = None) -> Verdict:
    """Green gate: exit 0 and, for pytest, a fresh report showing the acceptance test passed.

    `expected` are the test ids the red run reported (report_ids); every one of them must have
    passed. Without them, every test the command names must (see pytest_report.problems).
    """
    if outcome.timed_out or outcome.exit_code != 0:
        return Verdict(False, f"exit={outcome.exit_code}")
    if gate.report is None or gate.invocation is None:
        return Verdict(True, f"exit=0 ({gate.note})" if gate.note else "exit=0")
    cases = pytest_report.read(gate.report)
    if cases is None:
        return Verdict(
            False,
            "pytest exited 0 without writing its report: the run ended before pytest finished "
            "(os._exit or an exit during import?) or the report was switched off; the tests must "
            "run to the end and pass",
        )
    problems = pytest_report.problems(cases, gate.invocation, gate.cwd, expected)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        return Verdict(False, f"pytest exited 0 but its report does not show the test passing: {shown}")
    return Verdict(True, f"exit=0, {len(cases)} test(s) in pytest's report, the acceptance test's passed")


def judge_report(command: str, cwd: Path, report: Path, expected: list[str] | None = None) -> Verdict:
    """The green judgement of a report written by a run prepared with prepare_run (the ceremony's
    re-run of a worker's test): the exit code is the caller's to check."""
    parsed = pytest_report.parse(command)
    if isinstance(parsed, str):
        return Verdict(True, f"judged by exit code only: {parsed}")
    gate = GateRun(command, report=report, invocation=parsed, cwd=cwd)
    return judge_green(Outcome(0, 0.0), gate, expected)
