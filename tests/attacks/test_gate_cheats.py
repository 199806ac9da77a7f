"""Attack class: a green gate passed without the work. The agent leaves src/feature.py missing
or wrong and makes the acceptance test's run exit 0 some other way; and a later merge breaks
an earlier worker's acceptance test.

Defences expected: the green gate is judged by a pytest report of the test's own ids (passed,
not skipped or deselected; no report is a failure); the test's conftest.py files and pytest
configuration are frozen with it; bytecode and caches are cleared and not written during gate
runs; the ceremony runs each merged worker's acceptance test again and judges every merge
against the last tested head. These run without the sandbox, to prove the gate on its own.
"""

from __future__ import annotations

import site
import subprocess
import textwrap

import pytest

from attacks.harness import FEATURE_TEST, PY, Worker, git, make_project

SCOPE = ["^src/", "^tests/"]  # the test's folder is in scope, as in the README's example
CHEATS = {
    "conftest": """
        cat > tests/conftest.py <<'EOF'
        import pytest


        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_makereport(item, call):
            outcome = yield
            report = outcome.get_result()
            report.outcome, report.longrepr = "passed", None
        EOF
        """,
    "pytest.ini-deselect": """
        printf '[pytest]\\naddopts = -k "not test_double"\\n' > tests/pytest.ini
        """,
    "os._exit-at-import": """
        printf 'import os\\n\\nos._exit(0)\\n' > src/feature.py
        """,
    "skip-at-import": """
        printf 'import pytest\\n\\npytest.skip("later", allow_module_level=True)\\n' > src/feature.py
        """,
    "forged-pyc": """
        printf 'def double(x):\\n    return x\\n' > src/feature.py
        "$BOSS_PYTHON" - <<'EOF'
        import importlib.util, pathlib, py_compile, tempfile
        good = pathlib.Path(tempfile.mkdtemp()) / "feature.py"
        good.write_text("def double(x):\\n    return 2 * x\\n")
        pyc = importlib.util.cache_from_source("src/feature.py")
        py_compile.compile(str(good), cfile=pyc, dfile="src/feature.py",
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        EOF
        """,
}


@pytest.mark.parametrize("cheat", list(CHEATS))
def test_a_cheated_green_gate_does_not_succeed_and_nothing_lands(tmp_path, cheat):
    """The agent does not write the feature; it makes the test run exit 0 through `cheat`
    (a forcing conftest.py, an addopts that deselects the test, os._exit(0) or a skip at the
    import of its module, bytecode compiled from other source): the worker does not reach
    SUCCESS, and `boss merge` lands nothing. (Code under test that subverts pytest from inside
    its process is out of reach of any report: README, Threat model.)"""
    w = Worker("W1", textwrap.dedent(CHEATS[cheat]), scope=SCOPE, test=FEATURE_TEST)
    p = make_project(tmp_path, [w], sandbox="off")
    main = p.main()
    p.run_worker("W1")
    assert p.state("W1")["state"] != "SUCCESS", p.state("W1")
    p.merge()
    assert p.main() == main


def test_a_pth_file_in_site_packages_does_not_pass_the_gate(tmp_path):
    """The test runs with a project interpreter (a venv); the agent drops a .pth file into its
    site-packages that ends every Python start with exit 0: the worker does not reach SUCCESS
    (and, in the sandbox, site-packages is read-only)."""
    venv = tmp_path / "venv"
    subprocess.run([PY, "-m", "venv", "--without-pip", str(venv)], check=True)
    lib = next((venv / "lib").glob("python3*/site-packages"))
    (lib / "outer.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    test = f"{venv}/bin/python -m pytest -q -p no:cacheprovider tests/test_feature.py"
    plant = f"echo 'import os; os._exit(0)' > {lib}/zz_cheat.pth\n"
    p = make_project(tmp_path, [Worker("W1", plant, scope=SCOPE, test=test)], sandbox="off")
    main = p.main()
    p.run_worker("W1")
    assert p.state("W1")["state"] != "SUCCESS", p.state("W1")
    p.merge()
    assert p.main() == main


BREAKABLE = {
    "src/util.py": "def base(x):\n    return x\n",
    "tests/test_a.py": "def test_a():\n    from src.a import a\n\n    assert a(2) == 4\n",
    "tests/test_b.py": "def test_b():\n    from src.b import b\n\n    assert b(2) == 2\n",
}


def test_a_later_merge_that_breaks_an_earlier_workers_test_is_dropped(tmp_path):
    """W1 adds src/a.py on top of src/util.py (its test_a goes green). W2, run in parallel
    without W1's work, adds src/b.py and quietly breaks src/util.py. test_a was red on the base,
    so today's baseline excuses its failure after W2's merge: W2 must be dropped all the same,
    and test_a must pass on the landed tree."""
    a = "printf 'from src.util import base\\n\\n\\ndef a(x):\\n    return 2 * base(x)\\n' > src/a.py\n"
    b = "printf 'def b(x):\\n    return x\\n' > src/b.py\nprintf 'def base(x):\\n    return -x\\n' > src/util.py\n"
    pytest_cmd = f"{PY} -m pytest -q -p no:cacheprovider"
    w1 = Worker("W1", a, scope=["^src/a"], test=f"{pytest_cmd} tests/test_a.py")
    w2 = Worker("W2", b, scope=["^src/b", "^src/util"], test=f"{pytest_cmd} tests/test_b.py")
    p = make_project(
        tmp_path, [w1, w2], sandbox="off", files=BREAKABLE, integration_test=f"{pytest_cmd} tests"
    )
    p.run_worker("W1")
    p.run_worker("W2")
    assert p.state("W1")["state"] == p.state("W2")["state"] == "SUCCESS"
    p.merge()
    verdicts = p.verdicts()
    assert verdicts["W1"] == "MERGED" and verdicts["W2"] != "MERGED", verdicts
    assert git(p.repo, "show", "main:src/util.py") == "def base(x):\n    return x"
