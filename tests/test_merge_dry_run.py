"""boss merge --dry-run: triage, order and predicted conflicts, and nothing changed at all."""

from __future__ import annotations

import hashlib
import json

from conftest import boss, git
from merge_helpers import make_scenario, spec

from boss.core import status as st


def snapshot(repo):
    """Refs, worktrees, and every file (the object store aside: merge-tree may add objects)."""
    files = {}
    for p in sorted(repo.rglob("*")):
        rel = p.relative_to(repo).as_posix()
        if p.is_file() and not rel.startswith(".git/objects/"):
            files[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return (
        git(repo, "for-each-ref", "--format=%(refname) %(objectname)"),
        git(repo, "worktree", "list", "--porcelain"),
        files,
    )


def scenario(tmp_path):
    s = make_scenario(tmp_path / "repo", [spec("W1"), spec("W2"), spec("W3"), spec("W4", depends_on=["W1"]),
                                          spec("W5")])  # fmt: skip
    s.work("W1", {"src/shared.txt": "one\nW1\nthree\n"})
    s.work("W2", {"src/shared.txt": "one\nW2\nthree\n"})
    s.work("W3", {"src/c.txt": "c\n", "README.md": "out of scope\n"}, state=st.SCOPE_VIOLATION,
           violations=["README.md"])  # fmt: skip
    s.work("W4", {"src/d.txt": "d\n"})
    s.work("W5", {"src/e.txt": "e\n"})
    return s


def test_dry_run_predicts_and_changes_nothing(tmp_path):
    s = scenario(tmp_path)
    s.worktree("W5")  # a worker's worktree exists, as after a real run
    before = snapshot(s.repo)
    proc = boss("merge", "--dry-run", cwd=s.repo)
    assert snapshot(s.repo) == before
    out = proc.stdout
    assert "Merge order: W1 -> W2 -> W4 -> W5" in out
    assert "W1 with W2: src/shared.txt" in out
    assert "QUARANTINED" in out and "W3" in out

    data = json.loads(boss("merge", "--dry-run", "--json", cwd=s.repo).stdout)
    assert snapshot(s.repo) == before
    assert data["order"] == ["W1", "W2", "W4", "W5"]
    assert data["conflicts_between"] == [{"a": "W1", "b": "W2", "files": ["src/shared.txt"]}]
    assert data["conflicts_with_base"] == {}
    w3 = next(w for w in data["workers"] if w["id"] == "W3")
    assert w3["verdict"] == "QUARANTINED" and w3["out_of_scope"] == ["README.md"]


def test_dry_run_predicts_a_conflict_with_a_moved_base(tmp_path):
    s = scenario(tmp_path)
    (s.repo / "src/shared.txt").write_text("one\nmain moved\nthree\n")
    git(s.repo, "commit", "-qam", "moved")
    data = json.loads(boss("merge", "--dry-run", "--json", cwd=s.repo).stdout)
    shared = ["src/shared.txt"]
    # W4 is built on W1, so it carries W1's change into the conflict too
    assert data["conflicts_with_base"] == {"W1": shared, "W2": shared, "W4": shared}


def test_dry_run_agrees_with_the_ceremony(tmp_path):
    s = scenario(tmp_path)
    predicted = json.loads(boss("merge", "--dry-run", "--json", cwd=s.repo).stdout)
    boss("merge", cwd=s.repo, check=1)
    report = json.loads((s.paths.merge_dir / "report.json").read_text())
    verdicts = {w["id"]: w["verdict"] for w in report["workers"]}
    later = {p["b"] for p in predicted["conflicts_between"]}
    assert later == {w for w, v in verdicts.items() if v == "CONFLICT"} == {"W2"}


def test_dry_run_mentions_an_interrupted_ceremony(tmp_path):
    s = scenario(tmp_path)
    boss("merge", cwd=s.repo, check=None, env={"BOSS_MERGE_CRASH_AT": "baseline"})
    before = snapshot(s.repo)
    proc = boss("merge", "--dry-run", cwd=s.repo)
    assert "would be resumed" in proc.stdout
    assert snapshot(s.repo) == before
