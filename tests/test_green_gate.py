"""The green gate judged by pytest's report, against an agent that cheats: one test per attack.

Each attack is played twice where it helps: by a scripted agent through a whole worker run (the
gate refuses it), and, where the worker's freeze would hide the report's own defence, on the
gate alone, with the plain command shown to pass first (so the test is not vacuous).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_repo
from worker_helpers import make_plan, worker

from boss.core import statelog
from boss.core import status as st
from boss.core.config import load_config
from boss.core.proc import Outcome, run_shell
from worker.lifecycle import gates
from worker.lifecycle.run import run_worker

CONFTEST = "import sys, pathlib\nsys.path.insert(0, str(pathlib.Path(__file__).parent / 'src'))\n"
FILES = {
    "src/calc.py": "def add(a, b):\n    return 0\n",
    "conftest.py": CONFTEST,
    "tests/helpers.py": "def check(f):\n    assert f(2, 3) == 5\n",
    "tests/test_add.py": (
        "def test_add():\n    from calc import add\n    from helpers import check\n    check(add)\n\n\n"
        "def test_other():\n    assert True\n"
    ),
}
TEST = f"{sys.executable} -m pytest -q tests/test_add.py"
FIX = {"replace": {"src/calc.py": ["return 0", "return a + b"]}}
# Passes every test whatever it did: what a conftest.py or plugin of the agent's could do.
ALL_PASS = (
    "import pytest\n\n\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n"
    "    outcome = yield\n    report = outcome.get_result()\n    report.outcome = 'passed'\n"
)

XFAIL_ALL = (
    "import pytest\n\n\ndef pytest_collection_modifyitems(items):\n    for item in items:\n"
    "        item.add_marker(pytest.mark.xfail(reason='later'))\n"
)


@pytest.fixture
def calc(tmp_path, monkeypatch):
    r = make_repo(tmp_path / "calc", FILES)
    monkeypatch.chdir(r)
    return r


def attack(repo: Path, *steps: dict, test: str = TEST, scope=(".*",)):
    """Run one worker whose agent plays steps (everything in scope); its state and log."""
    w = worker("W1", scope=scope, test=test, steps=list(steps), max_iterations=1, max_strategies=1)
    paths, m = make_plan(repo, [w])
    state = run_worker(paths, m, load_config(repo), "W1")
    return state, st.read(paths.status("W1")), statelog.read(paths.log)


def said(log, action: str) -> str:
    return "\n".join(e.result for e in log if e.action == action)


def test_an_honest_fix_passes_judged_by_the_report(calc):
    state, status, log = attack(calc, FIX)
    assert state == st.SUCCESS, status.reason
    assert status.green["judged"] == "pytest report"
    assert status.red["tests"] == ["tests.test_add.test_add", "tests.test_add.test_other"]
    assert "the acceptance test's passed" in said(log, "test")
    assert {"conftest.py", "tests/helpers.py", "tests/test_add.py"} <= set(status.red["frozen"])


@pytest.mark.parametrize(
    ("path", "content"),
    [("tests/conftest.py", ALL_PASS), ("conftest.py", CONFTEST + ALL_PASS), ("tests/conftest.py", XFAIL_ALL)],
    ids=["new", "root", "xfail-marker"],
)
def test_a_conftest_that_passes_every_test_is_undone(calc, path, content):
    state, _, log = attack(calc, {"write": {path: content}})
    assert state == st.FAILED
    assert path in said(log, "tamper")
    assert "exit=1" in said(log, "test")


@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("pytest.ini", "[pytest]\naddopts = --deselect tests/test_add.py::test_add\n"),
        (".pytest.ini", "[pytest]\naddopts = -k test_other\n"),
        ("pyproject.toml", "[tool.pytest.ini_options]\naddopts = '-k test_other'\n"),
        ("tox.ini", "[pytest]\naddopts = -k nothing -p no:junitxml\n"),
        ("setup.cfg", "[tool:pytest]\naddopts = -k test_other\n"),
        ("tests/pytest.ini", "[pytest]\naddopts = -k test_other\n"),
    ],
)
def test_a_pytest_configuration_that_deselects_the_test_is_undone(calc, path, content):
    state, _, log = attack(calc, {"write": {path: content}})
    assert state == st.FAILED
    assert path in said(log, "tamper")


def test_a_committed_pyproject_is_put_back_to_its_committed_bytes(tmp_path, monkeypatch):
    committed = '[project]\nname = "calc"\n'
    repo = make_repo(tmp_path / "calc", {**FILES, "pyproject.toml": committed})
    monkeypatch.chdir(repo)
    cheat = {"append": {"pyproject.toml": "\n[tool.pytest.ini_options]\naddopts = '-k test_other'\n"}}
    state, status, log = attack(repo, {**FIX, **cheat})
    assert state == st.SUCCESS, status.reason  # the fix passes; the cheat was undone first
    assert "pyproject.toml" in said(log, "tamper")
    assert (
        subprocess.run(
            ["git", "-C", str(repo), "show", f"{status.head_commit}:pyproject.toml"],
            capture_output=True,
            text=True,
        ).stdout
        == committed
    )


def test_a_changed_helper_module_beside_the_test_is_undone(calc):
    state, _, log = attack(calc, {"write": {"tests/helpers.py": "def check(f):\n    pass\n"}})
    assert state == st.FAILED
    assert "tests/helpers.py" in said(log, "tamper")


def test_a_module_that_exits_0_at_import_fails_the_gate(calc):
    state, _, log = attack(calc, {"write": {"src/calc.py": "import os\nos._exit(0)\n"}})
    assert state == st.FAILED
    assert "pytest exited 0 without writing its report" in said(log, "test")


def test_a_module_that_skips_at_import_fails_the_gate(calc):
    skip = "import pytest\npytest.skip('later', allow_module_level=True)\n"
    state, _, log = attack(calc, {"write": {"src/calc.py": skip}})
    assert state == st.FAILED
    assert "tests.test_add.test_add was skipped (later)" in said(log, "test")


def test_code_that_xfails_its_test_fails_the_gate(calc):
    xfail = "def add(a, b):\n    import pytest\n    pytest.xfail('later')\n"
    state, _, log = attack(calc, {"write": {"src/calc.py": xfail}})
    assert state == st.FAILED
    assert "tests.test_add.test_add xfailed" in said(log, "test")


FORGE = """
import importlib.util, marshal, sys
from pathlib import Path

def forge_pyc(source, cheat):
    info = source.stat()
    code = compile(cheat, str(source), "exec")
    stamp = (int(info.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little") + (info.st_size & 0xFFFFFFFF).to_bytes(4, "little")
    pyc = Path(importlib.util.cache_from_source(str(source)))
    pyc.parent.mkdir(parents=True, exist_ok=True)
    pyc.write_bytes(importlib.util.MAGIC_NUMBER + bytes(4) + stamp + marshal.dumps(code))
    return pyc

if __name__ == "__main__":
    forge_pyc(Path(sys.argv[1]), "def add(a, b):\\n    return a + b\\n")
"""


def forge_pyc(source: Path) -> Path:
    """Bytecode of a right `add`, stamped with the wrong source's own mtime and size, where
    Python looks first: a plain run imports it instead of the source."""
    space: dict[str, object] = {}
    exec(FORGE, space)  # noqa: S102 - our own constant
    return space["forge_pyc"](source, "def add(a, b):\n    return a + b\n")  # type: ignore[operator]


def test_forged_bytecode_with_the_source_unchanged_is_never_run(calc, tmp_path):
    forge_pyc(calc / "src/calc.py")
    plain = run_shell(TEST, cwd=calc, env=dict(os.environ), log_path=tmp_path / "plain.log")
    assert plain.exit_code == 0  # the attack works on a plain run
    gate = gates.prepare_run(TEST, calc, tmp_path / "gate")
    assert not list(calc.rglob("*.pyc"))  # the worktree's bytecode is gone before the run
    pyc = forge_pyc(calc / "src/calc.py")  # and bytecode planted after the cleaning is not read
    log = tmp_path / "g.log"
    outcome = run_shell(gate.command, cwd=calc, env={**os.environ, **gate.env}, log_path=log)
    assert outcome.exit_code == 1
    assert not gates.judge_green(outcome, gate).ok
    assert pyc.is_file() and not list((tmp_path / "gate").rglob("*.pyc"))  # nothing written


def test_forged_bytecode_planted_by_the_agent_fails_the_worker(calc, tmp_path):
    (tmp_path / "forge.py").write_text(FORGE)
    state, _, log = attack(calc, {"run": f"{sys.executable} {tmp_path / 'forge.py'} src/calc.py"})
    assert state == st.FAILED
    assert "exit=1" in said(log, "test")


def test_forged_bytecode_is_not_run_by_a_test_that_is_not_pytest_either(calc, tmp_path):
    (tmp_path / "forge.py").write_text(FORGE)
    check = f"{sys.executable} -c 'import sys; sys.path.insert(0, \"src\"); import calc; assert calc.add(2, 3) == 5'"
    state, _, log = attack(calc, {"run": f"{sys.executable} {tmp_path / 'forge.py'} src/calc.py"}, test=check)
    assert state == st.FAILED
    assert "fail exit=1" in said(log, "test")


def gate_run(repo: Path, tmp_path: Path, name: str, expected=None):
    gate = gates.prepare_run(TEST, repo, tmp_path / name)
    outcome = run_shell(
        gate.command, cwd=repo, env={**os.environ, **gate.env}, log_path=tmp_path / f"{name}.log"
    )
    return outcome, gate, gates.judge_green(outcome, gate, expected)


def test_the_report_shows_a_deselected_test_even_when_nothing_was_frozen(calc, tmp_path):
    _, red, _ = gate_run(calc, tmp_path, "red")
    expected = gates.report_ids(red)
    assert expected == ["tests.test_add.test_add", "tests.test_add.test_other"]
    (calc / "pytest.ini").write_text("[pytest]\naddopts = --deselect tests/test_add.py::test_add\n")
    outcome, _, verdict = gate_run(calc, tmp_path, "green", expected)
    assert outcome.exit_code == 0 and not verdict.ok
    assert "tests.test_add.test_add did not run" in verdict.reason


def test_a_report_that_lists_no_test_or_is_missing_fails(tmp_path):
    report = tmp_path / "junit.xml"
    gate = gates.GateRun("pytest", report=report, invocation=gates.pytest_report.Invocation(()), cwd=tmp_path)
    assert "without writing its report" in gates.judge_green(Outcome(0, 0.1), gate).reason
    report.write_text('<testsuites><testsuite name="pytest" tests="0"/></testsuites>')
    assert "lists no test" in gates.judge_green(Outcome(0, 0.1), gate).reason
    report.write_text("not xml")
    assert not gates.judge_green(Outcome(0, 0.1), gate).ok


def test_the_report_is_fresh_and_outside_the_worktree(calc, tmp_path):
    report_dir = tmp_path / "gate"
    report_dir.mkdir()
    (report_dir / "junit.xml").write_text(
        '<testsuite><testcase classname="tests.test_add" name="test_add"/></testsuite>'
    )
    gate = gates.prepare_run(TEST, calc, report_dir)
    assert not (report_dir / "junit.xml").exists()
    assert gate.report is not None and not gate.report.is_relative_to(calc)
    assert gate.env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert "-p no:cacheprovider" in gate.command and f"--rootdir={calc}" in gate.command


@pytest.mark.parametrize(
    ("command", "why"),
    [
        (f"cd . && {TEST}", "it uses &"),
        (f"{TEST} $EXTRA", "it uses $"),
        (f"{TEST} > out.txt", "it uses >"),
        (f"{TEST} tests/test_*.py", "it uses *"),
        ("make test", "does not run pytest"),
        ("tox -e py -- pytest", "does not start with pytest"),
        ("pytest 'unterminated", "unterminated quote"),
        ("pytest tests/x.py\nrm -rf .", "'\\n'"),
    ],
)
def test_a_command_not_read_as_one_pytest_run_is_judged_by_its_exit_code(tmp_path, command, why):
    gate = gates.prepare_run(command, tmp_path, tmp_path / "gate")
    assert gate.command == command and gate.report is None
    assert gate.env["PYTHONDONTWRITEBYTECODE"] == "1"  # Python in any command runs the sources
    assert gate.note.startswith("judged by exit code only") and why in gate.note
    verdict = gates.judge_green(Outcome(0, 0.1), gate)
    assert verdict.ok and "judged by exit code only" in verdict.reason


def test_a_worker_whose_test_is_not_one_pytest_run_says_so(calc):
    state, status, log = attack(calc, FIX, test=f"true && {TEST}")
    assert state == st.SUCCESS, status.reason
    assert "judged by exit code only: the test command is not one plain pytest invocation" in said(
        log, "test"
    )
    assert status.green["judged"].startswith("judged by exit code only")


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("pytest -q tests/a.py", ("-q", "tests/a.py")),
        ("PYTHONPATH=src python3 -m pytest -k 'x and y' t.py", ("-k", "x and y", "t.py")),
        ("/venv/bin/py.test", ()),
        ('python -mpytest "tests/a.py::test_x[1-2]"', ("tests/a.py::test_x[1-2]",)),
    ],
)
def test_plain_pytest_commands_are_parsed_with_their_arguments(command, args):
    parsed = gates.pytest_report.parse(command)
    assert isinstance(parsed, gates.pytest_report.Invocation) and parsed.args == args


def test_options_are_appended_quoted(tmp_path):
    odd = tmp_path / "a dir; rm -rf ~"
    gate = gates.prepare_run("pytest -q", tmp_path, odd)
    assert gate.command.startswith("pytest -q ")
    assert f"'--junitxml={odd}/junit.xml'" in gate.command


def test_judge_report_for_the_ceremony_checks_the_named_tests(calc, tmp_path):
    (calc / "src/calc.py").write_text("def add(a, b):\n    return a + b\n")
    named = f"{TEST}::test_add"
    gate = gates.prepare_run(named, calc, tmp_path / "gate")
    outcome = run_shell(gate.command, cwd=calc, env={**os.environ, **gate.env}, log_path=tmp_path / "c.log")
    assert outcome.exit_code == 0 and gate.report is not None
    assert gates.judge_report(named, calc, gate.report).ok
    other = f"{TEST}::test_missing"
    assert (
        "tests.test_add.test_missing: none of its tests ran"
        in gates.judge_report(other, calc, gate.report).reason
    )
    assert gates.judge_report("make test", calc, gate.report).reason.startswith("judged by exit code only")


def test_the_red_gate_wants_a_failing_test_in_the_report(tmp_path):
    report = tmp_path / "junit.xml"
    inv = gates.pytest_report.Invocation(())
    gate = gates.GateRun("pytest", report=report, invocation=inv, cwd=tmp_path)
    assert "without writing its report" in gates.judge_red(Outcome(1, 0.1), "pytest", "", gate=gate).reason
    report.write_text('<testsuite><testcase classname="t" name="test_a"/></testsuite>')
    assert "shows no failing test" in gates.judge_red(Outcome(1, 0.1), "pytest", "", gate=gate).reason
    report.write_text(
        '<testsuite><testcase classname="t" name="test_a"><failure message="x"/></testcase></testsuite>'
    )
    assert gates.judge_red(Outcome(1, 0.1), "pytest", "", gate=gate).ok


def test_an_invocation_reads_its_rootdir_and_its_targets():
    inv = gates.pytest_report.Invocation(("--rootdir", "sub", "-k", "foo", "-q", "tests/a.py"))
    assert inv.rootdir == "sub" and inv.targets() == ["tests/a.py"]
    assert gates.pytest_report.Invocation(("--rootdir=x",)).rootdir == "x"
    assert "it uses $" in str(gates.pytest_report.parse('pytest "a$b"'))


def test_named_tests_are_found_from_the_commands_own_rootdir(calc, tmp_path):
    (calc / "src/calc.py").write_text("def add(a, b):\n    return a + b\n")
    command = f"{TEST}::test_add --rootdir=tests --confcutdir=."
    gate = gates.prepare_run(command, calc, tmp_path / "gate")
    assert f"--rootdir={calc}" not in gate.command and gate.report is not None
    outcome = run_shell(gate.command, cwd=calc, env={**os.environ, **gate.env}, log_path=tmp_path / "r.log")
    assert outcome.exit_code == 0
    assert gates.judge_report(command, calc, gate.report).ok  # its id is test_add.test_add
    # A target that is no test (or lies outside the rootdir) names nothing: the whole report counts.
    assert gates.judge_report(
        f"{TEST.split(' tests/')[0]} --rootdir=tests src/x.txt ..", calc, gate.report
    ).ok


def test_cache_cleaning_keeps_tracked_bytecode_and_follows_no_link(calc, tmp_path):
    (calc / "keep.pyc").write_bytes(b"tracked")
    subprocess.run(["git", "-C", str(calc), "add", "-f", "keep.pyc"], check=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "x.pyc").write_bytes(b"not ours")
    (calc / "src/__pycache__").symlink_to(outside)
    (calc / "tests/.pytest_cache").mkdir()
    (calc / "tests/stale.pyo").write_bytes(b"")
    deleted = gates.pytest_report.clean_caches(calc)
    assert sorted(deleted) == ["src/__pycache__", "tests/.pytest_cache", "tests/stale.pyo"]
    assert (calc / "keep.pyc").exists() and (outside / "x.pyc").exists()
