"""TIER 2 safeguard: checkpoints of a real worktree under refs/boss/, and restoring them."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import git, make_repo, worker_cmd, write_files
from worker_helpers import make_plan, worker

from boss.core import checkpoint as cp
from boss.core import statelog
from boss.core.errors import StateError

FILES = {
    "README.md": "# sample\n",
    "src/app.py": "A = 1\n",
    "src/gone.py": "G = 1\n",
    ".gitignore": "*.log\n",
}


@pytest.fixture
def wt(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path / "repo", FILES)
    path = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "w1", str(path))
    return path


def dirty(wt: Path) -> None:
    write_files(wt, {"src/app.py": "A = 2\n", "src/new.py": "N = 1\n", "debug.log": "ignored\n"})
    (wt / "src/gone.py").unlink()
    git(wt, "add", "src/app.py")


def test_a_checkpoint_keeps_the_worktree_and_touches_nothing(wt: Path) -> None:
    dirty(wt)
    status = git(wt, "status", "--porcelain")
    staged = git(wt, "diff", "--cached", "--name-only")
    head = git(wt, "rev-parse", "HEAD")
    taken = cp.take(wt, "p", "W1", "before rm")
    assert (taken.ref, taken.number, taken.created, taken.parent) == (
        "refs/boss/checkpoints/p/W1/1",
        1,
        True,
        head,
    )
    assert git(wt, "rev-parse", taken.ref) == taken.commit
    assert git(wt, "show", f"{taken.commit}:src/app.py") == "A = 2"
    assert git(wt, "show", f"{taken.commit}:src/new.py") == "N = 1"
    names = git(wt, "ls-tree", "-r", "--name-only", taken.commit).splitlines()
    assert "src/gone.py" not in names
    assert "debug.log" not in names  # ignored files are not kept
    assert git(wt, "log", "-1", "--format=%s", taken.commit) == "before rm"
    assert git(wt, "status", "--porcelain") == status
    assert git(wt, "diff", "--cached", "--name-only") == staged
    assert git(wt, "rev-parse", "HEAD") == head
    assert git(wt, "branch", "--show-current") == "w1"


def test_the_same_state_reuses_the_last_checkpoint(wt: Path) -> None:
    first = cp.take(wt, "p", "W1", "one")
    assert first.tree == git(wt, "rev-parse", "HEAD^{tree}")  # clean: HEAD's tree
    again = cp.take(wt, "p", "W1", "two")
    assert (again.ref, again.created) == (first.ref, False)
    (wt / "x.txt").write_text("x")
    assert cp.take(wt, "p", "W1", "three").number == 2
    assert [c.number for c in cp.list_checkpoints(wt, "p", "W1")] == [1, 2]
    assert cp.list_checkpoints(wt, "p", "W2") == []


def test_old_checkpoints_are_pruned(wt: Path, monkeypatch) -> None:
    monkeypatch.setattr(cp, "KEEP", 3)
    for i in range(5):
        (wt / "x.txt").write_text(str(i))
        cp.take(wt, "p", "W1", f"n{i}")
    assert [c.number for c in cp.list_checkpoints(wt, "p", "W1")] == [3, 4, 5]


def test_restore_brings_back_files_untracked_files_and_head(wt: Path) -> None:
    dirty(wt)
    taken = cp.take(wt, "p", "W1", "before damage")
    head = git(wt, "rev-parse", "HEAD")
    # the risky command: destroy files and move HEAD
    git(wt, "add", "-A")
    git(wt, "commit", "-q", "-m", "oops")
    git(wt, "rm", "-q", "-r", "src")
    git(wt, "commit", "-q", "-m", "worse")
    (wt / "junk.txt").write_text("junk")
    target, before = cp.restore(wt, "p", "W1")
    assert target.ref == taken.ref
    assert before.number == 2
    assert git(wt, "rev-parse", "HEAD") == head
    assert git(wt, "branch", "--show-current") == "w1"
    assert (wt / "src/app.py").read_text() == "A = 2\n"
    assert (wt / "src/new.py").read_text() == "N = 1\n"
    assert not (wt / "src/gone.py").exists()
    assert not (wt / "junk.txt").exists()
    assert (wt / "debug.log").exists()  # ignored files are left alone
    status = {line.strip() for line in git(wt, "status", "--porcelain").splitlines()}
    assert status == {"M src/app.py", "D src/gone.py", "?? src/new.py"}  # unstaged, as noted
    # and the restore can be undone
    cp.restore(wt, "p", "W1", str(before.number))
    assert (wt / "junk.txt").read_text() == "junk"
    assert not (wt / "src").exists()


def test_finding_checkpoints(wt: Path) -> None:
    with pytest.raises(StateError, match="no checkpoints yet"):
        cp.find(wt, "p", "W1")
    taken = cp.take(wt, "p", "W1", "x")
    assert cp.find(wt, "p", "W1", "1") == taken.__class__(
        taken.ref, 1, taken.commit, taken.tree, taken.parent, False
    )
    assert cp.find(wt, "p", "W1", taken.ref).number == 1
    with pytest.raises(StateError, match="no checkpoint '7'"):
        cp.find(wt, "p", "W1", "7")


def test_worker_restore_command(repo: Path) -> None:
    paths, _m = make_plan(repo, [worker("W1")])
    tree = paths.worktree("W1")
    git(repo, "worktree", "add", "-q", "-b", "feat/w1", str(tree))
    write_files(tree, {"README.md": "changed\n"})
    cp.take(tree, "p", "W1", "before")
    (tree / "README.md").write_text("broken\n")
    listed = worker_cmd("restore", "--plan", "p", "W1", "--list", "--json", cwd=repo)
    assert '"number": 1' in listed.stdout
    out = worker_cmd("restore", "--plan", "p", "W1", cwd=repo)
    assert "restored checkpoint refs/boss/checkpoints/p/W1/1" in out.stdout
    assert (tree / "README.md").read_text() == "changed\n"
    events = [e for e in statelog.read(paths.log) if e.action == "restore"]
    assert len(events) == 1
    assert events[0].iteration_id == "W1"
    assert events[0].artifacts == "refs/boss/checkpoints/p/W1/1"
    bad = worker_cmd("restore", "--plan", "p", "W9", cwd=repo, check=2)
    assert "no worker 'W9'" in bad.stderr
    missing = worker_cmd("restore", "--plan", "p", "W1", "9", cwd=repo, check=1)
    assert "no checkpoint '9'" in missing.stderr
