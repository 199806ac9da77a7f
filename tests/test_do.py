"""`boss do` end to end: the installed CLI on real repositories, with the scripted agent.

Each test makes a small repository whose `add()` is wrong, and a check script outside the
agent's scope that the acceptance test runs. The agent's script (```agent-script```) fixes the
function, or not, or also touches a file outside its scope; a `run` step reading a flag file in
the test's folder lets a test decide when a later run succeeds ("what stopped it is dealt with").
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import boss, git, make_repo

WRONG = "def add(a, b):\n    return a - b\n"
RIGHT = "def add(a, b):\n    return a + b\n"
CHECK = "import sys\nsys.path.insert(0, 'src')\nimport calc\nassert calc.add(1, 2) == 3, calc.add(1, 2)\n"
TEST = f"{shlex.quote(sys.executable)} check.py"
FIX = {"replace": {"src/calc.py": ["a - b", "a + b"]}}


def task(title: str, *steps: dict) -> str:
    """A task for the scripted agent: a title line, then its script."""
    return f"{title}\n\n```agent-script\n{json.dumps(list(steps))}\n```\n"


def calc_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"README.md": "# calc\n", "check.py": CHECK, "src/calc.py": WRONG})


def do(repo: Path, text: str, *more: str, check: int | None = 0, scope: str = "^src/", test: str = TEST):
    return boss(
        "do", text, "--test", test, "--scope", scope, "--agent", "scripted", *more, cwd=repo, check=check
    )


def head(repo: Path, ref: str = "HEAD") -> str:
    return git(repo, "rev-parse", ref)


def plan_of(proc: subprocess.CompletedProcess[str]) -> str:
    """The plan a `boss do` named in its first line."""
    first = proc.stdout.splitlines()[0]
    assert first.startswith("boss do: plan "), proc.stdout
    return first.split()[3].rstrip(":")


def status_row(repo: Path, plan: str) -> list[str]:
    out = boss("status", plan, cwd=repo).stdout
    return next(line.split() for line in out.splitlines() if line.startswith("W1 "))


def plan_dirs(repo: Path) -> list[str]:
    root = repo / ".boss" / "plans"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def starts(repo: Path, plan: str) -> int:
    """How many times the worker started, from the plan's state log."""
    log = (repo / ".boss/plans" / plan / "log").read_text().splitlines()
    return sum(1 for line in log if line.split(" | ")[2:4] == ["W1", "start"])


def gated(flag: Path) -> dict:
    """A step that fixes add() only once flag exists (else changes nothing in scope)."""
    return {"run": f"if [ -f {shlex.quote(str(flag))} ]; then sed -i 's/a - b/a + b/' src/calc.py; fi"}


# 1. success


def test_success_lands_on_the_current_branch(tmp_path):
    repo = calc_repo(tmp_path)
    before = head(repo)
    proc = do(repo, task("Fix add", FIX))
    plan = plan_of(proc)
    assert plan == "do-fix-add"
    after = head(repo)
    assert after != before
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert git(repo, "show", f"{after}:src/calc.py") + "\n" == RIGHT
    assert (repo / "src/calc.py").read_text() == RIGHT  # the checked-out files followed
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "merge-base", "--is-ancestor", before, after) == ""
    assert head(repo, f"refs/boss/{plan}/rollback") == before
    assert f"refs/boss/{plan}/rollback" in proc.stdout and before[:10] in proc.stdout
    assert "landed: main moved from" in proc.stdout and "boss undo" in proc.stdout
    row = status_row(repo, plan)
    assert row[1:3] == ["SUCCESS", "MERGED"], row
    # the record says what landed
    rec = json.loads((repo / ".boss/plans" / plan / "do.json").read_text())
    assert (rec["branch"], rec["rollback"], rec["landed_from"], rec["landed_to"]) == (
        "main",
        before,
        before,
        after,
    )
    line = boss("do", "Fix add", "--test", "true", "--plan", plan, cwd=repo, check=2).stderr
    assert "exists already" in line and f"boss do --retry --plan {plan}" in line
    # --retry afterwards: already landed, nothing runs again
    again = boss("do", "--retry", cwd=repo)
    assert "already landed" in again.stdout
    assert head(repo) == after
    # a second `boss do` with the same task gets its own plan
    second = do(repo, task("Fix add", {"write": {"src/more.py": "x = 1\n"}}), check=None)
    assert plan_of(second) != plan and plan_of(second).startswith("do-fix-add")


def test_from_a_markdown_plan_of_one_worker(tmp_path):
    repo = calc_repo(tmp_path)
    md = tmp_path / "TASK.md"
    md.write_text(
        "# Calc fix\nFix it.\n\n## X9: fix add\n- scope: ^src/\n"
        f"- test: {TEST}\n- agent: scripted\n\n{task('Fix add', FIX)}"
    )
    before = head(repo)
    proc = boss("do", "--from", str(md), cwd=repo)
    plan = plan_of(proc)
    assert (repo / "src/calc.py").read_text() == RIGHT
    assert head(repo, f"refs/boss/{plan}/rollback") == before
    assert status_row(repo, plan)[1:3] == ["SUCCESS", "MERGED"]


def test_from_a_linked_worktree_it_lands_on_that_worktree_s_branch(tmp_path):
    repo = calc_repo(tmp_path)
    before = head(repo)
    linked = tmp_path / "feature"
    git(repo, "worktree", "add", "-q", "-b", "feature", str(linked))
    proc = do(linked, task("Fix add", FIX))
    assert "on feature at" in proc.stdout
    assert head(repo, "main") == before and (repo / "src/calc.py").read_text() == WRONG
    assert head(repo, "feature") != before and (linked / "src/calc.py").read_text() == RIGHT
    assert git(linked, "status", "--porcelain") == ""
    boss("undo", cwd=linked)
    assert head(repo, "feature") == before and (linked / "src/calc.py").read_text() == WRONG


# 2. never passing, then retried


def test_never_passing_leaves_the_branch_untouched_then_retry_lands(tmp_path):
    repo = calc_repo(tmp_path)
    (repo / "notes.txt").write_text("mine\n")  # the person's untracked file stays
    flag = tmp_path / "dealt-with"
    before = head(repo)
    proc = do(repo, task("Fix add", gated(flag)), check=1)
    plan = plan_of(proc)
    assert head(repo) == before
    assert (repo / "src/calc.py").read_text() == WRONG
    assert git(repo, "status", "--porcelain") == "?? notes.txt"
    blocker = repo / ".boss/plans" / plan / "workers/W1/BLOCKER_REPORT.md"
    assert blocker.is_file()
    assert f"blocker report: .boss/plans/{plan}/workers/W1/BLOCKER_REPORT.md" in proc.stdout
    assert "nothing landed" in proc.stdout and f"boss do --retry --plan {plan}" in proc.stdout
    assert status_row(repo, plan)[1] == "FAILED"
    runs = starts(repo, plan)
    # undo of a failed do: nothing to undo
    refused = boss("undo", cwd=repo, check=1)
    assert "nothing of it landed" in refused.stderr and head(repo) == before
    # once what stopped it is dealt with, --retry reruns the worker and lands
    flag.write_text("go\n")
    again = boss("do", "--retry", cwd=repo)
    assert "landed: main moved from" in again.stdout
    assert starts(repo, plan) == runs + 1  # the worker ran again
    assert (repo / "src/calc.py").read_text() == RIGHT
    assert (repo / "notes.txt").read_text() == "mine\n"
    assert status_row(repo, plan)[1:3] == ["SUCCESS", "MERGED"]


def test_a_test_that_passes_before_the_work_is_fixed_in_the_plan_then_retry_lands(tmp_path):
    repo = calc_repo(tmp_path)
    before = head(repo)
    proc = do(repo, task("Fix add", FIX), test="true", check=1)
    plan = plan_of(proc)
    assert "red gate" in proc.stdout and head(repo) == before
    manifest = repo / ".boss/plans" / plan / "manifest.yaml"
    assert f"{manifest.relative_to(repo)}, then boss render {plan}" in proc.stdout
    manifest.write_text(manifest.read_text().replace("test: 'true'", f"test: {TEST}"))
    boss("render", plan, cwd=repo)
    boss("do", "--retry", cwd=repo)
    assert (repo / "src/calc.py").read_text() == RIGHT


# 3. scope violation


@pytest.mark.parametrize("decision", ["salvage", "accept"])
def test_scope_violation_is_held_for_review_then_lands(tmp_path, decision):
    repo = calc_repo(tmp_path)
    before = head(repo)
    proc = do(repo, task("Fix add", {**FIX, "write": {"outside.txt": "not mine to change\n"}}), check=1)
    plan = plan_of(proc)
    assert "held for review" in proc.stdout
    assert f"boss quarantine show W1 --plan {plan}" in proc.stdout
    assert f"boss quarantine salvage W1 --plan {plan}" in proc.stdout
    assert f"boss quarantine accept W1 --plan {plan} -m WHY" in proc.stdout
    assert f"boss do --retry --plan {plan}" in proc.stdout
    assert head(repo) == before and (repo / "src/calc.py").read_text() == WRONG
    assert not (repo / "outside.txt").exists()
    reason = ["--reason", "the file is wanted"] if decision == "accept" else []
    boss("quarantine", decision, "W1", "--plan", plan, *reason, cwd=repo)
    boss("do", "--retry", cwd=repo)
    assert (repo / "src/calc.py").read_text() == RIGHT
    files = git(repo, "ls-tree", "-r", "--name-only", "HEAD").split()
    assert ("outside.txt" in files) == (decision == "accept")
    assert head(repo, f"refs/boss/{plan}/rollback") == before


def test_changes_in_the_way_keep_the_branch_then_retry_lands(tmp_path):
    repo = calc_repo(tmp_path)
    before = head(repo)
    mine = WRONG + "# mine\n"
    (repo / "src/calc.py").write_text(mine)
    proc = do(repo, task("Fix add", FIX), check=1)
    plan = plan_of(proc)
    assert "tested, not landed" in proc.stdout and "src/calc.py" in proc.stdout
    assert f"report: .boss/plans/{plan}/merge/REPORT.md" in proc.stdout
    assert f"then: boss do --retry --plan {plan}" in proc.stdout
    assert head(repo) == before and (repo / "src/calc.py").read_text() == mine
    git(repo, "stash", "-q")
    boss("do", "--retry", cwd=repo)
    assert (repo / "src/calc.py").read_text() == RIGHT
    boss("undo", cwd=repo)
    assert head(repo) == before and (repo / "src/calc.py").read_text() == WRONG


# 6. inputs


def bad(repo: Path, *args: str, code: int = 2) -> str:
    proc = boss(*args, cwd=repo, check=code)
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
    return lines[0]


def test_bad_inputs_say_what_is_wrong_and_leave_nothing(tmp_path):
    repo = calc_repo(tmp_path)
    before = head(repo)
    assert "--test CMD is missing" in bad(repo, "do", "Fix add")
    assert "TASK argument is missing" in bad(repo, "do", "--test", "true")
    assert "no `boss do` to resume" in bad(repo, "do", "--retry")
    assert "give only --plan" in bad(repo, "do", "--retry", "Fix add")
    assert "'nosuch'" in bad(repo, "do", "Fix add", "--test", "true", "--agent", "nosuch")
    assert "--from" in bad(repo, "do", "Fix add", "--from", "x.md")
    two = tmp_path / "TWO.md"
    two.write_text(
        "# Two\n\n## W1: a\n- scope: ^a/\n- test: true\n\nA.\n\n## W2: b\n- scope: ^b/\n- test: true\n\nB.\n"
    )
    line = bad(repo, "do", "--from", str(two))
    assert "TWO.md" in line and "exactly one worker" in line and "has 2" in line
    line = bad(repo, "do", "Fix add", "--test", "true", "--scope", "(")
    assert "field scope: invalid regex '('" in line
    assert plan_dirs(repo) == []
    git(repo, "checkout", "-q", "--detach")
    line = bad(repo, "do", "Fix add", "--test", "true", "--agent", "scripted")
    assert "HEAD detached" in line and "--base" not in line and "git switch" in line
    assert plan_dirs(repo) == [] and head(repo) == before
    git(repo, "checkout", "-q", "main")
    line = bad(repo, "do", "Fix add", "--test", "true", "--plan", "Bad Name")
    assert "--plan" in line and "'Bad Name'" in line
    assert "nope.md" in bad(repo, "do", "--from", "nope.md")
    assert plan_dirs(repo) == []
    # a plan not made by `boss do`
    boss("plan", "--from", str(two), cwd=repo)
    assert "not made by `boss do`" in bad(repo, "do", "--retry", "--plan", "two")
    assert "not made by `boss do`" in bad(repo, "undo", "two")
    assert "no plan 'nope'" in bad(repo, "undo", "nope")
    line = bad(repo, "do", "Fix add", "--test", "true", "--plan", "two")
    assert "exists already" in line and "--retry" not in line and "--force" not in line


# the integration test, and --watch


def test_a_failing_integration_test_keeps_the_branch(tmp_path):
    repo = calc_repo(tmp_path)
    before = head(repo)
    proc = do(repo, task("Fix add", FIX), "--integration-test", "grep -q 'a - b' src/calc.py", check=1)
    plan = plan_of(proc)
    assert "not landed: REVERTED" in proc.stdout and f"boss retry W1 --onto --plan {plan}" in proc.stdout
    assert head(repo) == before and (repo / "src/calc.py").read_text() == WRONG
    assert "nothing of it landed" in boss("undo", cwd=repo, check=1).stderr
    # the plan changed (its integration test), rendered: --retry lands it
    manifest = repo / ".boss/plans" / plan / "manifest.yaml"
    assert f".boss/plans/{plan}/manifest.yaml, then boss render {plan}" in proc.stdout
    manifest.write_text(manifest.read_text().replace("grep -q 'a - b' src/calc.py", "test -f check.py"))
    boss("render", plan, cwd=repo)
    again = boss("do", "--retry", cwd=repo)
    assert "and the integration test" in again.stdout and (repo / "src/calc.py").read_text() == RIGHT


def test_a_passing_integration_test_and_watch_show_every_step(tmp_path):
    repo = calc_repo(tmp_path)
    proc = do(repo, task("Fix add", FIX), "--integration-test", "test -f check.py", "--watch")
    assert "and the integration test" in proc.stdout
    assert " agent " in proc.stdout and " worktree " in proc.stdout  # not only the milestones
    assert (repo / "src/calc.py").read_text() == RIGHT
