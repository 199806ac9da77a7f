"""Groups in the merge ceremony, end to end with real git and the real `boss merge`: workers that
must land together are merged one after the other and judged as one; a group that breaks is
dropped whole, with the evidence; a member kept out keeps the group out; a kill -9 mid-group
resumes to the same verdicts."""

from __future__ import annotations

import json
import signal

import pytest
from conftest import boss, git
from merge_helpers import make_scenario, pytest_command, spec

from boss.core import status as st
from boss.core.journal import load as load_journal

# A project whose suite checks the source: changing calc.value() needs its test changed too.
FILES = {
    "README.md": "# calc\n",
    "docs/guide.md": "guide\n",
    "src/calc.py": "def value():\n    return 1\n",
    "tests/conftest.py": "import sys, pathlib\nsys.path.insert(0, str(pathlib.Path(__file__).parent.parent / 'src'))\n",
    "tests/test_calc.py": "from calc import value\n\n\ndef test_value():\n    assert value() == 1\n",
}
SRC_TEST = "python3 -c \"import sys; sys.path.insert(0, 'src'); import calc; assert calc.value() == 2\""
TESTS_TEST = "grep -q '== 2' tests/test_calc.py"
PAIR = [
    spec("S", scope=["^src/"], test=SRC_TEST, group="pair"),
    spec("T", scope=["^tests/"], test=TESTS_TEST, group="pair"),
]
NEW_TEST = "from calc import value\n\n\ndef test_value():\n    assert value() == 2\n"


def scenario(root, group="pair", *, tests_depend=True, extra=()):
    grouped = {"group": group} if group else {}
    workers = [
        spec("S", scope=["^src/"], test=SRC_TEST, **grouped),
        spec("T", scope=["^tests/"], test=TESTS_TEST, depends_on=["S"] if tests_depend else [], **grouped),
        *extra,
    ]
    return make_scenario(root, workers, integration_test=pytest_command(), files=FILES)


def source_and_tests(s, tests=NEW_TEST):
    s.work("S", {"src/calc.py": "def value():\n    return 2\n"})
    s.work("T", {"tests/test_calc.py": tests})


def report(s):
    return {w["id"]: w for w in json.loads((s.paths.merge_dir / "report.json").read_text())["workers"]}


def verdicts(s):
    return {wid: w["verdict"] for wid, w in report(s).items()}


def test_a_source_worker_and_its_tests_worker_land_together(tmp_path):
    s = scenario(tmp_path / "repo")
    source_and_tests(s)
    out = boss("merge", cwd=s.repo, check=0)
    assert verdicts(s) == {"S": "MERGED", "T": "MERGED"}
    assert "value() == 2" in git(s.repo, "show", "main:tests/test_calc.py")
    assert "return 2" in git(s.repo, "show", "main:src/calc.py")
    r = report(s)
    assert "group pair (S, T)" in r["S"]["reason"] and r["S"]["reason"] == r["T"]["reason"]
    j = load_journal(s.paths.merge_dir / "journal.json")
    assert j.test_runs == 2  # the baseline and one run for the whole group, none for S alone
    assert {r.group for r in j.records} == {"pair"}
    assert "merging T of group pair" in out.stderr
    text = (s.paths.merge_dir / "REPORT.md").read_text()
    assert "Group `pair`" in text and "lands together with T" in text


def test_the_same_plan_without_the_group_reverts_the_source_worker(tmp_path):
    s = scenario(tmp_path / "repo", group=None)
    source_and_tests(s)
    boss("merge", cwd=s.repo, check=1)
    assert verdicts(s) == {"S": "REVERTED", "T": "SKIPPED"}
    assert report(s)["S"]["new_failures"] == ["tests.test_calc::test_value"]
    assert "return 1" in git(s.repo, "show", "main:src/calc.py")


def test_a_group_that_breaks_the_suite_is_dropped_whole_with_the_evidence(tmp_path):
    later = spec("U", scope=["^docs/"])
    s = scenario(tmp_path / "repo", extra=[later])
    base = s.main()
    source_and_tests(s, tests=NEW_TEST.replace("== 2", "== 2\n\n\ndef test_more():\n    assert value() == 3"))
    s.work("U", {"docs/guide.md": "a better guide\n"})
    boss("merge", cwd=s.repo, check=1)
    r = report(s)
    assert verdicts(s) == {"S": "REVERTED", "T": "REVERTED", "U": "MERGED"}
    for wid in ("S", "T"):
        assert r[wid]["new_failures"] == ["tests.test_calc::test_more"]
        assert (
            "after the group pair (S, T) merged" in r[wid]["reason"]
            and "group dropped whole" in r[wid]["reason"]
        )
        assert r[wid]["test_log"] and r[wid]["merge_commit"] == ""
    # the integration branch went back to before the group: U landed on the base alone
    assert git(s.repo, "show", "main:src/calc.py") == "def value():\n    return 1"
    assert git(s.repo, "rev-parse", "main^1") == base and "a better guide" in git(
        s.repo, "show", "main:docs/guide.md"
    )
    text = (s.paths.merge_dir / "REPORT.md").read_text()
    assert "tests.test_calc::test_more" in text


def test_a_member_that_fails_its_acceptance_test_drops_the_group(tmp_path):
    s = scenario(tmp_path / "repo", extra=[spec("V", scope=["^docs/"], depends_on=["S"])])
    s.work("S", {"src/calc.py": "def value():\n    return 2\n"})
    s.work("V", {"docs/v.md": "v\n"})
    s.work("T", {"tests/test_calc.py": NEW_TEST.replace("== 2", "- 2 == 0")})  # its own test greps '== 2'
    boss("merge", cwd=s.repo, check=1)
    r = report(s)
    assert verdicts(s) == {"S": "REVERTED", "T": "REVERTED", "V": "SKIPPED"}
    assert r["V"]["reason"] == "its dependency S was not merged (REVERTED)"
    assert "its acceptance test" in r["T"]["reason"] and "on the merged group pair (S, T)" in r["T"]["reason"]
    assert "because of its member T" in r["S"]["reason"]
    assert git(s.repo, "rev-parse", "main") == s.base


def test_a_member_that_conflicts_drops_the_group_as_a_conflict(tmp_path):
    first = spec("U", scope=["^src/"])
    s = make_scenario(
        tmp_path / "repo",
        [first, *PAIR],
        integration_test=pytest_command(),
        files=FILES,
    )
    s.work("U", {"src/calc.py": "def value():\n    return 1  # U\n"})
    source_and_tests(s)
    boss("merge", cwd=s.repo, check=1)
    r = report(s)
    assert verdicts(s) == {"U": "MERGED", "S": "CONFLICT", "T": "CONFLICT"}
    assert r["S"]["conflicts"] == ["src/calc.py"] and r["S"]["conflict_with"] == ["U"]
    assert "its group pair is dropped whole" in r["S"]["reason"]
    assert r["T"]["reason"].startswith(
        "its group pair is dropped whole because of its member S: conflicts with U"
    )
    assert "value() == 1" in git(s.repo, "show", "main:tests/test_calc.py")


def test_a_member_that_failed_keeps_the_whole_group_out(tmp_path):
    s = scenario(tmp_path / "repo", tests_depend=False)
    s.status("S", st.FAILED, reason="the test never passed")
    s.work("T", {"tests/test_calc.py": NEW_TEST})
    boss("merge", cwd=s.repo, check=1)
    r = report(s)
    assert verdicts(s) == {"S": "FAILED", "T": "SKIPPED"}
    assert (
        r["T"]["reason"] == "its group pair stays out whole: its member S is FAILED (the test never passed)"
    )
    assert git(s.repo, "rev-parse", "main") == s.base


def test_the_dry_run_names_each_group_and_what_becomes_of_it(tmp_path):
    s = scenario(tmp_path / "repo", tests_depend=False)
    source_and_tests(s)
    out = boss("merge", "--dry-run", cwd=s.repo).stdout
    assert "Group pair (S, T): merged as one unit, judged by one integration run" in out, out
    s.status("S", st.FAILED, reason="the test never passed")
    out = boss("merge", "--dry-run", cwd=s.repo).stdout
    assert "Group pair (S, T): stays out whole: its member S is FAILED" in out, out
    data = json.loads(boss("merge", "--dry-run", "--json", cwd=s.repo).stdout)
    assert data["groups"] == [
        {"group": "pair", "members": ["S", "T"], "fate": "stays out whole: its member S is FAILED"}
    ]
    assert git(s.repo, "rev-parse", "main") == s.base


def test_the_final_check_drops_a_group_that_broke_an_earlier_workers_test(tmp_path):
    docs = spec("V", scope=["^docs/"], test="grep -q guide docs/guide.md")
    s = make_scenario(
        tmp_path / "repo",
        [docs, PAIR[0], {**PAIR[1], "scope": ["^tests/", "^docs/"]}],
        integration_test=pytest_command(),
        files=FILES,
    )
    s.work("V", {"docs/v.md": "v\n"})
    s.work("S", {"src/calc.py": "def value():\n    return 2\n"})
    s.work("T", {"tests/test_calc.py": NEW_TEST, "docs/guide.md": "rewritten\n"})
    out = boss("merge", cwd=s.repo, check=1)
    r = report(s)
    assert verdicts(s) == {"V": "MERGED", "S": "REVERTED", "T": "REVERTED"}
    for wid in ("S", "T"):
        assert (
            r[wid]["broke"] == "V"
            and "the merge of its group pair broke V's acceptance test" in r[wid]["reason"]
        )
    assert git(s.repo, "show", "main:docs/guide.md") == "guide"
    assert "return 1" in git(s.repo, "show", "main:src/calc.py")
    assert "final check: S: REVERTED" in out.stderr


def crash_scenario(root):
    after = spec("U", scope=["^docs/"], depends_on=["T"])
    s = scenario(root, extra=[after])
    source_and_tests(s)
    s.work("U", {"docs/guide.md": "after\n"})
    return s


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    s = crash_scenario(tmp_path_factory.mktemp("reference") / "repo")
    boss("merge", cwd=s.repo, check=0)
    return verdicts(s), git(s.repo, "rev-parse", "main^{tree}")


# One xdist worker runs them all (scripts/test.sh runs the suite in parallel): the uninterrupted
# ceremony, the heaviest module fixture of the suite, is run once.
@pytest.mark.xdist_group("merge_groups_uninterrupted")
@pytest.mark.parametrize("point", ["merge:S", "merge:T", "accept:S", "accept:T", "test:T", "merge:U"])
def test_kill_9_mid_group_resumes_to_the_same_verdicts(tmp_path, uninterrupted, point):
    s = crash_scenario(tmp_path / "repo")
    crashed = boss("merge", cwd=s.repo, check=None, env={"BOSS_MERGE_CRASH_AT": point})
    assert crashed.returncode == -signal.SIGKILL, (crashed.stdout, crashed.stderr)
    assert s.main() == s.base
    j = load_journal(s.paths.merge_dir / "journal.json")
    if point != "merge:U":  # mid-group: nothing of the group is decided, the head is before it
        assert j.current["id"] == "S" and j.head == s.base
        assert not j.record("S").verdict and not j.record("T").verdict
    rerun = boss("merge", cwd=s.repo, check=0)
    assert "resuming" in rerun.stderr
    assert (verdicts(s), git(s.repo, "rev-parse", "main^{tree}")) == uninterrupted
    assert uninterrupted[0] == {"S": "MERGED", "T": "MERGED", "U": "MERGED"}
    assert git(s.paths.worktree_root / "p" / "_integration", "status", "--porcelain") == ""
