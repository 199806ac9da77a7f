"""Paths an agent may commit to get something past the scope check or the freeze: a link that
leaves the worktree, a submodule, a name with a control character, a frozen file replaced by
a link to a file outside (which the restore must never write through)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from conftest import git, make_repo
from worker_helpers import make_plan, worker

from boss.core import scope, statelog
from boss.core import status as st
from boss.core.config import load_config
from worker.lifecycle.frozen import Frozen
from worker.lifecycle.run import run_worker

FILES = {
    "src/calc.py": "def add(a, b):\n    return 0\n",
    "conftest.py": "import sys, pathlib\nsys.path.insert(0, str(pathlib.Path(__file__).parent / 'src'))\n",
    "tests/test_add.py": "def test_add():\n    from calc import add\n    assert add(2, 3) == 5\n",
}
TEST = f"{sys.executable} -m pytest -q tests/test_add.py"
FIX = {"replace": {"src/calc.py": ["return 0", "return a + b"]}}


@pytest.fixture
def calc(tmp_path, monkeypatch):
    r = make_repo(tmp_path / "calc", FILES)
    monkeypatch.chdir(r)
    return r


def attack(repo: Path, *steps: dict, scope=(r"^src/",)):
    w = worker("W1", scope=scope, test=TEST, steps=list(steps), max_iterations=1, max_strategies=1)
    paths, m = make_plan(repo, [w])
    state = run_worker(paths, m, load_config(repo), "W1")
    return state, st.read(paths.status("W1")), statelog.read(paths.log)


def commit_link(repo: Path, path: str, target: str) -> str:
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).symlink_to(target)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", f"link {path}")
    return git(repo, "rev-parse", "HEAD")


@pytest.mark.parametrize(
    ("links", "leaving"),
    [
        ({"src/p": "/etc/passwd"}, ["src/p"]),
        ({"src/up": "../../outside"}, ["src/up"]),
        ({"src/a": "b/../../../x"}, ["src/a"]),
        ({"src/root": "..", "src/esc": "root/.."}, ["src/esc"]),  # lexically inside, really not
        ({"src/l1": "l2", "src/l2": "l1"}, ["src/l1", "src/l2"]),  # a loop
        ({"src/ok": "calc.py", "src/d": "../README.md"}, []),
    ],
)
def test_a_committed_link_leaving_the_worktree_is_a_violation_whatever_the_scope(calc, links, leaving):
    start = git(calc, "rev-parse", "HEAD")
    for path, target in links.items():
        head = commit_link(calc, path, target)
    found = scope.branch_problems(calc, start, head, [".*"])
    assert list(found) == leaving
    assert all("symbolic link to" in why and "outside the worktree" in why for why in found.values())
    assert scope.violations(calc, start, [".*"]) == leaving  # the worktree's check: committed there


def test_an_uncommitted_link_leaving_the_worktree_is_fed_back(calc, tmp_path):
    start = git(calc, "rev-parse", "HEAD")
    (calc / "src/out").symlink_to(tmp_path)
    found = scope.problems(calc, start, [".*"])
    assert found == {"src/out": f"a symbolic link to {tmp_path}, outside the worktree"}


def test_a_worker_that_commits_a_link_out_ends_in_scope_violation(calc, tmp_path):
    state, status, _ = attack(calc, {**FIX, "run": f"ln -s {tmp_path} src/escape"})
    assert state == st.SCOPE_VIOLATION
    assert status.violations == ["src/escape"]
    assert f"src/escape (a symbolic link to {tmp_path}, outside the worktree)" in status.reason


def test_a_gitlink_is_a_violation(calc):
    start = git(calc, "rev-parse", "HEAD")
    git(calc, "update-index", "--add", "--cacheinfo", f"160000,{start},src/sub")
    git(calc, "commit", "-qm", "a submodule entry")
    found = scope.branch_problems(calc, start, git(calc, "rev-parse", "HEAD"), [".*"])
    assert found == {"src/sub": "a submodule (gitlink): its content is not in this repository"}


def test_a_worker_that_makes_a_nested_repository_ends_in_scope_violation(calc):
    nested = "git init -q src/sub && git -C src/sub commit -q --allow-empty -m x"
    state, status, _ = attack(calc, {**FIX, "run": nested})
    assert state == st.SCOPE_VIOLATION
    assert status.violations == ["src/sub"]
    assert "submodule (gitlink)" in status.reason


def test_a_nested_repository_in_the_worktree_is_fed_back(calc):
    start = git(calc, "rev-parse", "HEAD")
    git(calc, "init", "-q", "src/sub")
    (calc / "src/sub/f").write_text("x")
    git(calc / "src/sub", "add", "f")
    git(calc / "src/sub", "commit", "-qm", "x")
    found = scope.problems(calc, start, [".*"])
    assert list(found) == ["src/sub/"] and "nested git repository" in found["src/sub/"]


def test_a_name_with_a_newline_is_a_violation_although_the_regex_matches_it():
    import re

    assert re.search(r"^src/.*\.py$", "src/x.py\n")  # why: `$` matches before a final newline
    names = ["src/x.py\n", "src/y.py", "src/t\tab.py", "src/\x7f.py"]
    assert scope.out_of_scope(names, [r"^src/.*\.py$"]) == sorted(set(names) - {"src/y.py"})
    assert scope.described({"src/x.py\n": "its name holds a control character"}) == [
        "src/x.py\\n (its name holds a control character)"
    ]


def test_a_worker_that_commits_a_name_with_a_newline_ends_in_scope_violation(calc):
    state, status, log = attack(calc, {**FIX, "write": {"src/x.py\n": "x = 1\n"}}, scope=[r"^src/.*\.py$"])
    assert state == st.SCOPE_VIOLATION
    assert status.violations == ["src/x.py\n"]
    assert "src/x.py\\n (its name holds a control character)" in status.reason
    assert "\n" not in [e for e in log if e.action == "scope"][-1].result


def test_a_frozen_test_replaced_by_a_link_is_restored_without_writing_through_it(calc, tmp_path):
    bashrc = tmp_path / "bashrc"
    bashrc.write_text("# the user's own\n")
    swap = f"rm tests/test_add.py && ln -s {bashrc} tests/test_add.py"
    state, status, log = attack(calc, {**FIX, "run": swap})
    assert bashrc.read_text() == "# the user's own\n"
    assert state == st.SUCCESS  # the test was put back as a file, and the fix passes it
    assert "tests/test_add.py" in next(e.result for e in log if e.action == "tamper")
    assert git(calc, "ls-tree", status.head_commit, "tests/test_add.py").startswith("100644 blob")


def frozen_tree(root: Path) -> Frozen:
    (root / "tests").mkdir(parents=True)
    (root / "tests/test_a.py").write_text("test a\n")
    (root / "tests/sub").mkdir()
    (root / "tests/sub/test_b.py").write_text("test b\n")
    return Frozen(root, ["tests/test_a.py", "tests/sub"], ["conftest.py", "tests/conftest.py"])


def test_restore_replaces_a_linked_file_a_hard_link_and_a_linked_folder(tmp_path):
    root, outside = tmp_path / "wt", tmp_path / "home"
    frozen = frozen_tree(root)
    outside.mkdir()
    (outside / ".bashrc").write_text("mine\n")
    (outside / "test_b.py").write_text("mine too\n")
    (root / "tests/test_a.py").unlink()
    (root / "tests/test_a.py").symlink_to(outside / ".bashrc")
    assert frozen.restore() == ["tests/test_a.py"]
    assert (
        not (root / "tests/test_a.py").is_symlink() and (root / "tests/test_a.py").read_text() == "test a\n"
    )
    (root / "tests/test_a.py").unlink()
    os.link(outside / ".bashrc", root / "tests/test_a.py")  # same content path, other inode
    assert frozen.restore() == ["tests/test_a.py"]
    assert (root / "tests/test_a.py").stat().st_nlink == 1
    import shutil

    shutil.rmtree(root / "tests/sub")
    (root / "tests/sub").symlink_to(outside)
    assert frozen.restore() == ["tests/sub", "tests/sub/test_b.py"]
    assert (root / "tests/sub").is_dir() and not (root / "tests/sub").is_symlink()
    assert (root / "tests/sub/test_b.py").read_text() == "test b\n"
    assert (outside / ".bashrc").read_text() == "mine\n" and (
        outside / "test_b.py"
    ).read_text() == "mine too\n"
    assert frozen.tampered() == []


def test_restore_replaces_a_linked_parent_folder(tmp_path):
    root, outside = tmp_path / "wt", tmp_path / "home"
    frozen = frozen_tree(root)
    outside.mkdir()
    (outside / "test_a.py").write_text("mine\n")
    import shutil

    shutil.rmtree(root / "tests")
    (root / "tests").symlink_to(outside)
    changed = frozen.restore()
    assert "tests/test_a.py" in changed
    assert not (root / "tests").is_symlink() and (root / "tests/test_a.py").read_text() == "test a\n"
    assert (outside / "test_a.py").read_text() == "mine\n"
    assert frozen.tampered() == []


def test_a_harness_file_the_agent_adds_is_removed_and_a_link_to_it_too(tmp_path):
    root = tmp_path / "wt"
    frozen = frozen_tree(root)
    (root / "conftest.py").write_text("cheat\n")
    (tmp_path / "x.py").write_text("cheat\n")
    (root / "tests/conftest.py").symlink_to(tmp_path / "x.py")
    assert frozen.restore() == ["conftest.py", "tests/conftest.py"]
    assert not (root / "conftest.py").exists() and not (root / "tests/conftest.py").is_symlink()
    assert (tmp_path / "x.py").read_text() == "cheat\n"


def test_names_that_are_not_utf8_and_links_to_absolute_paths_through_a_chain():
    assert scope.name_problem("src/\ufffd.py") == "its name is not valid UTF-8"
    links = {"src/b": "/etc"}
    assert scope.leaves("src/a", "b/passwd", links.get)
    assert scope.leaves("src/a", "/etc/passwd", links.get)
    assert not scope.leaves("src/a", "./c/../d", links.get)
