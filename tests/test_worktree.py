"""Worktrees: start points, dependency merges and conflicts, copy, the exclude rules."""

from __future__ import annotations

import pytest
from conftest import boss, git, make_repo
from worker_helpers import make_plan, worker

from boss.core import status as st
from boss.core.config import load_config
from boss.core.errors import StateError
from boss.core.paths import PlanPaths
from boss.core.worktrees import copy_files, tool_excludes
from worker.lifecycle.run import run_worker
from worker.lifecycle.worktree import prepare


@pytest.fixture
def repo(tmp_path, monkeypatch):
    r = make_repo(tmp_path / "r", {"src/shared.txt": "base\n", "README.md": "r\n"})
    monkeypatch.chdir(r)
    return r


def test_conflicting_dependencies_fail_the_dependent_with_the_files(repo):
    w1 = worker("W1", steps=[{"write": {"src/shared.txt": "one\n"}}], test="grep -q one src/shared.txt")
    w2 = worker("W2", steps=[{"write": {"src/shared.txt": "two\n"}}], test="grep -q two src/shared.txt")
    w3 = worker("W3", depends_on=["W1", "W2"])
    paths, m = make_plan(repo, [w1, w2, w3])
    config = load_config(repo)
    assert run_worker(paths, m, config, "W1") == st.SUCCESS
    assert run_worker(paths, m, config, "W2") == st.SUCCESS
    assert run_worker(paths, m, config, "W3") == st.FAILED
    reason = st.read(paths.status("W3")).reason
    assert "W1, W2 conflict in src/shared.txt" in reason
    assert git(paths.worktree("W3"), "status", "--porcelain") == ""  # the merge was aborted
    # Its branch is its own although the first run stopped before its start was final.
    assert run_worker(paths, m, config, "W3") == st.FAILED
    assert "W1, W2 conflict in src/shared.txt" in st.read(paths.status("W3")).reason


def test_prepare_resets_a_reused_worktree_and_fresh_recreates_it(repo):
    paths, m = make_plan(repo, [worker("W1")])
    first = prepare(paths, m, m.workers[0])
    assert first.created
    (first.path / "junk.txt").write_text("left over")
    (first.path / "src/shared.txt").write_text("dirty")
    again = prepare(paths, m, m.workers[0])
    assert not again.created and again.start == first.start
    assert not (first.path / "junk.txt").exists()
    assert (first.path / "src/shared.txt").read_text() == "base\n"
    fresh = prepare(paths, m, m.workers[0], fresh=True)
    assert fresh.created
    assert git(repo, "rev-parse", f"refs/boss/{paths.plan}/W1/start") == first.start


def test_missing_base_branch_is_a_clear_error(repo):
    paths, m = make_plan(repo, [worker("W1")])
    from dataclasses import replace

    broken = replace(m, base="gone", base_commit="")
    with pytest.raises(StateError, match="branch 'gone' does not exist"):
        prepare(paths, broken, broken.workers[0])


def test_copy_files_with_globs_and_folders(repo, tmp_path):
    (repo / ".env").write_text("A=1")
    (repo / "config").mkdir()
    (repo / "config/local.json").write_text("{}")
    (repo / "keys").mkdir()
    (repo / "keys/a.pem").write_text("k")
    target = tmp_path / "wt"
    target.mkdir()
    copied = copy_files(repo, target, (".env", "config", "keys/*.pem", "missing.txt"))
    assert copied == [".env", "config", "keys/a.pem"]
    assert (target / "config/local.json").read_text() == "{}"
    exclude = (repo / ".git/info/exclude").read_text()
    assert "/.env" in exclude and "/keys/a.pem" in exclude
    assert git(repo, "status", "--porcelain") == ""


def test_tool_excludes_cover_the_worktree_root_only_inside_the_repo(repo, tmp_path):
    inside = PlanPaths.of(repo, "p", ".worktrees")
    assert tool_excludes(inside) == ["/.boss/", "/.worktrees/"]
    outside = PlanPaths.of(repo, "p", str(tmp_path / "elsewhere"))
    assert tool_excludes(outside) == ["/.boss/"]


def test_a_worktree_root_outside_the_repository(repo, tmp_path):
    (repo / ".boss").mkdir(exist_ok=True)
    (repo / ".boss/config.yaml").write_text(f"worktree_root: {tmp_path / 'trees'}\n")
    paths, m = make_plan(repo, [worker("W1")])
    assert run_worker(paths, m, load_config(repo), "W1") == st.SUCCESS
    assert (tmp_path / "trees" / "p" / "W1" / "src/done.txt").is_file()


def test_a_branch_the_worker_did_not_make_is_never_reset(repo):
    # The user's own branch, with a commit, happens to be the worker's default branch name.
    git(repo, "branch", "feat/w1-work-w1", "main")
    git(repo, "checkout", "-q", "feat/w1-work-w1")
    (repo / "precious.txt").write_text("mine\n")
    git(repo, "add", "precious.txt")
    git(repo, "commit", "-qm", "my precious work")
    precious = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "main")
    paths, m = make_plan(repo, [worker("W1")])

    warning = boss("validate", "p", cwd=repo).stderr
    assert "Warning: worker W1, field branch: branch 'feat/w1-work-w1' already exists" in warning
    assert run_worker(paths, m, load_config(repo), "W1") == st.FAILED
    status = st.read(paths.status("W1"))
    assert (
        "field branch: branch 'feat/w1-work-w1' already exists and was not made by this worker"
        in status.reason
    )
    assert git(repo, "rev-parse", "feat/w1-work-w1") == precious
    assert not paths.worktree("W1").exists()


def test_a_branch_of_another_plan_is_refused_and_the_workers_own_is_reused(repo):
    paths_a, m_a = make_plan(repo, [worker("W1")], plan="a")
    config = load_config(repo)
    assert run_worker(paths_a, m_a, config, "W1") == st.SUCCESS
    assert run_worker(paths_a, m_a, config, "W1") == st.SUCCESS  # its own branch: reset and redone

    paths_b, m_b = make_plan(repo, [worker("W1")], plan="b")  # the same default branch name
    assert run_worker(paths_b, m_b, config, "W1") == st.FAILED
    assert "was not made by this worker" in st.read(paths_b.status("W1")).reason
    assert git(repo, "rev-parse", "feat/w1-work-w1") == st.read(paths_a.status("W1")).head_commit != ""
