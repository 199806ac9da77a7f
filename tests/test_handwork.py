"""Work by hand, end to end: a person's commits on a worker's branch are merged by `boss merge`
(verified like any worker's), never reset by `boss retry` or `worker run` nor deleted by
`boss clean` without --discard; `boss drop` dismisses a worker for good; `boss clean` removes
what a worker gone from the manifest left. Real git, the real CLIs, the scripted agent."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import boss, git, make_repo, worker_cmd
from merge_helpers import CHECK_SH
from worker_helpers import make_plan, worker

from boss.core import handwork
from boss.core import status as st
from boss.core.paths import PlanPaths

FILES = {"README.md": "# sample\n", "check.sh": CHECK_SH, "src/shared.txt": "one\n"}
# An agent that never makes the test pass: the worker ends FAILED with a blocker report.
NEVER = [{"write": {"src/wip.txt": "half done\n"}}]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", FILES)


def plan(repo: Path, *workers: dict) -> PlanPaths:
    paths, _ = make_plan(repo, list(workers), integration_test="bash check.sh")
    return paths


def branch_of(paths: PlanPaths, wid: str) -> str:
    status = st.read(paths.status(wid))
    assert status is not None
    return status.branch


def commit_by_hand(paths: PlanPaths, wid: str, files: dict[str, str], message: str) -> str:
    """What a person does after reading the blocker report: commit on the worker's branch."""
    wt = paths.worktree(wid)
    for rel, text in files.items():
        (wt / rel).parent.mkdir(parents=True, exist_ok=True)
        (wt / rel).write_text(text)
    git(wt, "add", "-A")
    git(wt, "commit", "-q", "-m", message)
    return git(wt, "rev-parse", "HEAD")


def failed_with_hand_fix(repo: Path) -> tuple[PlanPaths, str]:
    paths = plan(repo, worker("W1", steps=NEVER))
    worker_cmd("run", "p", "W1", cwd=repo, check=1)
    status = st.read(paths.status("W1"))
    assert status is not None and status.state == st.FAILED and "gave up" in status.reason
    assert paths.blocker("W1").is_file()
    # boss's record: the head the run left (the branch rolled back to its start)
    assert (
        git(repo, "rev-parse", "refs/boss/p/W1/head")
        == status.start_commit
        == git(repo, "rev-parse", status.branch)
    )
    return paths, commit_by_hand(paths, "W1", {"src/done.txt": "done by a person\n"}, "finish W1 by hand")


def test_a_failed_worker_finished_by_hand_is_merged_and_the_report_says_so(repo):
    paths, fix = failed_with_hand_fix(repo)
    dry = json.loads(boss("merge", "p", "--dry-run", "--json", cwd=repo).stdout)
    assert dry["order"] == ["W1"] and "finished by hand: 1 commit" in dry["workers"][0]["reason"]
    out = boss("merge", "p", cwd=repo, check=0)
    assert "MERGED" in out.stdout
    assert git(repo, "show", "main:src/done.txt") == "done by a person"
    assert git(repo, "merge-base", "--is-ancestor", fix, "main") == ""
    report = json.loads((paths.merge_dir / "report.json").read_text())
    entry = report["workers"][0]
    assert entry["verdict"] == "MERGED" and entry["by_hand"] == 1 and entry["head"] == fix
    assert entry["by_hand_note"] == "finished by hand: 1 commit after boss's last"
    text = (paths.merge_dir / "REPORT.md").read_text()
    assert "finished by hand: 1 commit after boss's last" in text
    # Landed: the next ceremony finds it merged, with nothing to run.
    again = json.loads(boss("merge", "p", "--json", cwd=repo).stdout)
    assert again["workers"][0]["verdict"] == "MERGED" and again["test_runs"] == 0


def test_hand_commits_out_of_scope_are_quarantined_as_any_work(repo):
    paths, _ = failed_with_hand_fix(repo)
    commit_by_hand(paths, "W1", {"docs/notes.md": "outside\n"}, "and a note")
    out = boss("merge", "p", cwd=repo, check=1)
    assert (
        "QUARANTINED" in out.stdout
        and "finished by hand (2 commits), but git shows 1 path(s) outside" in out.stdout
    )
    assert git(repo, "ls-tree", "--name-only", "main", "src/") == "src/shared.txt"


def test_retry_refuses_to_reset_hand_commits_and_discard_drops_them(repo):
    paths, fix = failed_with_hand_fix(repo)
    branch = branch_of(paths, "W1")
    res = boss("retry", "W1", "--plan", "p", cwd=repo, check=1)
    line = res.stderr.strip()
    assert line.startswith("Error: worker W1: branch ") and "\n" not in line
    assert f"{fix[:10]} finish W1 by hand" in line and branch in line
    assert "boss merge p" in line and "--discard" in line
    assert git(repo, "rev-parse", branch) == fix
    assert st.read(paths.status("W1")).state == st.FAILED  # nothing was touched
    # run_workers.sh's path (`worker run`) refuses the same way
    res = worker_cmd("run", "p", "W1", cwd=repo, check=1)
    assert fix[:10] in res.stderr and git(repo, "rev-parse", branch) == fix
    res = boss("retry", "W1", "--plan", "p", "--discard", cwd=repo, check=1)
    assert "W1: FAILED" in res.stdout
    assert boss_git(repo, "merge-base", "--is-ancestor", fix, branch) == 1  # reset: the commit is gone
    assert handwork.hand_commits(paths, "W1", branch) == []
    # `worker run --discard` is the same way out for run_workers.sh's command
    again = commit_by_hand(paths, "W1", {"src/done.txt": "again\n"}, "second try by hand")
    worker_cmd("run", "p", "W1", cwd=repo, check=1)
    worker_cmd("run", "p", "W1", "--discard", cwd=repo, check=1)
    assert boss_git(repo, "merge-base", "--is-ancestor", again, branch) == 1


def boss_git(repo: Path, *args: str) -> int:
    """git's exit code."""
    return subprocess.run(["git", "-C", str(repo), *args], check=False, capture_output=True).returncode


def test_clean_keeps_hand_commits_without_discard(repo):
    paths, fix = failed_with_hand_fix(repo)
    branch = branch_of(paths, "W1")
    out = boss("clean", "p", "--force", cwd=repo).stdout
    assert f"kept W1: branch {branch} holds 1 commit boss did not make ({fix[:10]} finish W1 by hand)" in out
    assert git(repo, "rev-parse", branch) == fix and paths.worktree("W1").is_dir()
    out = boss("clean", "--all", "--force", cwd=repo).stdout
    assert git(repo, "rev-parse", branch) == fix and (repo / ".boss").is_dir()
    dry = boss("clean", "p", "--discard", "--dry-run", cwd=repo).stdout
    assert f"would discard commit on {branch}: {fix[:10]} finish W1 by hand" in dry
    assert git(repo, "rev-parse", branch) == fix
    out = boss("clean", "p", "--discard", cwd=repo).stdout
    assert f"discarded commit on {branch}: {fix[:10]} finish W1 by hand" in out
    assert boss_git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}") != 0
    assert not paths.worktree("W1").exists()


def test_a_dropped_reverted_worker_is_never_merged_again(repo):
    # W1 passes its own test but breaks the integration test: REVERTED by every ceremony.
    paths = plan(repo, worker("W1", steps=[{"write": {"src/done.txt": "BROKEN\n"}}]), worker("W2"))
    worker_cmd("run", "p", "W1", cwd=repo, check=0)
    worker_cmd("run", "p", "W2", cwd=repo, check=0)
    first = json.loads(boss("merge", "p", "--json", cwd=repo, check=1).stdout)
    assert {w["id"]: w["verdict"] for w in first["workers"]} == {"W1": "REVERTED", "W2": "MERGED"}
    out = boss("drop", "W1", "--plan", "p", "--reason", "the design changed", cwd=repo).stdout
    assert "W1: dropped (the design changed)" in out
    listed = boss("quarantine", "list", "--plan", "p", cwd=repo).stdout
    assert "W1" in listed and "DROPPED" in listed and "the design changed" in listed
    assert "W1: dropped (the design changed)" in boss("status", "p", cwd=repo).stdout
    for _ in range(2):
        report = json.loads(boss("merge", "p", "--json", cwd=repo, check=0).stdout)  # nothing left to merge
        w1 = report["workers"][0]
        assert w1["verdict"] == "DROPPED" and "the design changed" in w1["reason"]
        assert report["test_runs"] == 0 and report["counts"] == {"MERGED": 1, "DROPPED": 1}
    assert "**DROPPED**" in (paths.merge_dir / "REPORT.md").read_text()
    assert "| drop | the design changed |" in boss("log", "p", "--worker", "W1", cwd=repo).stdout
    # A dropped worker is not retried until the drop is taken back.
    res = boss("retry", "W1", "--plan", "p", cwd=repo, check=1)
    assert "boss drop W1 --undo" in res.stderr
    assert "no longer dropped" in boss("drop", "W1", "--plan", "p", "--undo", cwd=repo).stdout
    dry = json.loads(boss("merge", "p", "--dry-run", "--json", cwd=repo).stdout)
    assert dry["order"] == ["W1"]
    res = boss("drop", "W1", "--plan", "p", "--undo", cwd=repo, check=2)
    assert "W1 is not dropped" in res.stderr
    # dismissed for good: `boss clean` removes it as a rejected worker, without --force
    branch = branch_of(paths, "W1")
    assert f"kept W1: branch {branch} has work not merged" in boss("clean", "p", "--dry-run", cwd=repo).stdout
    boss("drop", "W1", "--plan", "p", "--reason", "really", cwd=repo)
    assert f"removed branch {branch}" in boss("clean", "p", cwd=repo).stdout


def test_a_dropped_failed_worker_with_hand_commits_is_not_merged(repo):
    failed_with_hand_fix(repo)
    boss("drop", "W1", "--plan", "p", "-m", "not worth it", cwd=repo)
    report = json.loads(boss("merge", "p", "--json", cwd=repo, check=1).stdout)
    assert report["workers"][0]["verdict"] == "DROPPED" and report["test_runs"] == 0
    assert git(repo, "ls-tree", "--name-only", "main", "src/") == "src/shared.txt"


def test_clean_removes_what_a_worker_gone_from_the_manifest_left(repo):
    paths = plan(repo, worker("W1"), worker("W2", scope=("^docs/",), test="test -f docs/done.txt",
                                               steps=[{"write": {"docs/done.txt": "x"}}]))  # fmt: skip
    worker_cmd("run", "p", "W1", cwd=repo, check=0)
    worker_cmd("run", "p", "W2", cwd=repo, check=0)
    gone = branch_of(paths, "W2")
    plan(repo, worker("W1"))  # W2 removed from the manifest
    assert git(repo, "for-each-ref", "refs/boss/p/W2/")
    out = boss("clean", "p", cwd=repo).stdout
    assert f"removed branch {gone}" in out and f"removed worktree {paths.worktree('W2')}" in out
    assert not paths.worktree("W2").exists() and not paths.worker_dir("W2").exists()
    assert boss_git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{gone}") != 0
    assert git(repo, "for-each-ref", "refs/boss/p/W2/") == ""
    # W1 (still in the plan, not merged) is kept as before
    assert paths.worktree("W1").is_dir() and "kept W1" in out


def test_clean_keeps_hand_commits_of_a_removed_worker(repo):
    paths = plan(repo, worker("W1"), worker("W2", steps=NEVER))
    worker_cmd("run", "p", "W2", cwd=repo, check=1)
    fix = commit_by_hand(paths, "W2", {"src/done.txt": "x\n"}, "W2 by hand")
    gone = branch_of(paths, "W2")
    plan(repo, worker("W1"))
    out = boss("clean", "p", "--force", cwd=repo).stdout
    assert f"kept W2: branch {gone} holds 1 commit boss did not make ({fix[:10]} W2 by hand)" in out
    assert git(repo, "rev-parse", gone) == fix
    out = boss("clean", "p", "--discard", cwd=repo).stdout
    assert f"discarded commit on {gone}: {fix[:10]} W2 by hand" in out
    assert boss_git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{gone}") != 0


def test_a_dependent_started_before_the_hand_commits_on_its_dependency_still_merges(tmp_path):
    from merge_helpers import commit_files, make_scenario, spec

    from boss.ceremony import merge
    from boss.core.config import load_config

    s = make_scenario(tmp_path / "r", [spec("W1"), spec("W2", depends_on=["W1"])])
    h1 = s.work("W1", {"src/a.txt": "a\n"})
    s.work("W2", {"src/b.txt": "b\n"}, start=h1)
    fix = commit_files(s.repo, h1, {"src/a.txt": "a, finished by hand\n"}, "by hand")
    git(s.repo, "update-ref", f"refs/heads/{s.m.worker('W1').branch}", fix)
    j = merge.run(s.paths, s.m, load_config(s.repo), lambda _line: None)
    assert {r.id: r.verdict for r in j.records} == {"W1": "MERGED", "W2": "MERGED"}
    assert j.record("W1").by_hand == 1 and j.record("W2").by_hand == 0
    assert git(s.repo, "show", "main:src/a.txt") == "a, finished by hand"
    assert git(s.repo, "show", "main:src/b.txt") == "b"


def test_boss_heads_fall_back_on_the_start_ref_and_forgotten_commits_exclude_nothing(tmp_path):
    from merge_helpers import commit_files, make_scenario, spec

    s = make_scenario(tmp_path / "r", [spec("W1")])
    head = s.work("W1", {"src/a.txt": "a\n"})
    branch = s.m.worker("W1").branch
    assert handwork.boss_heads(s.paths, "W1") == [head]
    assert handwork.hand_commits(s.paths, "W1", branch) == []
    # The status gone (a changed definition resets it) and no head ref: the start ref is all boss knows.
    s.paths.status("W1").unlink()
    git(s.repo, "update-ref", "refs/boss/p/W1/start", s.base)
    assert handwork.boss_heads(s.paths, "W1") == [s.base]
    assert [c.sha for c in handwork.hand_commits(s.paths, "W1", branch)] == [head]
    # The head ref, once written, is boss's word
    handwork.record_head(s.paths, "W1", head)
    assert handwork.hand_commits(s.paths, "W1", branch) == []
    later = commit_files(s.repo, head, {"src/b.txt": "b\n"}, "by hand")
    git(s.repo, "update-ref", f"refs/heads/{branch}", later)
    found = handwork.hand_commits(s.paths, "W1", branch)
    assert [(c.sha, c.subject) for c in found] == [(later, "by hand")]
    assert handwork.listed(found) == f"{later[:10]} by hand"
    # a record naming a commit git does not have cannot exclude anything, nor count everything
    assert handwork.commits_beyond(s.repo, later, ["0" * 40]) == []
    # a landed commit is not lost: with the base's head, nothing is counted
    assert handwork.hand_commits(s.paths, "W1", branch, landed=later) == []
