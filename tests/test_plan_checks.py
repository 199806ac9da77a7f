"""Warnings judged against the plan's base: a scope that matches no tracked file, and an
acceptance test whose frozen files hold the worker's whole scope (`boss plan --split` with a
bare `{dir}`). Warnings only: the commands exit 0."""

from __future__ import annotations

import pytest
import yaml
from conftest import boss, git, make_repo, write_files

from boss.core import pytest_report, testfiles

FILES = {
    "pkg/a/__init__.py": "",
    "pkg/a/core.py": "x = 1\n",
    "pkg/a/test_core.py": "def test_x():\n    pass\n",
    "pkg/b/__init__.py": "",
    "pkg/b/core.py": "y = 1\n",
    "tests/__init__.py": "",
    "tests/conftest.py": "",
    "tests/helpers.py": "",
    "tests/test_b.py": "def test_y():\n    pass\n",
    "pyproject.toml": "[project]\nname = 'p'\n",
    "check.sh": "exit 1\n",
}


@pytest.fixture
def repo(tmp_path, monkeypatch):
    r = make_repo(tmp_path / "r", FILES)
    monkeypatch.chdir(r)
    return r


def test_split_with_a_bare_dir_in_the_test_warns_that_the_worker_could_change_nothing(repo):
    res = boss("plan", "--split", "pkg/*", "--test", "pytest {dir}", "Tidy", cwd=repo)
    warned = [line for line in res.stderr.splitlines() if line.startswith("Warning: ")]
    assert len(warned) == 2, res.stderr
    assert warned[0].startswith(
        "Warning: worker W1 field test: the gate freezes the files `pytest pkg/a` names, and its harness, "
        "after the red gate, and they hold every file the worker's scope matches (pkg/a/__init__.py, "
        "pkg/a/core.py, pkg/a/test_core.py), so the worker could change none of them; "
    )
    assert warned[1].startswith(
        "Warning: worker W2 field test: the gate freezes the files `pytest pkg/b` names"
    )
    plan_md = (repo / ".boss/plans/tidy/plan.md").read_text()
    assert "worker W1 field test: the gate freezes" in plan_md
    # boss validate says the same, and the plan stays valid
    res = boss("validate", "tidy", cwd=repo)
    assert res.stdout.startswith(".boss/plans/tidy/manifest.yaml: valid")
    assert [line for line in res.stderr.splitlines() if line.startswith("Warning: ")] == warned


def write_manifest(repo, workers):
    raw = {"version": 1, "plan": "p", "base": "main", "base_commit": git(repo, "rev-parse", "HEAD")}
    raw["defaults"] = {"agent": "scripted"}
    write_files(repo, {".boss/plans/p/manifest.yaml": yaml.safe_dump({**raw, "workers": workers})})


def test_a_scope_matching_no_tracked_file_and_a_frozen_scope_warn_a_good_plan_does_not(repo):
    base = git(repo, "rev-parse", "HEAD")[:12]
    good = [
        {"id": "W1", "title": "a", "scope": ["^pkg/a/core\\.py$"], "test": "pytest pkg/a/test_core.py -q"},
        {"id": "W2", "title": "b", "scope": ["^pkg/b/"], "test": "pytest tests/test_b.py"},
        {"id": "W3", "title": "c", "scope": ["^check\\.sh$"], "test": "grep -q ok check.sh"},
    ]
    write_manifest(repo, good)
    res = boss("validate", "p", cwd=repo)
    assert "Warning" not in res.stderr
    bad = [
        {"id": "W1", "title": "a", "scope": ["^pkg/a/", "^pkg/new/"], "test": "pytest pkg/a/test_core.py"},
        {"id": "W2", "title": "b", "scope": ["^pyproject\\.toml$"], "test": "pytest -q"},  # its harness
        {"id": "W3", "title": "c", "scope": ["^check\\.sh$"], "test": "bash check.sh"},
        {"id": "W4", "title": "d", "scope": ["^tests/"], "test": "python -m unittest tests.test_b"},
    ]
    write_manifest(repo, bad)
    for command in (["validate", "p"], ["render", "p"]):
        res = boss(*command, cwd=repo)
        warned = [line for line in res.stderr.splitlines() if line.startswith("Warning: ")]
        assert warned[0] == (
            f"Warning: worker W1 field scope: '^pkg/new/' matches no file tracked on main at {base}; "
            "fine if the worker (or one it depends on) creates it, otherwise check the pattern"
        )
        assert [line.split(":")[1].strip() for line in warned[1:]] == [
            "worker W2 field test",
            "worker W3 field test",
        ]  # W1 can change pkg/a/core.py, W4 the other files in tests/
        assert "(pyproject.toml)" in warned[1] and "(check.sh)" in warned[2]


@pytest.mark.parametrize(
    "command",
    [
        "pytest pkg/a",
        "pytest pkg/a/test_core.py::test_x -q",
        "python -m pytest tests",
        "pytest tests/test_b.py -k y",
        "python -m unittest tests.test_b",
        "bash check.sh",
        "./check.sh --fast",
        "pytest ../outside.py /etc/passwd pkg/../pkg/b",
        "grep -q ok pkg/a/core.py",
        "pytest",
    ],
)
def test_the_plan_check_freezes_what_the_gate_freezes(repo, command):
    """frozen_in_tree (from the base's file list) agrees with the gate (in a worktree)."""
    files = git(repo, "ls-files").splitlines()
    roots, harness = testfiles.frozen_in_tree(command, files, pytest=pytest_report.is_pytest(command))
    assert roots == testfiles.test_paths(command, repo)
    on_disk = pytest_report.harness(repo, roots) if pytest_report.is_pytest(command) else []
    assert harness == [p for p in on_disk if (repo / p).is_file()]
