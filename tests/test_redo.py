"""Redo on today's base (`boss retry ID --onto`), end to end: real git, the real `boss` and `worker`
CLIs, the scripted agent. A worker that conflicted or broke the suite in `boss merge` starts
again from the base as it is now, told why, and the next `boss merge` merges it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import boss, git, make_repo, worker_cmd
from worker_helpers import make_plan, worker

from boss.core import journal as jr
from boss.core import redo
from boss.core import status as st
from boss.core.paths import PlanPaths

# W2 does its change one way without feedback (which conflicts with W1's), and on top of W1's
# when its feedback names the conflict (as a redo's first feedback does).
W2_CONFLICTING = (
    "if grep -q 'conflicts in `src/shared.txt`' \"$BOSS_FEEDBACK\" && grep -q '<<<<<<<' \"$BOSS_FEEDBACK\"; "
    "then sed -i 's/TWO-W1/TWO-W1+W2/' src/shared.txt; else sed -i 's/^two$/two-W2/' src/shared.txt; fi"
)


@pytest.fixture
def shared(tmp_path, monkeypatch) -> Path:
    r = make_repo(tmp_path / "repo", {"README.md": "r\n", "src/shared.txt": "one\ntwo\nthree\n"})
    monkeypatch.chdir(r)
    return r


def journal(paths: PlanPaths) -> jr.Journal:
    j = jr.load(paths.merge_dir / "journal.json")
    assert j is not None
    return j


def verdict(paths: PlanPaths, wid: str) -> str:
    return journal(paths).record(wid).verdict


def conflicting_plan(repo: Path, w2_test: str = "grep -q W2 src/shared.txt") -> PlanPaths:
    w1 = worker(
        "W1", test="grep -q TWO-W1 src/shared.txt", steps=[{"replace": {"src/shared.txt": ["two", "TWO-W1"]}}]
    )
    w2 = worker("W2", test=w2_test, steps=[{"run": W2_CONFLICTING}], max_iterations=1, max_strategies=1)
    paths, _ = make_plan(repo, [w1, w2])
    worker_cmd("run", "p", "W1", cwd=repo)
    worker_cmd("run", "p", "W2", cwd=repo)
    res = boss("merge", "p", cwd=repo, check=1)
    assert verdict(paths, "W1") == jr.MERGED, res.stdout
    assert verdict(paths, "W2") == jr.CONFLICT, res.stdout
    return paths


def test_a_conflicting_worker_is_redone_on_main_now_told_the_conflict_and_merged(shared):
    paths = conflicting_plan(shared)
    old_base = st.read(paths.status("W2")).start_commit
    old_head = st.read(paths.status("W2")).head_commit
    main = git(shared, "rev-parse", "main")
    assert main != old_base  # W1 landed

    res = boss("retry", "W2", "--onto", "--plan", "p", cwd=shared)
    assert f"Redoing W2 (CONFLICT) on main at {main[:10]}; why: workers/W2/redo.md" in res.stdout
    assert "W2: SUCCESS" in res.stdout
    status = st.read(paths.status("W2"))
    assert status.start_commit == main
    assert git(shared, "rev-parse", "refs/boss/p/W2/start") == main
    assert git(shared, "rev-parse", "refs/boss/p/W2/onto") == main
    assert git(shared, "rev-parse", "refs/boss/p/W2/before-redo") == old_head  # the earlier try is kept
    why = redo.feedback_path(paths, "W2").read_text()
    assert "conflicted with W1 in `src/shared.txt`" in why and "<<<<<<<" in why and "TWO-W1" in why
    # The agent's first feedback was the conflict: it built on W1's line (see W2_CONFLICTING).
    assert git(shared, "show", f"{status.head_commit}:src/shared.txt") == "one\nTWO-W1+W2\nthree"
    prompt = (paths.attempts("W2") / "s1i1" / "prompt.md").read_text()
    assert "Why this task is done again" in prompt and "src/shared.txt" in prompt

    res = boss("merge", "p", cwd=shared)  # exit 0: every queued worker merged
    assert verdict(paths, "W2") == jr.MERGED, res.stdout
    assert git(shared, "show", "main:src/shared.txt") == "one\nTWO-W1+W2\nthree"

    # Later runs start from the redo's base too (not the plan's old base_commit).
    worker_cmd("run", "p", "W2", cwd=shared, check=None)
    assert st.read(paths.status("W2")).start_commit == main


def test_a_redo_whose_test_already_passes_on_main_fails_the_red_gate_and_says_why(shared):
    paths = conflicting_plan(shared, w2_test="grep -qi two- src/shared.txt")
    res = boss("retry", "W2", "--onto", "--plan", "p", cwd=shared, check=1)
    assert "W2: FAILED (red gate: the acceptance test already passes before any work" in res.stdout
    assert "Its test passes on main as it is now: the work may be there already." in res.stdout
    assert st.read(paths.status("W2")).start_commit == git(shared, "rev-parse", "main")


CHECK_SH = """#!/usr/bin/env bash
if [ -f src/a.txt ] && [ -f src/b.txt ] && ! grep -qF "$(cat src/a.txt)" src/b.txt; then
  echo "FAIL: src/b.txt must mention what src/a.txt says"; exit 1
fi
echo ok
"""
W2_SUITE = (
    "if grep -q 'src/b.txt must mention' \"$BOSS_FEEDBACK\"; "
    "then cp src/a.txt src/b.txt; else mkdir -p src; echo beta > src/b.txt; fi"
)


def test_a_reverted_worker_is_redone_on_main_now_told_the_failing_test_and_merged(tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "repo", {"README.md": "r\n", "check.sh": CHECK_SH})
    monkeypatch.chdir(repo)
    w1 = worker("W1", test="test -f src/a.txt", steps=[{"write": {"src/a.txt": "alpha\n"}}])
    w2 = worker("W2", test="test -f src/b.txt", steps=[{"run": W2_SUITE}], max_iterations=1, max_strategies=1)
    paths, _ = make_plan(repo, [w1, w2], integration_test="bash check.sh")
    worker_cmd("run", "p", "W1", cwd=repo)
    worker_cmd("run", "p", "W2", cwd=repo)
    res = boss("merge", "p", cwd=repo, check=1)
    assert verdict(paths, "W1") == jr.MERGED and verdict(paths, "W2") == jr.REVERTED, res.stdout

    res = boss("retry", "W2", "--onto", "main", "--plan", "p", cwd=repo)
    assert "Redoing W2 (REVERTED) on main" in res.stdout and "W2: SUCCESS" in res.stdout
    why = redo.feedback_path(paths, "W2").read_text()
    assert "dropped by `boss merge`" in why and "FAIL: src/b.txt must mention" in why
    res = boss("merge", "p", cwd=repo)
    assert verdict(paths, "W2") == jr.MERGED, res.stdout
    assert git(repo, "show", "main:src/b.txt") == "alpha"


def test_a_failed_worker_is_redone_with_its_last_test_output(shared):
    w1 = worker("W1", test="grep done src/shared.txt || echo 'no done yet'; grep -q done src/shared.txt", steps=[{"print": "nothing"}], max_iterations=1,
                max_strategies=1)  # fmt: skip
    paths, _ = make_plan(shared, [w1])
    worker_cmd("run", "p", "W1", cwd=shared, check=1)
    git(shared, "commit", "-q", "--allow-empty", "-m", "main moves on")
    res = boss("retry", "W1", "--onto", "--plan", "p", cwd=shared, check=1)
    assert "Redoing W1 (FAILED) on main" in res.stdout
    why = redo.feedback_path(paths, "W1").read_text()
    assert "Your earlier run of this task failed: gave up after 1 iteration" in why
    assert "The last test output (`workers/W1/attempts/s1i1/test.log`)" in why and "no done yet" in why
    feedback = (paths.worker_dir("W1") / "feedback.md").read_text()
    assert "Why this task is done again" in feedback
    assert st.read(paths.status("W1")).start_commit == git(shared, "rev-parse", "main")


def test_redo_refuses_a_worker_with_nothing_to_redo_and_a_base_it_cannot_start_from(shared):
    paths, _ = make_plan(shared, [worker("W1")])
    err = boss("retry", "W1", "--onto", "--plan", "p", cwd=shared, check=1).stderr
    assert "Error: worker W1 is PENDING: only a worker that ended CONFLICT or REVERTED" in err
    worker_cmd("run", "p", "W1", cwd=shared)
    err = boss("retry", "W1", "--onto", "--plan", "p", cwd=shared, check=1).stderr
    assert "Error: worker W1 is SUCCESS" in err
    git(shared, "checkout", "-q", "-b", "side")
    git(shared, "commit", "-q", "--allow-empty", "-m", "side")
    err = boss("retry", "W1", "--onto", "side", "--plan", "p", cwd=shared, check=2).stderr
    assert "Error: --onto side: is not in the history of main" in err
    assert st.read(paths.status("W1")).state == st.SUCCESS  # nothing ran


# --- `boss merge --redo N`: the ceremony redoes what it dropped and merges it in a second pass ----


def test_merge_redo_runs_the_conflicting_worker_again_on_the_result_and_merges_it(shared):
    w1 = worker(
        "W1", test="grep -q TWO-W1 src/shared.txt", steps=[{"replace": {"src/shared.txt": ["two", "TWO-W1"]}}]
    )
    w2 = worker("W2", test="grep -q W2 src/shared.txt", steps=[{"run": W2_CONFLICTING}], max_iterations=1)
    paths, _ = make_plan(shared, [w1, w2])
    worker_cmd("run", "p", "W1", cwd=shared)
    worker_cmd("run", "p", "W2", cwd=shared)
    res = boss("merge", "p", "--redo", "1", cwd=shared)  # exit 0: the redo merged
    j = journal(paths)
    r = j.record("W2")
    assert r.verdict == jr.MERGED, res.stdout + res.stderr
    assert (
        r.reason.startswith("redone on ")
        and "after CONFLICT (conflicts with W1 in src/shared.txt" in r.reason
    )
    assert j.redo["W2"]["state"] == "queued" and j.redo_round == 1
    assert "redo W2: SUCCESS; queued for the second pass" in res.stderr
    assert git(shared, "show", "main:src/shared.txt") == "one\nTWO-W1+W2\nthree"
    assert st.read(paths.status("W2")).start_commit == j.redo["W2"]["onto"] == j.record("W1").merge_commit
    assert (paths.ceremony_logs(j.number) / "redo-W2.log").is_file()
    # The next ceremony verifies the redone branch from git like any other: nothing to do.
    res = boss("merge", "p", cwd=shared)
    assert journal(paths).record("W2").reason == "already in main", res.stdout


def test_merge_redo_killed_during_a_redo_resumes_and_lands(shared):
    w1 = worker(
        "W1", test="grep -q TWO-W1 src/shared.txt", steps=[{"replace": {"src/shared.txt": ["two", "TWO-W1"]}}]
    )
    w2 = worker("W2", test="grep -q W2 src/shared.txt", steps=[{"run": W2_CONFLICTING}], max_iterations=1)
    paths, _ = make_plan(shared, [w1, w2])
    worker_cmd("run", "p", "W1", cwd=shared)
    worker_cmd("run", "p", "W2", cwd=shared)
    before = git(shared, "rev-parse", "main")
    res = boss("merge", "p", "--redo", "1", cwd=shared, check=None, env={"BOSS_MERGE_CRASH_AT": "redo:W2"})
    assert res.returncode == -9, res.stderr
    j = journal(paths)
    assert j.step == jr.REDO and j.redo["W2"]["state"] == "running"
    assert git(shared, "rev-parse", "main") == before  # nothing landed yet
    res = boss("merge", "p", cwd=shared)  # resumes the redo step from the journal
    assert "resuming the ceremony" in res.stderr
    assert journal(paths).record("W2").verdict == jr.MERGED
    assert git(shared, "show", "main:src/shared.txt") == "one\nTWO-W1+W2\nthree"


def test_merge_redo_gives_up_after_its_rounds_and_says_why(shared):
    # W2 ignores its feedback: redone on the result, its step finds nothing to replace and it fails.
    w1 = worker(
        "W1", test="grep -q TWO-W1 src/shared.txt", steps=[{"replace": {"src/shared.txt": ["two", "TWO-W1"]}}]
    )
    w2 = worker("W2", test="grep -q two-W2 src/shared.txt", steps=[{"replace": {"src/shared.txt": ["two", "two-W2"]}}],
                max_iterations=1, max_strategies=1)  # fmt: skip
    paths, _ = make_plan(shared, [w1, w2])
    worker_cmd("run", "p", "W1", cwd=shared)
    worker_cmd("run", "p", "W2", cwd=shared)
    res = boss("merge", "p", "--redo", "1", cwd=shared, check=1)
    r = journal(paths).record("W2")
    assert r.verdict == jr.CONFLICT, res.stdout
    assert "redone on" in r.reason and "the redo ended FAILED" in r.reason
    assert git(shared, "show", "main:src/shared.txt") == "one\nTWO-W1\nthree"  # W1 landed all the same


def test_a_journal_whose_redo_field_is_not_redo_records_is_refused_naming_the_field(shared):
    paths, _ = make_plan(shared, [worker("W1")])
    good = jr.Journal(
        plan="p", base="main", base_start="x", integration_branch="b", worktree="w", step=jr.REDO
    )
    good.redo = {"W1": {"round": 1, "from": "CONFLICT", "reason": "r", "onto": "c", "state": "running"}}
    assert jr.from_dict(json.loads(good.to_json()), "j.json").redo == good.redo
    bad = json.loads(good.to_json())
    bad["redo"]["W1"]["round"] = "1"
    (paths.merge_dir).mkdir(parents=True, exist_ok=True)
    (paths.merge_dir / "journal.json").write_text(json.dumps(bad))
    err = boss("merge", "p", cwd=shared, check=1).stderr
    assert "journal.json: field redo: entry 'W1' is not a redo record" in err


def test_merge_redo_runs_a_reverted_worker_again_and_merges_it(tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "repo", {"README.md": "r\n", "check.sh": CHECK_SH})
    monkeypatch.chdir(repo)
    w1 = worker("W1", test="test -f src/a.txt", steps=[{"write": {"src/a.txt": "alpha\n"}}])
    w2 = worker("W2", test="test -f src/b.txt", steps=[{"run": W2_SUITE}], max_iterations=1)
    paths, _ = make_plan(repo, [w1, w2], integration_test="bash check.sh")
    worker_cmd("run", "p", "W1", cwd=repo)
    worker_cmd("run", "p", "W2", cwd=repo)
    res = boss("merge", "p", "--redo", "2", cwd=repo)
    j = journal(paths)
    assert j.record("W2").verdict == jr.MERGED, res.stdout + res.stderr
    assert j.record("W2").reason.startswith("redone on ") and "after REVERTED" in j.record("W2").reason
    assert j.redo_round == 1  # nothing was dropped again: no second round
    assert git(repo, "show", "main:src/b.txt") == "alpha"


def test_a_redone_worker_salvaged_keeps_the_work_it_was_redone_on(shared):
    # W1 also adds lib/w1.txt, outside W2's scope: salvaging W2 from the plan's old base would
    # take it out again; from W2's redo start it is not W2's change at all.
    w1 = worker("W1", scope=("^src/", "^lib/"), test="grep -q TWO-W1 src/shared.txt",
                steps=[{"replace": {"src/shared.txt": ["two", "TWO-W1"]}, "write": {"lib/w1.txt": "w1\n"}}])  # fmt: skip
    extra = W2_CONFLICTING.replace("then sed", "then mkdir -p docs; echo x > docs/x.md; sed")
    w2 = worker("W2", test="grep -q W2 src/shared.txt", steps=[{"run": extra}], max_iterations=1)
    paths, _ = make_plan(shared, [w1, w2])
    worker_cmd("run", "p", "W1", cwd=shared)
    worker_cmd("run", "p", "W2", cwd=shared)
    boss("merge", "p", cwd=shared, check=1)
    res = boss("retry", "W2", "--onto", "--plan", "p", cwd=shared, check=1)
    assert "W2: SCOPE_VIOLATION" in res.stdout
    assert st.read(paths.status("W2")).violations == ["docs/x.md"]
    boss("quarantine", "salvage", "W2", "--plan", "p", "-m", "keep the src change", cwd=shared)
    res = boss("merge", "p", cwd=shared)
    assert verdict(paths, "W2") == jr.MERGED, res.stdout
    assert git(shared, "show", "main:lib/w1.txt") == "w1"
    assert git(shared, "show", "main:src/shared.txt") == "one\nTWO-W1+W2\nthree"
    assert "docs/x.md" not in git(shared, "ls-tree", "-r", "--name-only", "main")


def test_redo_of_a_dependent_waits_for_its_dependency_in_the_base(shared):
    w1 = worker("W1", test="test -f src/one.txt", steps=[{"write": {"src/one.txt": "1"}}])
    w2 = worker("W2", depends_on=["W1"], test="grep -q done src/two.txt",
                steps=[{"write": {"src/two.txt": "no"}}], max_iterations=1, max_strategies=1)  # fmt: skip
    paths, _ = make_plan(shared, [w1, w2])
    worker_cmd("run", "p", "W1", cwd=shared)
    worker_cmd("run", "p", "W2", cwd=shared, check=1)
    before = st.read(paths.status("W2"))
    err = boss("retry", "W2", "--onto", "--plan", "p", cwd=shared, check=1).stderr
    assert (
        "Error: worker W2 depends on W1, whose work is not in" in err and "merge it first (boss merge)" in err
    )
    assert st.read(paths.status("W2")) == before  # refused before anything ran
    assert git(shared, "for-each-ref", "refs/boss/p/W2/onto") == ""
    boss("merge", "p", cwd=shared)  # W1 lands (W2, FAILED, is not queued)
    res = boss("retry", "W2", "--onto", "--plan", "p", cwd=shared, check=1)
    assert "Redoing W2 (FAILED) on main" in res.stdout
    assert st.read(paths.status("W2")).start_commit == git(shared, "rev-parse", "main")
