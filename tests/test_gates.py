"""The red gate's judgement and the frozen acceptance-test files."""

from __future__ import annotations

import pytest

from boss.core import pytest_report, testfiles
from boss.core.proc import Outcome
from worker.agents.scripted import apply_step, load_script
from worker.lifecycle import gates


@pytest.mark.parametrize(
    ("code", "command", "output", "ok", "why"),
    [
        (1, "pytest -q", "1 failed", True, "test failure"),
        (0, "pytest -q", "", False, "already passes"),
        (127, "nosuch", "", False, "not found"),
        (126, "./t.sh", "", False, "not executable"),
        (-9, "make test", "", False, "signal 9"),
        (137, "make test", "", False, "signal 9"),
        (2, "python -m pytest -q", "ERROR collecting", False, "collection error"),
        (4, "pytest --nope", "", False, "usage error"),
        (
            4,
            "pytest tests/t.py",
            "ERROR: file or directory not found: tests/t.py",
            False,
            "set write_test: true",
        ),
        (5, "pytest -q tests/x", "no tests ran", False, "no tests were collected"),
        (1, "bash t.sh", "t.sh: line 2: foo: command not found", False, "not found"),
        (2, "bash -c 'if'", "syntax error: unexpected end of file", False, "shell syntax"),
        (1, "python t.py", '  File "t.py", line 1\nSyntaxError: invalid syntax', False, "Python syntax"),
        (
            2,
            "python nope.py",
            "python: can't open file 'nope.py': [Errno 2] No such file or directory",
            False,
            "does not exist",
        ),
        (2, "grep x out.txt", "grep: out.txt: No such file or directory", True, "test failure"),
        (1, "pytest -q", "E   ModuleNotFoundError: x\n1 failed", True, "test failure"),
    ],
)
def test_judge_red(code, command, output, ok, why):
    verdict = gates.judge_red(Outcome(code, 0.1), command, output)
    assert verdict.ok is ok
    assert why in verdict.reason


def test_judge_red_missing_test_file_with_write_test():
    out = Outcome(4, 0.1)
    reason = gates.judge_red(
        out, "pytest tests/t.py", "ERROR: file or directory not found: tests/t.py", True
    ).reason
    assert "write-test run did not create it" in reason and "set write_test" not in reason


def test_judge_red_timeout():
    assert "timed out" in gates.judge_red(Outcome(-9, 1, timed_out=True), "t", "").reason


def test_is_pytest():
    assert pytest_report.is_pytest("python -m pytest -q") and pytest_report.is_pytest("/venv/bin/pytest x")
    assert not pytest_report.is_pytest("make test") and pytest_report.is_pytest("pytest 'unterminated")


def test_test_paths_freeze_test_files_not_the_code_they_check(tmp_path):
    for rel in ("tests/test_a.py", "check.sh", "src/app.py", "acceptance/test_b.py", "spec/x.js"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    assert testfiles.test_paths("pytest tests/test_a.py::test_one -q", tmp_path) == ["tests/test_a.py"]
    assert testfiles.test_paths("python -m pytest tests", tmp_path) == ["tests"]
    assert testfiles.test_paths("bash check.sh", tmp_path) == ["check.sh"]
    assert testfiles.test_paths("./check.sh --fast", tmp_path) == ["check.sh"]
    assert testfiles.test_paths("grep -q ok src/app.py", tmp_path) == []
    assert testfiles.test_paths("python3 -m unittest acceptance.test_b", tmp_path) == ["acceptance/test_b.py"]
    assert testfiles.test_paths("npx jest spec/x.js", tmp_path) == ["spec/x.js"]
    assert testfiles.test_paths("pytest ../outside.py /etc/passwd", tmp_path) == []
    assert testfiles.test_paths("bash -c 'unterminated", tmp_path) == []


def test_frozen_restores_changes_additions_and_deletions(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests/test_a.py").write_text("a")
    (tmp_path / "tests/test_b.py").write_text("b")
    frozen = gates.Frozen(tmp_path, ["tests"])
    digest = frozen.digest()
    (tmp_path / "tests/test_a.py").write_text("cheat")
    (tmp_path / "tests/test_b.py").unlink()
    (tmp_path / "tests/test_c.py").write_text("new")
    (tmp_path / "tests/__pycache__").mkdir()
    (tmp_path / "tests/__pycache__/x.pyc").write_text("cache")
    assert frozen.restore() == ["tests/test_a.py", "tests/test_b.py", "tests/test_c.py"]
    assert (tmp_path / "tests/test_a.py").read_text() == "a"
    assert (tmp_path / "tests/test_b.py").read_text() == "b"
    assert not (tmp_path / "tests/test_c.py").exists()
    assert frozen.tampered() == [] and frozen.digest() == digest


def test_scripted_agent_steps(tmp_path):
    (tmp_path / "a.txt").write_text("one two")
    text = "```agent-script\n- write: {b/c.txt: hi}\n  append: {a.txt: ' three'}\n  replace: {a.txt: [two, 2]}\n  exit: 4\n```"
    steps = load_script(text)
    assert apply_step(steps[0], tmp_path) == 4
    assert (tmp_path / "b/c.txt").read_text() == "hi"
    assert (tmp_path / "a.txt").read_text() == "one 2 three"
    assert apply_step({"delete": ["a.txt"], "run": "touch ran"}, tmp_path) == 0
    assert not (tmp_path / "a.txt").exists() and (tmp_path / "ran").exists()
    assert load_script("no block") == []
    assert load_script("```agent-script\nwrite: {x: y}\n```") == [{"write": {"x": "y"}}]
    with pytest.raises(ValueError, match="list of steps"):
        load_script("```agent-script\n- 1\n```")
