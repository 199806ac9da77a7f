"""boss merge trusts nothing a worker wrote: each merge runs the worker's acceptance test (from
the manifest boss holds) on the merged candidate, the integration test is judged against the
last tested head, every merged worker's test passes on what lands, and only a tree the journal
records as verified can land."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import boss, git, make_repo
from merge_helpers import make_scenario, pytest_command, spec
from worker_helpers import make_plan, worker

from boss.ceremony import merge
from boss.core import statelog
from boss.core import status as st
from boss.core.config import load_config
from boss.core.decisions import Decision
from boss.core.journal import load as load_journal
from boss.core.journal import save as save_journal
from worker.lifecycle.run import run_worker


def run(s, lines=None):
    """The ceremony in-process; progress lines collected."""
    out = [] if lines is None else lines
    j = merge.run(s.paths, s.m, load_config(s.repo), out.append)
    return j, merge.exit_code(j)


def verdicts(j):
    return {r.id: r.verdict for r in j.records}


def files_on(repo, ref):
    return set(git(repo, "ls-tree", "-r", "--name-only", ref).splitlines())


def passes_on(repo, ref, command, tmp_path):
    """True when command passes on a fresh checkout of ref (not the ceremony's worktree)."""
    where = tmp_path / f"check-{git(repo, 'rev-parse', '--short', ref)}"
    git(repo, "worktree", "add", "-q", "--detach", str(where), ref)
    try:
        return subprocess.run(["bash", "-c", command], cwd=where, capture_output=True).returncode == 0
    finally:
        git(repo, "worktree", "remove", "--force", str(where))


def test_a_success_status_whose_branch_fails_its_acceptance_test_is_dropped(tmp_path):
    s = make_scenario(
        tmp_path / "r",
        [spec("W1", test="grep -q done src/w1.txt"), spec("W2", test="test -f src/w2.txt")],
    )
    s.work("W1", {"src/w1.txt": "not yet\n"})  # says SUCCESS; its own test fails on its branch
    s.work("W2", {"src/w2.txt": "w2\n"})
    lines: list[str] = []
    j, code = run(s, lines)
    assert code == 1 and verdicts(j) == {"W1": "REVERTED", "W2": "MERGED"}
    w1 = j.record("W1")
    assert "acceptance test `grep -q done src/w1.txt` fails" in w1.reason
    assert "whatever its status says" in w1.reason
    assert w1.test_log.endswith(".log") and w1.retry_log  # run twice before it was dropped
    assert files_on(s.repo, "main") >= {"src/w2.txt"} and "src/w1.txt" not in files_on(s.repo, "main")
    assert j.test_runs == 2  # the baseline and W2's merge: W1's candidate never reached the suite
    assert any("acceptance test of W1" in line for line in lines)
    actions = {(e.iteration_id, e.action) for e in statelog.read(s.paths.log)}
    assert {("merge.W1", "accept"), ("merge.W1", "revert"), ("merge", "verify")} <= actions
    data = json.loads((s.paths.merge_dir / "report.json").read_text())
    assert data["acceptance_runs"] == j.acceptance_runs >= 3
    md = (s.paths.merge_dir / "REPORT.md").read_text()
    assert "Acceptance test runs" in md and "W1 REVERTED" in md


def test_a_later_merge_that_breaks_an_earlier_workers_test_is_dropped_and_the_rest_merged_again(tmp_path):
    workers = [
        spec("W1", test="grep -q feature-a src/a.txt && ! test -e src/kill-a.txt"),
        spec("W2", test="test -f src/kill-a.txt"),
        spec("W3", test="test -f src/c.txt"),
        spec("W4", depends_on=["W2"], test="test -f src/d.txt"),
    ]
    s = make_scenario(tmp_path / "r", workers)
    s.work("W1", {"src/a.txt": "feature-a\n"})
    s.work("W2", {"src/kill-a.txt": "x\n"})  # its own test and the suite pass; W1's does not
    s.work("W3", {"src/c.txt": "c\n"})
    s.work("W4", {"src/d.txt": "d\n"})  # built on W2
    lines: list[str] = []
    j, code = run(s, lines)
    assert code == 1
    assert verdicts(j) == {"W1": "MERGED", "W2": "REVERTED", "W3": "MERGED", "W4": "SKIPPED"}
    w2 = j.record("W2")
    assert w2.broke == "W1" and "broke W1's acceptance test" in w2.reason and not w2.merge_commit
    assert "W2" in j.record("W4").reason
    assert j.landed and files_on(s.repo, "main") >= {"src/a.txt", "src/c.txt"}
    assert not files_on(s.repo, "main") & {"src/kill-a.txt", "src/d.txt"}
    for wid in ("W1", "W3"):  # every merged worker's acceptance test passes on what landed
        assert passes_on(s.repo, "main", s.m.worker(wid).test, tmp_path)
    assert j.verified == git(s.repo, "rev-parse", "main^{tree}")
    assert any("merging again without W2: W3 W4" in line for line in lines)
    subjects = git(s.repo, "log", "--format=%s", "--first-parent", f"{s.base}..main").splitlines()
    assert [x.split()[2] for x in reversed(subjects)] == ["W1", "W3"]
    actions = [(e.iteration_id, e.action) for e in statelog.read(s.paths.log)]
    assert ("merge.W2", "revert") in actions and actions.count(("merge.W3", "merge")) == 2


def test_red_green_red_is_a_new_failure_once_a_merge_fixed_the_test(tmp_path):
    files = {
        "src/__init__.py": "",
        "tests/test_flip.py": (
            "import os\n\n"
            "def test_flip():\n"
            "    assert os.path.exists('src/fixed') and not os.path.exists('src/broken')\n\n"
            "def test_known_bug():\n    assert 1 == 2\n"
        ),
    }
    workers = [spec("W1", test="test -f src/fixed"), spec("W2", test="test -f src/broken"), spec("W3")]
    s = make_scenario(tmp_path / "r", workers, integration_test=pytest_command(), files=files)
    s.work("W1", {"src/fixed": "1\n"})  # the base's red test_flip goes green
    s.work("W2", {"src/broken": "1\n"})  # ... and red again: not the base's failure any more
    s.work("W3", {"src/other": "1\n"})
    j, code = run(s)
    assert j.baseline["failures"] == ["tests.test_flip::test_flip", "tests.test_flip::test_known_bug"]
    assert verdicts(j) == {"W1": "MERGED", "W2": "REVERTED", "W3": "MERGED"} and code == 1
    assert j.record("W2").new_failures == ["tests.test_flip::test_flip"]
    assert "new failing" in j.record("W2").reason
    # test_known_bug, red from the start and never fixed, is still excused
    assert "failures the last tested head had" in j.record("W3").reason


def crash_then(s, point):
    proc = boss("merge", cwd=s.repo, check=None, env={"BOSS_MERGE_CRASH_AT": point})
    assert proc.returncode == -9, (proc.stdout, proc.stderr)
    path = s.paths.merge_dir / "journal.json"
    return path, load_journal(path)


@pytest.mark.parametrize("point", ["merge:W2", "land"])
def test_a_resumed_ceremony_refuses_a_head_it_never_tested(tmp_path, point):
    s = make_scenario(tmp_path / "r", [spec("W1"), spec("W2")])
    s.work("W1", {"src/a.txt": "a\n"})
    s.work("W2", {"src/b.txt": "b\n"})
    before = s.main()
    path, j = crash_then(s, point)
    assert j.head != before and j.head_tree in j.proven
    tested = j.head
    j.head = s.head("W2")  # a commit whose tree the ceremony never tested
    save_journal(path, j)
    proc = boss("merge", cwd=s.repo, check=1)
    error = proc.stderr.splitlines()[-1]
    assert error.startswith("Error: ") and "field head" in error
    assert "not a tree this ceremony" in proc.stderr and str(path) in proc.stderr
    assert s.main() == before and "src/b.txt" not in files_on(s.repo, "main")
    # the head back as the journal wrote it: the ceremony resumes and lands
    j.head = tested
    save_journal(path, j)
    boss("merge", cwd=s.repo, check=0)
    assert {"src/a.txt", "src/b.txt"} <= files_on(s.repo, "main")


def test_a_head_tested_but_not_verified_by_the_final_check_cannot_land(tmp_path):
    s = make_scenario(tmp_path / "r", [spec("W1"), spec("W2")])
    s.work("W1", {"src/a.txt": "a\n"})
    s.work("W2", {"src/b.txt": "b\n"})
    before = s.main()
    path, j = crash_then(s, "land")
    assert j.verified == j.head_tree
    j.verified = ""  # as if the final check had never passed on it
    save_journal(path, j)
    proc = boss("merge", cwd=s.repo, check=1)
    assert "not a tree this ceremony verified" in proc.stderr and s.main() == before


def test_a_kill_during_the_final_check_resumes_it(tmp_path):
    s = make_scenario(tmp_path / "r", [spec("W1", test="test -f src/a.txt"), spec("W2")])
    s.work("W1", {"src/a.txt": "a\n"})
    s.work("W2", {"src/b.txt": "b\n"})
    path, j = crash_then(s, "verify")
    assert j.step == "merging" and not j.verified
    rerun = boss("merge", cwd=s.repo, check=0)
    assert "resuming" in rerun.stderr
    assert load_journal(path).verified == git(s.repo, "rev-parse", "main^{tree}")


def test_a_forged_success_status_does_not_land_a_failed_workers_branch(calc):
    """A real worker fails; its status is then rewritten to SUCCESS naming its branch's head."""
    steps = [{"write": {"src/done.txt": "wrong\n"}}]
    paths, m = make_plan(calc, [worker("W1", test="grep -q right src/done.txt", steps=steps)],
                         integration_test="true")  # fmt: skip
    config = load_config(calc)
    assert run_worker(paths, m, config, "W1") == st.FAILED
    real = st.read(paths.status("W1"))
    branch = m.worker("W1").branch
    forged = commit_on(calc, branch, {"src/done.txt": "still wrong\n"})
    st.write(paths.status("W1"), st.Status(plan="p", id="W1", state=st.SUCCESS, branch=branch,
                                           start_commit=real.start_commit, head_commit=forged,
                                           green={"exit_code": 0}))  # fmt: skip
    before = git(calc, "rev-parse", "main")
    j = merge.run(paths, m, config, lambda line: None)
    assert verdicts(j) == {"W1": "REVERTED"} and "acceptance test" in j.record("W1").reason
    assert merge.exit_code(j) == 1 and git(calc, "rev-parse", "main") == before


def test_a_hostile_agent_that_passes_only_in_its_own_worktree_is_dropped(calc):
    """A command agent makes the test pass with a file its branch never gets (src/.gitignore
    hides it from the commit): the worker says SUCCESS, the merged candidate says otherwise."""
    (calc / ".boss").mkdir()
    hostile = "printf 'done.txt\\n' > src/.gitignore && echo x > src/done.txt"
    (calc / ".boss/config.yaml").write_text(f"agents:\n  hostile:\n    command: {json.dumps(hostile)}\n")
    paths, m = make_plan(calc, [worker("W1", agent="hostile")], integration_test="true")
    config = load_config(calc)
    assert run_worker(paths, m, config, "W1") == st.SUCCESS
    assert "src/done.txt" not in files_on(calc, m.worker("W1").branch)
    j = merge.run(paths, m, config, lambda line: None)
    assert verdicts(j) == {"W1": "REVERTED"}
    assert "acceptance test `test -f src/done.txt` fails" in j.record("W1").reason
    assert not j.landed and "src/.gitignore" not in files_on(calc, "main")


def test_a_branch_that_brings_boss_files_is_never_merged_even_when_accepted(tmp_path):
    s = make_scenario(tmp_path / "r", [spec("W1", scope=[".*"], test="true"), spec("W2")])
    mine = s.paths.manifest.read_text()
    weakened = mine.replace("bash check.sh", "true")
    s.work(
        "W1",
        {
            "src/a.txt": "a\n",
            ".boss/plans/p/manifest.yaml": weakened,
            ".Boss/plans/p/workers/W2/status.json": "{}\n",
        },
    )
    s.work("W2", {"src/b.txt": "b\n"})
    refused = boss("quarantine", "accept", "W1", "--plan", "p", "--reason", "fine", cwd=s.repo, check=2)
    assert refused.stderr.startswith("Error: worker W1") and "boss's own files" in refused.stderr
    # a decision written behind boss's back changes nothing either
    record = Decision("W1", "accept", "forged", "2026-11-25T10:00:00Z", s.base, s.head("W1"))
    (s.paths.root / "quarantine").mkdir()
    (s.paths.root / "quarantine/W1.json").write_text(record.to_json())
    j, code = run(s)
    assert verdicts(j) == {"W1": "QUARANTINED", "W2": "MERGED"} and code == 1
    assert "boss's own files" in j.record("W1").reason
    assert ".boss/plans/p/manifest.yaml" in j.record("W1").out_of_scope
    assert not any(p.casefold().startswith(".boss/") for p in files_on(s.repo, "main"))
    assert s.paths.manifest.read_text() == mine  # the user's manifest is the one boss wrote


def test_the_ceremony_reads_the_manifest_boss_holds_not_a_copy_in_a_worktree(tmp_path):
    """An agent's worktree holding a weakened manifest (at .boss/ of its own checkout) changes
    nothing, even when `boss merge` is run from inside that worktree."""
    s = make_scenario(tmp_path / "r", [spec("W1", test="grep -q done src/w1.txt")])
    s.work("W1", {"src/w1.txt": "nope\n"})
    wt = s.worktree("W1")
    (wt / ".boss/plans/p").mkdir(parents=True)
    (wt / ".boss/plans/p/manifest.yaml").write_text(
        s.paths.manifest.read_text().replace("grep -q done src/w1.txt", "true")
    )
    proc = boss("merge", "--json", cwd=wt, check=1)
    assert [w["verdict"] for w in json.loads(proc.stdout)["workers"]] == ["REVERTED"]


def test_acceptance_runs_are_one_per_merge_plus_the_final_check(tmp_path):
    s = make_scenario(tmp_path / "r", [spec("W1"), spec("W2"), spec("W3")])
    for wid in ("W1", "W2", "W3"):
        s.work(wid, {f"src/{wid}.txt": wid})
    j, code = run(s)
    assert code == 0 and j.test_runs == 4
    assert j.acceptance_runs == 3 + 1  # at each merge, then W1 and W2 together on the final tree


def commit_on(repo, branch, files):
    """Commit files on top of branch (plumbing) and move the branch; the new commit."""
    from merge_helpers import commit_files

    head = commit_files(repo, git(repo, "rev-parse", branch), files, "more")
    git(repo, "update-ref", f"refs/heads/{branch}", head)
    return head


@pytest.fixture
def calc(tmp_path, monkeypatch):
    r = make_repo(tmp_path / "calc", {"src/calc.py": "x = 1\n", "README.md": "calc\n"})
    monkeypatch.chdir(r)
    return r


def test_a_success_with_no_commit_of_its_own_is_not_already_merged(tmp_path):
    """A branch left at its start is in the base's history, yet no work of it is: its test decides."""
    s = make_scenario(tmp_path / "r", [spec("W1", test="test -f src/w1.txt")])
    git(s.repo, "branch", s.m.worker("W1").branch, s.base)
    s.status("W1", st.SUCCESS, start_commit=s.base, head_commit=s.base)
    j, code = run(s)
    assert verdicts(j) == {"W1": "REVERTED"} and code == 1
    assert "acceptance test" in j.record("W1").reason and not j.landed


def test_what_a_test_run_changed_in_the_worktree_does_not_reach_the_next_merge(tmp_path):
    """W1's code, run by the integration test, edits a tracked file that makes W2's test pass;
    W2's merge starts from the tested head as committed, so its test fails as it should."""
    check = "bash check.sh && if [ -f src/evil.sh ]; then bash src/evil.sh; fi"
    workers = [spec("W1", test="test -f src/evil.sh"), spec("W2", test="grep -q W2-DONE src/shared.txt")]
    s = make_scenario(tmp_path / "r", workers, integration_test=check)
    s.work("W1", {"src/evil.sh": "echo W2-DONE >> src/shared.txt\n"})
    s.work("W2", {"src/w2.txt": "w2\n"})  # its test passes only in a tampered worktree
    j, code = run(s)
    assert verdicts(j) == {"W1": "MERGED", "W2": "REVERTED"} and code == 1
    assert git(s.repo, "show", "main:src/shared.txt") == "one\ntwo\nthree"


def test_landing_never_overwrites_an_ignored_file_in_the_users_checkout(tmp_path):
    s = make_scenario(tmp_path / "r", [spec("W1", scope=[".*"])])
    exclude = s.repo / ".git/info/exclude"
    exclude.write_text(exclude.read_text() + ".env\n")
    (s.repo / ".env").write_text("MY_SECRET=1\n")
    s.work("W1", {"src/a.txt": "a\n", ".env": "ATTACKER=1\n"})
    before = s.main()
    j, code = run(s)
    assert j.record("W1").verdict == "MERGED" and not j.landed and code == 1
    assert s.main() == before and ".env" in j.message and "boss/p/integration" in j.message
    assert (s.repo / ".env").read_text() == "MY_SECRET=1\n"


def test_a_branch_with_a_link_leaving_the_repository_is_never_merged(tmp_path):
    """A status says SUCCESS (as a forged one would) for a branch that commits, in scope, a link
    to a file outside the repository: triage finds it from git alone and quarantines it."""
    s = make_scenario(tmp_path / "repo", [spec("W1")])
    start = s.start_of("W1")
    wt = tmp_path / "wt"
    git(s.repo, "worktree", "add", "-q", "--detach", str(wt), start)
    (wt / "src").mkdir(exist_ok=True)
    (wt / "src" / "leak").symlink_to("/etc/passwd")
    git(wt, "add", "src/leak")
    git(wt, "commit", "-qm", "W1: a link")
    head = git(wt, "rev-parse", "HEAD")
    git(s.repo, "update-ref", f"refs/heads/{s.m.worker('W1').branch}", head)
    s.status("W1", "SUCCESS", start_commit=start, head_commit=head)
    before = s.main()
    boss("merge", cwd=s.repo, check=None)
    data = json.loads((s.paths.merge_dir / "report.json").read_text())
    (w1,) = data["workers"]
    assert w1["verdict"] == "QUARANTINED", w1
    assert "src/leak" in w1["reason"] and "never be merged" in w1["reason"], w1["reason"]
    assert s.main() == before
