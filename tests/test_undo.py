"""`boss undo` end to end: the installed CLI puts a branch back after a real `boss do`."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import boss, git
from test_do import FIX, RIGHT, WRONG, calc_repo, do, head, plan_of, task


def landed(tmp_path: Path) -> tuple[Path, str, str, str]:
    """A repository where `boss do` landed the fix: repo, plan, the commit before, after."""
    repo = calc_repo(tmp_path)
    before = head(repo)
    plan = plan_of(do(repo, task("Fix add", FIX)))
    assert head(repo) != before and (repo / "src/calc.py").read_text() == RIGHT
    return repo, plan, before, head(repo)


def test_undo_restores_the_branch_and_its_files_once(tmp_path):
    repo, plan, before, after = landed(tmp_path)
    proc = boss("undo", cwd=repo)
    assert "undone: main moved back" in proc.stdout and before[:10] in proc.stdout
    assert head(repo) == before
    assert (repo / "src/calc.py").read_text() == WRONG
    assert git(repo, "status", "--porcelain") == ""
    assert head(repo, f"do/{plan}") != before  # the work stays on the worker's branch
    rec = json.loads((repo / ".boss/plans" / plan / "do.json").read_text())
    assert rec["undo_to"] == before and rec["undone_at"]
    again = boss("undo", plan, cwd=repo, check=1)
    assert "already undone" in again.stderr and head(repo) == before
    retry = boss("do", "--retry", cwd=repo, check=1)
    assert "was undone" in retry.stdout and head(repo) == before
    assert after[:10] not in git(repo, "log", "--format=%h", "-n", "5")


def test_undo_is_refused_when_the_branch_moved_since(tmp_path):
    repo, plan, _, after = landed(tmp_path)
    (repo / "later.txt").write_text("later\n")
    git(repo, "add", "later.txt")
    git(repo, "commit", "-qm", "later work")
    tip = head(repo)
    proc = boss("undo", cwd=repo, check=1)
    line = proc.stderr.strip()
    assert line.startswith("Error: ") and len(line.splitlines()) == 1
    assert "moved since the work landed" in line and "git revert" in line and "nothing changed" in line
    assert head(repo) == tip and (repo / "later.txt").exists() and (repo / "src/calc.py").read_text() == RIGHT
    # the hint it gives takes back only the work
    hint = line.split("To take back only this work: ")[1]
    git(repo, *hint.split()[1:])
    assert (repo / "src/calc.py").read_text() == WRONG and (repo / "later.txt").exists()
    rec = json.loads((repo / ".boss/plans" / plan / "do.json").read_text())
    assert rec["landed_to"] == after and not rec["undo_to"] and not rec["undone_at"]


def test_undo_keeps_uncommitted_changes(tmp_path):
    repo, plan, before, after = landed(tmp_path)
    # a change where the undo changes files: refused, nothing moves, the change stays
    mine = RIGHT + "# mine\n"
    (repo / "src/calc.py").write_text(mine)
    proc = boss("undo", cwd=repo, check=1)
    assert "uncommitted changes" in proc.stderr and "src/calc.py" in proc.stderr
    assert "nothing changed" in proc.stderr
    assert head(repo) == after and (repo / "src/calc.py").read_text() == mine
    # a change elsewhere: the undo goes on and keeps it
    (repo / "src/calc.py").write_text(RIGHT)
    (repo / "README.md").write_text("# calc, edited\n")
    boss("undo", plan, cwd=repo)
    assert head(repo) == before and (repo / "src/calc.py").read_text() == WRONG
    assert (repo / "README.md").read_text() == "# calc, edited\n"
    assert git(repo, "status", "--porcelain") == "M README.md"


def test_undo_of_a_branch_not_checked_out_moves_only_the_branch(tmp_path):
    repo, _, before, _ = landed(tmp_path)
    git(repo, "switch", "-q", "-c", "other", before)
    (repo / "src/calc.py").write_text("# other's own\n")
    boss("undo", cwd=repo)
    assert head(repo, "main") == before and head(repo) == before
    assert (repo / "src/calc.py").read_text() == "# other's own\n"


def test_two_dos_are_undone_latest_first(tmp_path):
    repo, first, before, after = landed(tmp_path)
    second = plan_of(
        do(
            repo,
            task("Add sub", {"write": {"src/sub.py": "x = 1\n"}}),
            scope="^src/sub",
            test="test -f src/sub.py",
        )
    )
    assert second != first and (repo / "src/sub.py").exists()
    refused = boss("undo", first, cwd=repo, check=1)
    assert "moved since the work landed" in refused.stderr
    boss("undo", cwd=repo)  # the latest: the second
    assert head(repo) == after and not (repo / "src/sub.py").exists()
    boss("undo", first, cwd=repo)
    assert head(repo) == before and (repo / "src/calc.py").read_text() == WRONG


def test_an_undo_interrupted_after_the_branch_moved_finishes_when_run_again(tmp_path):
    repo, plan, before, after = landed(tmp_path)
    # as a crash leaves it: the record says where the undo goes, the branch moved, the files did not
    where = repo / ".boss/plans" / plan / "do.json"
    where.write_text(json.dumps({**json.loads(where.read_text()), "undo_to": before}))
    git(repo, "update-ref", "refs/heads/main", before, after)
    assert (repo / "src/calc.py").read_text() == RIGHT
    proc = boss("undo", cwd=repo)
    assert "undone: main moved back" in proc.stdout
    assert head(repo) == before and (repo / "src/calc.py").read_text() == WRONG
    assert git(repo, "status", "--porcelain") == ""
    assert json.loads(where.read_text())["undone_at"]
