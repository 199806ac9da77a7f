"""boss clean: remove finished work's worktrees, branches and refs; never unmerged work unless forced."""

from __future__ import annotations

import json

import pytest
from conftest import boss, git
from merge_helpers import make_scenario, spec

from boss.ceremony import clean, merge, quarantine
from boss.core import status as st
from boss.core.config import load_config


def branches(repo):
    return set(git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads").split())


def worktrees(repo):
    return {line.split(" ", 1)[1] for line in git(repo, "worktree", "list", "--porcelain").splitlines()
            if line.startswith("worktree ")}  # fmt: skip


@pytest.fixture
def s(tmp_path):
    """After a ceremony: W1 merged, W2 reverted (unmerged), W3 rejected, W4 skipped (no branch)."""
    s = make_scenario(tmp_path / "repo", [spec("W1"), spec("W2"), spec("W3"), spec("W4")])
    s.work("W1", {"src/a.txt": "a\n" * 5000})
    s.work("W2", {"src/bad.txt": "BROKEN\n"})
    s.work("W3", {"src/c.txt": "c\n", "README.md": "x\n"}, state=st.SCOPE_VIOLATION, violations=["README.md"])
    s.status("W4", st.SKIPPED, reason="a dependency failed")
    for wid in ("W1", "W2", "W3"):
        s.worktree(wid)
        git(s.repo, "update-ref", f"refs/boss/p/{wid}/start", s.base)
    quarantine.reject(s.paths, s.m, load_config(s.repo), "W3", "not wanted")
    j = merge.run(s.paths, s.m, load_config(s.repo), lambda _line: None)
    assert {r.id: r.verdict for r in j.records} == {
        "W1": "MERGED",
        "W2": "REVERTED",
        "W3": "QUARANTINED",
        "W4": "SKIPPED",
    }
    return s


def test_clean_removes_finished_work_and_keeps_unmerged(s):
    proc = boss("clean", "p", cwd=s.repo)
    out = proc.stdout
    assert "kept W2: branch feat/w2-work-w2 has work not merged into main" in out
    assert "Freed" in out and "KB" in out
    left = branches(s.repo)
    assert "feat/w2-work-w2" in left and "main" in left
    assert not left & {"feat/w1-work-w1", "feat/w3-work-w3", "boss/p/integration"}
    paths = worktrees(s.repo)
    assert str(s.paths.worktree("W2")) in paths and len(paths) == 2
    assert not s.paths.worktree("W1").exists() and not (s.paths.worktree_root / "p" / "_integration").exists()
    assert git(s.repo, "for-each-ref", "--format=%(refname)", "refs/boss/") == "refs/boss/p/W2/start"
    assert git(s.repo, "status", "--porcelain") == ""


def test_force_removes_unmerged_work_too(s):
    data = json.loads(boss("clean", "p", "--force", "--json", cwd=s.repo).stdout)
    assert data["kept"] == [] and data["freed"] > 10000
    assert branches(s.repo) == {"main"}
    assert worktrees(s.repo) == {str(s.repo)}


def test_uncommitted_changes_in_a_merged_worktree_are_kept(s):
    (s.paths.worktree("W1") / "src" / "a.txt").write_text("unsaved\n")
    done = clean.clean_plan(s.paths, s.m, load_config(s.repo))
    assert any("W1: its worktree" in k and "uncommitted" in k for k in done.kept)
    assert s.paths.worktree("W1").exists() and "feat/w1-work-w1" in branches(s.repo)


def test_dry_run_removes_nothing(s):
    before = (branches(s.repo), worktrees(s.repo))
    proc = boss("clean", "--dry-run", cwd=s.repo)
    assert "would remove worktree" in proc.stdout and "Would free" in proc.stdout
    assert (branches(s.repo), worktrees(s.repo)) == before


def test_an_unlanded_result_and_a_ceremony_in_progress_are_kept(tmp_path):
    s = make_scenario(tmp_path / "repo", [spec("W1")])
    s.work("W1", {"src/a.txt": "a\n"})
    (s.repo / "src").mkdir(exist_ok=True)
    (s.repo / "src/a.txt").write_text("mine\n")  # in the merged work's way: the ceremony cannot land
    merge.run(s.paths, s.m, load_config(s.repo), lambda _line: None)
    done = clean.clean_plan(s.paths, s.m, load_config(s.repo))
    assert any("boss/p/integration: holds a tested result" in k for k in done.kept)
    assert "boss/p/integration" in branches(s.repo)
    assert any("W1: branch" in k for k in done.kept)  # its work is on the integration branch only

    s2 = make_scenario(tmp_path / "repo2", [spec("W1")])
    s2.work("W1", {"src/a.txt": "a\n"})
    boss("merge", cwd=s2.repo, check=None, env={"BOSS_MERGE_CRASH_AT": "land"})
    proc = boss("clean", cwd=s2.repo)
    assert "in progress" in proc.stdout and "boss/p/integration" in branches(s2.repo)
    boss("clean", "--force", cwd=s2.repo)
    assert "boss/p/integration" not in branches(s2.repo)
    assert not (s2.paths.merge_dir / "journal.json").exists()


def test_all_removes_everything_the_tool_made(s):
    proc = boss("clean", "--all", cwd=s.repo)
    assert "kept" in proc.stdout and (s.repo / ".boss").is_dir()  # W2's unmerged work is kept
    boss("clean", "--all", "--force", cwd=s.repo)
    assert not (s.repo / ".boss").exists() and not s.paths.worktree_root.exists()
    assert branches(s.repo) == {"main"} and worktrees(s.repo) == {str(s.repo)}
    assert git(s.repo, "for-each-ref", "refs/boss/") == ""
    assert git(s.repo, "status", "--porcelain") == ""


def test_all_when_everything_merged(tmp_path):
    s = make_scenario(tmp_path / "repo", [spec("W1")])
    s.work("W1", {"src/a.txt": "a\n"})
    s.worktree("W1")
    boss("merge", cwd=s.repo)
    boss("clean", "--all", cwd=s.repo)
    assert not (s.repo / ".boss").exists() and branches(s.repo) == {"main"}
    assert (s.repo / "src/a.txt").exists()
    boss("clean", "p", "--all", cwd=s.repo, check=2)


def test_dry_run_says_what_the_real_run_does(s):
    dry = json.loads(boss("clean", "p", "--dry-run", "--json", cwd=s.repo).stdout)
    real = json.loads(boss("clean", "p", "--json", cwd=s.repo).stdout)
    for key in ("worktrees", "branches", "refs", "kept"):
        assert sorted(dry[key]) == sorted(real[key]), key
    assert "feat/w1-work-w1" in real["branches"]  # its worktree went first, then the branch


def test_failed_and_crashed_workers_keep_their_branch_for_the_manual_step(tmp_path):
    s = make_scenario(tmp_path / "repo", [spec("W1"), spec("W2")])
    for wid in ("W1", "W2"):
        git(s.repo, "branch", f"feat/{wid.lower()}-work-{wid.lower()}", s.base)
        s.worktree(wid)
    s.status("W1", st.FAILED, reason="gave up", start_commit=s.base)
    s.status("W2", st.RUNNING, pid=2**22 + 1, start_commit=s.base)  # a dead process: CRASHED
    s.paths.blocker("W1").write_text("finish on the branch\n")
    done = clean.clean_plan(s.paths, s.m, load_config(s.repo))
    assert [k.split(";")[0] for k in done.kept] == ["W1: FAILED", "W2: CRASHED"]
    assert {"feat/w1-work-w1", "feat/w2-work-w2"} <= branches(s.repo)
    assert s.paths.worktree("W1").is_dir()
    done = clean.clean_plan(s.paths, s.m, load_config(s.repo), force=True)
    assert done.kept == [] and branches(s.repo) == {"main"}


def test_all_keeps_the_users_own_files_in_dot_boss(s):
    (s.repo / ".boss/config.yaml").write_text("jobs: 2\n")
    (s.repo / ".boss/policy.yaml").write_text("rules: []\n")
    out = boss("clean", "--all", "--force", cwd=s.repo).stdout
    assert f"kept {s.repo / '.boss/config.yaml'}: your own file" in out
    assert sorted(p.name for p in (s.repo / ".boss").iterdir()) == ["config.yaml", "policy.yaml"]
    assert (s.repo / ".boss/config.yaml").read_text() == "jobs: 2\n"
    assert branches(s.repo) == {"main"}
