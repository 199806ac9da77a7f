"""boss merge: triage, verification from git, baseline, serial merge-then-test, landing, reports."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from conftest import boss, git
from merge_helpers import BASE_FILES, commit_files, make_scenario, pytest_command, spec

from boss.ceremony import merge
from boss.ceremony.integration import Run, judge, judge_baseline
from boss.core import statelog
from boss.core import status as st
from boss.core.config import load_config
from boss.core.errors import StateError
from boss.core.journal import load as load_journal


def run(s, lines=None):
    """The ceremony in-process; progress lines collected."""
    out = [] if lines is None else lines
    j = merge.run(s.paths, s.m, load_config(s.repo), out.append)
    return j, merge.exit_code(j)


def verdicts(j):
    return {r.id: r.verdict for r in j.records}


def report(s):
    return json.loads((s.paths.merge_dir / "report.json").read_text())


def files_on(repo, ref):
    return set(git(repo, "ls-tree", "-r", "--name-only", ref).splitlines())


@pytest.fixture
def flaky_mark(tmp_path, monkeypatch):
    mark = tmp_path / "flaky.mark"
    monkeypatch.setenv("FLAKY_MARK", str(mark))
    monkeypatch.setenv("BOSS_SANDBOX", "off")  # the flaky test remembers its failure beside the repo
    return mark


def test_done_means_lands_exactly_the_good_work_and_salvages_the_quarantined(tmp_path, flaky_mark):
    workers = [
        spec("W1"),
        spec("W2", depends_on=["W1"]),
        spec("W3"),
        spec("W4"),
        spec("W5"),
        spec("W6"),
        spec("W7"),
        spec("W8", depends_on=["W7"]),
        spec("W9"),
        spec("W10"),
        spec("W11"),
        spec("W12"),
    ]
    s = make_scenario(tmp_path / "repo", workers)
    s.work("W1", {"src/a.txt": "a\n"})
    s.work("W2", {"src/b.txt": "b\n"})  # starts from W1's head
    s.status("W3", st.FAILED, reason="gave up after 4 iterations")
    s.work(
        "W4",
        {"src/d.txt": "d\n", "README.md": "# edited\n"},
        state=st.SCOPE_VIOLATION,
        violations=["README.md"],
    )
    s.work("W5", {"src/shared.txt": "one\nTWO by W5\nthree\n"})
    s.work("W6", {"src/shared.txt": "one\ntwo by W6\nthree\n"})
    s.work("W7", {"src/bad.txt": "BROKEN\n"})
    s.work("W8", {"src/after7.txt": "x\n"})
    s.crashed("W9")
    s.work("W10", {"src/ten.txt": "10\n", "docs/guide.md": "sneaky\n"})  # says SUCCESS, is not in scope
    honest = s.work("W11", {"src/eleven.txt": "11\n"})
    s.status("W11", st.SUCCESS, start_commit=honest, head_commit=honest)  # lies about its start
    s.work("W12", {"src/flaky.txt": "f\n"})
    before = s.main()

    lines: list[str] = []
    j, code = run(s, lines)

    assert code == 1
    assert verdicts(j) == {
        "W1": "MERGED", "W2": "MERGED", "W3": "FAILED", "W4": "QUARANTINED", "W5": "MERGED",
        "W6": "CONFLICT", "W7": "REVERTED", "W8": "SKIPPED", "W9": "CRASHED", "W10": "QUARANTINED",
        "W11": "QUARANTINED", "W12": "MERGED",
    }  # fmt: skip
    assert j.landed and s.main() != before
    landed = files_on(s.repo, "main")
    assert {"src/a.txt", "src/b.txt", "src/flaky.txt"} <= landed
    assert not landed & {"src/d.txt", "src/bad.txt", "src/after7.txt", "src/ten.txt", "src/eleven.txt"}
    assert git(s.repo, "show", "main:src/shared.txt") == "one\nTWO by W5\nthree"
    assert git(s.repo, "show", "main:README.md") == "# sample"
    # main passes its tests, and the user's checkout shows the landed files, clean
    assert subprocess.run(["bash", "check.sh"], cwd=s.repo, capture_output=True).returncode == 0
    assert git(s.repo, "status", "--porcelain") == ""
    assert (s.repo / "src/a.txt").read_text() == "a\n"
    # every merge commit on main is one of ours, in dependency order, and no revert commit exists
    subjects = git(s.repo, "log", "--format=%s", f"{before}..main", "--first-parent").splitlines()
    assert [x.split()[2] for x in reversed(subjects)] == ["W1", "W2", "W5", "W12"]

    data = report(s)
    by_id = {w["id"]: w for w in data["workers"]}
    assert by_id["W4"]["out_of_scope"] == ["README.md"]
    assert by_id["W6"]["conflicts"] == ["src/shared.txt"] and by_id["W6"]["conflict_with"] == ["W5"]
    assert by_id["W7"]["test_log"].endswith("merge/history/0001/logs/W7.log")
    assert (s.repo / by_id["W7"]["test_log"]).read_text().startswith("FAIL")
    assert by_id["W7"]["retry_log"] and not by_id["W7"]["retried"]
    assert "W7" in by_id["W8"]["reason"]
    assert by_id["W10"]["out_of_scope"] == ["docs/guide.md"] and "status" in by_id["W10"]["reason"]
    assert "starts at" in by_id["W11"]["reason"]
    assert by_id["W12"]["retried"] and "retry" in by_id["W12"]["reason"]
    assert "gave up" in by_id["W3"]["reason"]
    assert data["test_runs"] == 1 + 5 + 2  # baseline, W1 W2 W5 W7 W12, and the retries of W7 and W12
    md = (s.paths.merge_dir / "REPORT.md").read_text()
    assert "```mermaid\ngantt" in md and "W7 REVERTED" in md and "| W6 |" in md
    assert any("[3/7] W5" in line for line in lines)
    actions = {(e.iteration_id, e.action) for e in statelog.read(s.paths.log)}
    assert {("merge.W7", "revert"), ("merge.W6", "conflict"), ("merge.W1", "merge"), ("merge.W10", "quarantine"),
            ("merge", "land"), ("merge.W7", "retry")} <= actions  # fmt: skip

    # review: salvage W4 (drop README.md), and land it alone
    proc = boss("quarantine", "salvage", "W4", "--plan", "p", "--reason", "drop the README edit", cwd=s.repo)
    assert "README.md" in proc.stdout
    landed_before = s.main()
    proc = boss("merge", "p", cwd=s.repo, check=1)  # W6, W7 are still dropped
    second = report(s)
    got = {w["id"]: w["verdict"] for w in second["workers"]}
    assert got["W4"] == "MERGED" and got["W1"] == "MERGED" and got["W6"] == "CONFLICT"
    assert {w["id"] for w in second["workers"] if w["merge_commit"]} == {"W4"}
    assert files_on(s.repo, "main") - files_on(s.repo, landed_before) == {"src/d.txt"}
    assert git(s.repo, "show", "main:README.md") == "# sample"
    assert git(s.repo, "status", "--porcelain") == ""


def test_nothing_to_merge_leaves_main_and_exits_1(tmp_path):
    s = make_scenario(tmp_path / "r", [spec("W1")])
    s.status("W1", st.FAILED, reason="no")
    j, code = run(s)
    assert code == 1 and verdicts(j) == {"W1": "FAILED"} and not j.landed
    assert j.test_runs == 0 and "unchanged" in j.message


def test_all_merged_exits_0_and_a_second_run_finds_them_already_merged(tmp_path):
    s = make_scenario(tmp_path / "r", [spec("W1"), spec("W2")])
    s.work("W1", {"src/a.txt": "a\n"})
    s.work("W2", {"src/b.txt": "b\n"})
    j, code = run(s)
    assert code == 0 and j.landed
    first = s.main()
    j, code = run(s)
    assert code == 0 and verdicts(j) == {"W1": "MERGED", "W2": "MERGED"}
    assert all("already in main" in r.reason for r in j.records)
    assert s.main() == first and j.test_runs == 0


def test_running_and_pending_workers_are_left_alone(tmp_path):
    s = make_scenario(tmp_path / "r", [spec("W1"), spec("W2"), spec("W3")])
    s.work("W1", {"src/a.txt": "a\n"})
    s.status("W2", st.RUNNING, pid=os.getpid(), heartbeat=st.now_iso(), finished_at="")
    j, code = run(s)
    assert verdicts(j) == {"W1": "MERGED", "W2": "PENDING", "W3": "PENDING"}
    assert "still running" in j.record("W2").reason and code == 0


def test_a_branch_moved_on_after_its_status_was_written_is_merged_as_work_by_hand(tmp_path):
    s = make_scenario(tmp_path / "r", [spec("W1")])
    head = s.work("W1", {"src/a.txt": "a\n"})
    extra = commit_files(s.repo, head, {"src/b.txt": "by hand\n"}, "later")
    git(s.repo, "update-ref", "refs/heads/" + s.m.worker("W1").branch, extra)
    j, code = run(s)
    assert verdicts(j) == {"W1": "MERGED"} and code == 0
    assert j.record("W1").by_hand == 1 and j.record("W1").head == extra
    assert git(s.repo, "show", "main:src/b.txt") == "by hand"


def test_a_branch_moved_back_behind_its_status_is_quarantined(tmp_path):
    s = make_scenario(tmp_path / "r", [spec("W1")])
    s.work("W1", {"src/a.txt": "a\n"})
    git(s.repo, "update-ref", "refs/heads/" + s.m.worker("W1").branch, s.base)
    j, code = run(s)
    assert verdicts(j) == {"W1": "QUARANTINED"} and code == 1
    assert "not at the commit its status names" in j.records[0].reason


def test_a_dependent_not_built_on_its_dependency_is_quarantined(tmp_path):
    s = make_scenario(tmp_path / "r", [spec("W1"), spec("W2", depends_on=["W1"])])
    s.work("W1", {"src/a.txt": "a\n"})
    s.work("W2", {"src/b.txt": "b\n"}, start=s.base)
    j, _ = run(s)
    assert verdicts(j) == {"W1": "MERGED", "W2": "QUARANTINED"}
    assert "not where its dependencies end" in j.record("W2").reason


def test_two_dependencies_start_from_their_merge(tmp_path):
    s = make_scenario(tmp_path / "r", [spec("W1"), spec("W2"), spec("W3", depends_on=["W1", "W2"])])
    h1 = s.work("W1", {"src/a.txt": "a\n"})
    h2 = s.work("W2", {"src/b.txt": "b\n"})
    tree = git(s.repo, "merge-tree", "--write-tree", h1, h2)
    start = git(s.repo, "commit-tree", tree, "-p", h1, "-p", h2, "-m", "merge deps")
    s.work("W3", {"src/c.txt": "c\n"}, start=start)
    j, code = run(s)
    assert verdicts(j) == {"W1": "MERGED", "W2": "MERGED", "W3": "MERGED"} and code == 0
    # a start that smuggles a change into the "merge" of its dependencies is caught
    smuggled = git(s.repo, "commit-tree", s.base + "^{tree}", "-p", h1, "-p", h2, "-m", "fake")
    s2 = make_scenario(tmp_path / "r2", [spec("W1"), spec("W2"), spec("W3", depends_on=["W1", "W2"])])
    s2.work("W1", {"src/a.txt": "a\n"})
    s2.work("W2", {"src/b.txt": "b\n"})
    h1, h2 = s2.head("W1"), s2.head("W2")
    smuggled = git(s2.repo, "commit-tree", s2.base + "^{tree}", "-p", h1, "-p", h2, "-m", "fake")
    s2.work("W3", {"src/c.txt": "c\n"}, start=smuggled)
    j, _ = run(s2)
    assert j.record("W3").verdict == "QUARANTINED" and "plain merge" in j.record("W3").reason


def test_pytest_baseline_failures_do_not_block_merges_and_new_failures_do(tmp_path):
    files = {
        "tests/test_base.py": "def test_ok():\n    assert True\n\ndef test_known_bug():\n    assert 1 == 2\n",
        "src/__init__.py": "",
    }
    workers = [spec("W1", scope=["^src/", "^tests/"]), spec("W2", scope=["^src/", "^tests/"])]
    s = make_scenario(tmp_path / "r", workers, integration_test=pytest_command(), files=files)
    s.work("W1", {"tests/test_feature.py": "def test_feature():\n    assert 2 + 2 == 4\n"})
    s.work(
        "W2",
        {
            "tests/test_base.py": "def test_ok():\n    assert False\n\ndef test_known_bug():\n    assert 1 == 2\n"
        },
    )
    j, code = run(s)
    assert verdicts(j) == {"W1": "MERGED", "W2": "REVERTED"} and code == 1
    assert j.baseline["failures"] == ["tests.test_base::test_known_bug"]
    assert j.record("W2").new_failures == ["tests.test_base::test_ok"]
    assert "new failing" in j.record("W2").reason
    assert "tests/test_feature.py" in files_on(s.repo, "main")


def test_pytest_that_stops_at_the_first_failure_cannot_judge_a_red_base(tmp_path):
    files = {"tests/test_base.py": "def test_known_bug():\n    assert 1 == 2\n", "src/__init__.py": ""}
    workers = [spec("W1", scope=["^src/", "^tests/"])]
    s = make_scenario(tmp_path / "r", workers, integration_test=pytest_command() + " -x", files=files)
    s.work("W1", {"tests/test_new.py": "def test_new():\n    assert False\n"})
    j, code = run(s)
    assert code == 1 and verdicts(j) == {"W1": "PENDING"} and not j.landed
    assert "-x" in j.message and "hide" in j.message


def test_a_red_base_stops_a_plain_command_ceremony(tmp_path):
    s = make_scenario(tmp_path / "r", [spec("W1")], files={"check.sh": "exit 3\n"})
    s.work("W1", {"src/a.txt": "a\n"})
    j, code = run(s)
    assert code == 1 and verdicts(j) == {"W1": "PENDING"} and not j.landed
    assert "before any merge" in j.message and j.test_runs == 1


def test_uncommitted_changes_the_merge_touches_block_landing_and_are_never_touched(tmp_path):
    s = make_scenario(tmp_path / "r", [spec("W1", scope=["^src/", "^README\\.md$"])])
    s.work("W1", {"src/a.txt": "a\n", "README.md": "W1's readme\n"})
    (s.repo / "README.md").write_text("my own edit\n")
    before = s.main()
    j, code = run(s)
    assert code == 1 and not j.landed and s.main() == before
    assert j.record("W1").verdict == "MERGED"
    assert "uncommitted changes" in j.message and "boss/p/integration" in j.message
    assert "changes files: README.md, so it was not touched" in j.message
    assert (s.repo / "README.md").read_text() == "my own edit\n"
    assert "src/a.txt" in files_on(s.repo, "boss/p/integration")


def test_uncommitted_changes_the_merge_does_not_touch_survive_landing_byte_for_byte(tmp_path):
    s = make_scenario(tmp_path / "r", [spec("W1")])
    s.work("W1", {"src/a.txt": "a\n"})
    mine = b"my own edit\r\n\x00 not committed\n"
    (s.repo / "README.md").write_bytes(mine)  # modified, not staged
    (s.repo / "notes.txt").write_text("untracked\n")  # untracked, not in the merge's way
    (s.repo / "staged.txt").write_text("staged\n")
    git(s.repo, "add", "staged.txt")  # staged
    j, code = run(s)
    assert code == 0 and j.landed, j.message
    assert "src/a.txt" in files_on(s.repo, "main") and (s.repo / "src/a.txt").read_text() == "a\n"
    assert (s.repo / "README.md").read_bytes() == mine
    assert (s.repo / "notes.txt").read_text() == "untracked\n"
    status = subprocess.run(["git", "status", "--porcelain"], cwd=s.repo, capture_output=True, text=True)
    assert status.stdout.splitlines() == [
        " M README.md",
        "A  staged.txt",
        "?? notes.txt",
    ]


def test_an_untracked_file_where_the_merge_puts_one_blocks_landing(tmp_path):
    s = make_scenario(tmp_path / "r", [spec("W1")])
    s.work("W1", {"src/a.txt": "a\n"})
    (s.repo / "src").mkdir(exist_ok=True)
    (s.repo / "src/a.txt").write_text("mine\n")
    j, code = run(s)
    assert code == 1 and not j.landed and "changes files: src/a.txt" in j.message
    assert (s.repo / "src/a.txt").read_text() == "mine\n"


def test_base_not_checked_out_moves_by_ref_only(tmp_path):
    s = make_scenario(tmp_path / "r", [spec("W1")])
    s.work("W1", {"src/a.txt": "a\n"})
    git(s.repo, "checkout", "-q", "-b", "elsewhere")
    j, code = run(s)
    assert code == 0 and j.landed
    assert "src/a.txt" in files_on(s.repo, "main") and not (s.repo / "src/a.txt").exists()
    assert git(s.repo, "status", "--porcelain") == ""


def test_identical_tree_is_not_tested_twice(tmp_path):
    s = make_scenario(tmp_path / "r", [spec("W1"), spec("W2")])
    s.work("W1", {"src/a.txt": "a\n"})
    s.work("W2", {"src/a.txt": "a\n"})  # the same change: merging it adds nothing
    j, code = run(s)
    assert code == 0 and verdicts(j) == {"W1": "MERGED", "W2": "MERGED"}
    assert j.test_runs == 2 and "already judged" in j.record("W2").reason


def test_long_test_prints_still_running(tmp_path, monkeypatch):
    monkeypatch.setenv("BOSS_MERGE_PROGRESS_SECONDS", "0.2")
    monkeypatch.setenv("SLOW_SECONDS", "0.7")
    s = make_scenario(tmp_path / "r", [spec("W1")])
    s.work("W1", {"src/slow.txt": "s\n"})
    lines: list[str] = []
    run(s, lines)
    assert any("W1: still running" in line for line in lines)


def test_cli_exit_codes_json_and_progress_on_stderr(tmp_path, flaky_mark):
    s = make_scenario(tmp_path / "r", [spec("W1"), spec("W2")])
    s.work("W1", {"src/a.txt": "a\n"})
    s.work("W2", {"src/bad.txt": "BROKEN\n"})
    proc = boss("merge", "--json", cwd=s.repo, check=1)
    data = json.loads(proc.stdout)
    assert [w["verdict"] for w in data["workers"]] == ["MERGED", "REVERTED"]
    assert "[1/2] W1: merging" in proc.stderr and "land: main" in proc.stderr
    proc = boss("merge", "nope", cwd=s.repo, check=2)
    assert proc.stderr.startswith("Error:") and "nope" in proc.stderr
    assert boss("merge", "--help", cwd=s.repo).stdout.count("--dry-run") == 1


def test_journal_is_done_after_a_ceremony(tmp_path):
    s = make_scenario(tmp_path / "r", [spec("W1")])
    s.work("W1", {"src/a.txt": "a\n"})
    run(s)
    j = load_journal(s.paths.merge_dir / "journal.json")
    assert j is not None and j.step == "done" and j.current is None


def test_merged_work_whose_branch_was_cleaned_stays_merged_and_its_dependent_lands(tmp_path):
    s = make_scenario(tmp_path / "r", [spec("W1"), spec("W2", depends_on=["W1"])])
    h1 = s.work("W1", {"src/a.txt": "a\n"})
    h2 = s.work("W2", {"src/b.txt": "b\n"})
    running = {"pid": os.getpid(), "heartbeat": st.now_iso(), "finished_at": ""}
    s.status("W2", st.RUNNING, **running)  # still running during the first ceremony
    j, _ = run(s)
    assert verdicts(j) == {"W1": "MERGED", "W2": "PENDING"}
    git(s.repo, "branch", "-D", s.m.worker("W1").branch)  # as `boss clean` does with merged work
    s.status("W2", st.SUCCESS, start_commit=h1, head_commit=h2)
    j, code = run(s)
    assert verdicts(j) == {"W1": "MERGED", "W2": "MERGED"} and code == 0
    assert "already in main" in j.record("W1").reason
    assert "src/b.txt" in files_on(s.repo, "main")


def test_verification_catches_missing_branches_wrong_branches_and_unrelated_starts(tmp_path):
    s = make_scenario(tmp_path / "r", [spec("W1"), spec("W2"), spec("W3")])
    lost = commit_files(s.repo, s.base, {"src/a.txt": "a\n"}, "work whose branch is gone")
    s.status("W1", st.SUCCESS, start_commit=s.base, head_commit=lost)  # no branch at all
    s.work("W2", {"src/b.txt": "b\n"}, branch="feat/somewhere-else")
    unrelated = git(s.repo, "commit-tree", s.base + "^{tree}", "-m", "a root of its own")
    s.work("W3", {"src/c.txt": "c\n"}, start=unrelated)
    j, code = run(s)
    assert verdicts(j) == {"W1": "QUARANTINED", "W2": "QUARANTINED", "W3": "QUARANTINED"} and code == 1
    assert "does not exist" in j.record("W1").reason
    assert "feat/somewhere-else" in j.record("W2").reason
    assert "not at the plan's base commit" in j.record("W3").reason


def test_without_a_base_commit_a_start_off_the_base_is_caught(tmp_path):
    s = make_scenario(tmp_path / "r", [spec("W1"), spec("W2")])
    raw = s.paths.manifest.read_text().replace(f"base_commit: {s.base}", "base_commit: ''")
    s.paths.manifest.write_text(raw)
    s.reload()
    s.work("W1", {"src/a.txt": "a\n"})
    elsewhere = commit_files(s.repo, s.base, {"README.md": "not on main\n"}, "elsewhere")
    s.work("W2", {"src/b.txt": "b\n"}, start=elsewhere)
    j, _ = run(s)
    assert verdicts(j) == {"W1": "MERGED", "W2": "QUARANTINED"}
    assert "is not on main" in j.record("W2").reason


def test_no_integration_test_merges_untested(tmp_path):
    s = make_scenario(tmp_path / "r", [spec("W1")], integration_test="")
    s.work("W1", {"src/a.txt": "a\n"})
    j, code = run(s)
    assert code == 0 and j.test_runs == 0 and "no integration_test" in j.record("W1").reason


def test_setup_and_copy_files_prepare_the_integration_worktree(tmp_path):
    files = {**BASE_FILES, ".gitignore": "made-by-setup\n"}  # what setup makes is ignored (README)
    test = "test -f .env && test -f made-by-setup"
    s = make_scenario(tmp_path / "r", [spec("W1")], integration_test=test, files=files)
    raw = (
        s.paths.manifest.read_text()
        .replace("setup: ''", "setup: touch made-by-setup")
        .replace("copy: []", "copy:\n- .env")
    )
    s.paths.manifest.write_text(raw)
    s.reload()
    (s.repo / ".env").write_text("SECRET=1\n")
    s.work("W1", {"src/a.txt": "a\n"})
    j, code = run(s)
    assert code == 0, j.baseline
    s2 = make_scenario(tmp_path / "r2", [spec("W1")])
    s2.paths.manifest.write_text(s2.paths.manifest.read_text().replace("setup: ''", "setup: exit 4"))
    s2.reload()
    s2.work("W1", {"src/a.txt": "a\n"})
    with pytest.raises(StateError, match="setup failed"):
        run(s2)


def test_judging_runs_against_the_baseline():
    m = type("M", (), {"integration_test": "pytest -q", "defaults": {"test_timeout": 5}})()
    base = Run(1, 1.0, "b.log", ["t::known"])
    assert judge(m, Run(1, 1.0, "x", ["t::known"]), base).ok
    assert judge(m, Run(0, 1.0, "x", []), base).ok
    red = judge(m, Run(1, 1.0, "x", ["t::known", "t::new"]), base)
    assert not red.ok and red.new_failures == ["t::new"]
    assert not judge(m, Run(2, 1.0, "x", ["t::collect"]), base).ok  # a collection error
    assert not judge(m, Run(1, 1.0, "x", None), base).ok  # no junit report
    assert not judge(m, Run(1, 1.0, "x", []), base).ok  # red without a failing test
    assert not judge(m, Run(5, 1.0, "x", []), base).ok  # the tests are gone
    assert judge(m, Run(5, 1.0, "x", []), Run(5, 1.0, "b", [])).ok
    assert not judge(m, Run(-9, 5.0, "x", None, timed_out=True), base).ok
    assert judge_baseline(m, base).ok and judge_baseline(m, Run(5, 1.0, "b", [])).ok
    assert not judge_baseline(m, Run(4, 1.0, "b", [])).ok
    assert not judge_baseline(m, Run(-9, 5.0, "b", None, timed_out=True)).ok
    plain = type("M", (), {"integration_test": "make check", "defaults": {}})()
    assert not judge_baseline(plain, Run(1, 1.0, "b", None)).ok
    assert not judge(plain, Run(1, 1.0, "x", None), Run(0, 1.0, "b", None)).ok


def test_an_unreadable_journal_names_its_file(tmp_path):
    s = make_scenario(tmp_path / "r", [spec("W1")])
    journal = s.paths.merge_dir / "journal.json"
    journal.parent.mkdir(parents=True)
    for text, problem in (("{oops", "invalid JSON"), ('{"version": 9}', "not a boss merge journal")):
        journal.write_text(text)
        with pytest.raises(StateError, match=problem) as e:
            run(s)
        assert str(journal) in str(e.value)
    proc = boss("merge", cwd=s.repo, check=1)
    assert proc.stderr.startswith("Error:") and "journal.json" in proc.stderr
