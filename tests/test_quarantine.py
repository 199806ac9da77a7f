"""boss quarantine list|show|accept|reject|salvage: review of quarantined work."""

from __future__ import annotations

import json

import pytest
from conftest import boss, git
from merge_helpers import commit_files, make_scenario, spec

from boss.ceremony import merge, quarantine
from boss.core import status as st
from boss.core.config import load_config
from boss.core.errors import InputError, StateError


@pytest.fixture
def s(tmp_path):
    """W1 violated its scope (README.md changed, notes.txt added); W2 says SUCCESS but is out of
    scope; W3 is clean."""
    s = make_scenario(tmp_path / "repo", [spec("W1"), spec("W2"), spec("W3")])
    s.work("W1", {"src/one.txt": "1\n", "README.md": "# rewritten\n", "notes.txt": "n\n"},
           state=st.SCOPE_VIOLATION, violations=["README.md", "notes.txt"])  # fmt: skip
    s.work("W2", {"src/two.txt": "2\n", "docs/guide.md": "changed\n"})
    s.work("W3", {"src/three.txt": "3\n"})
    return s


def ceremony(s):
    j = merge.run(s.paths, s.m, load_config(s.repo), lambda _line: None)
    return {r.id: r for r in j.records}


def test_list_shows_status_and_verification_quarantines(s):
    proc = boss("quarantine", "list", "--plan", "p", cwd=s.repo)
    assert "W1" in proc.stdout and "W2" in proc.stdout and "W3" not in proc.stdout
    assert "out of scope: README.md" in proc.stdout and "out of scope: docs/guide.md" in proc.stdout
    data = json.loads(boss("quarantine", "list", "--json", cwd=s.repo).stdout)
    assert [d["id"] for d in data] == ["W1", "W2"]
    assert data[0]["out_of_scope"] == ["README.md", "notes.txt"] and data[0]["decision"] is None


def test_show_prints_the_paths_and_their_diff(s):
    proc = boss("quarantine", "show", "W1", "--plan", "p", cwd=s.repo)
    assert "out-of-scope paths: README.md, notes.txt" in proc.stdout
    assert "+# rewritten" in proc.stdout and "-# sample" in proc.stdout and "+n" in proc.stdout
    # The whole change: the in-scope file too, and each out-of-scope path marked, its diff last.
    assert "+1" in proc.stdout and "=== in scope: 1 file(s) ===" in proc.stdout
    marked = [line for line in proc.stdout.splitlines() if "OUT OF SCOPE (" in line]
    assert [line.split("|")[0].strip() for line in marked] == ["README.md", "notes.txt"]
    assert proc.stdout.index("=== in scope") < proc.stdout.index("=== OUT OF SCOPE: 2 file(s)")
    assert proc.stdout.index("=== OUT OF SCOPE") < proc.stdout.index("+# rewritten")
    data = json.loads(boss("quarantine", "show", "W2", "--json", cwd=s.repo).stdout)
    assert data["out_of_scope"] == ["docs/guide.md"] and "+changed" in data["diff"]
    assert data["change"]["out_of_scope"] == ["docs/guide.md"] and "+2" in data["whole_diff"]


def test_not_quarantined_and_unknown_workers_are_input_errors(s):
    proc = boss("quarantine", "accept", "W3", "--reason", "x", cwd=s.repo, check=2)
    assert "not quarantined" in proc.stderr
    proc = boss("quarantine", "show", "W9", cwd=s.repo, check=2)
    assert "W9" in proc.stderr and "W1" in proc.stderr
    boss("quarantine", "reject", "W1", cwd=s.repo, check=2)  # --reason is required


def test_accept_merges_it_as_it_is(s):
    boss("quarantine", "accept", "W1", "--reason", "the README edit is wanted", cwd=s.repo)
    decision = json.loads((s.paths.root / "quarantine" / "W1.json").read_text())
    assert decision["decision"] == "accept" and decision["reason"] == "the README edit is wanted"
    records = ceremony(s)
    assert records["W1"].verdict == "MERGED" and records["W1"].decision == "accept"
    assert records["W1"].out_of_scope == ["README.md", "notes.txt"]
    assert git(s.repo, "show", "main:README.md") == "# rewritten"
    assert records["W2"].verdict == "QUARANTINED"


def test_reject_keeps_it_out(s):
    quarantine.reject(s.paths, s.m, load_config(s.repo), "W2", "it edits the docs")
    records = ceremony(s)
    assert (
        records["W2"].verdict == "QUARANTINED"
        and "rejected at review: it edits the docs" in records["W2"].reason
    )
    assert "src/two.txt" not in git(s.repo, "ls-tree", "-r", "--name-only", "main")
    events = (s.paths.log).read_text()
    assert "merge.W2 | quarantine | reject: it edits the docs" in events


def test_salvage_drops_out_of_scope_changes_and_lands_the_rest_alone(s):
    wt = s.worktree("W1")
    old = s.head("W1")
    proc = boss("quarantine", "salvage", "W1", "--plan", "p", "--reason", "keep the code", cwd=s.repo)
    assert "dropped: README.md, notes.txt" in proc.stdout
    new = s.head("W1")
    assert git(s.repo, "rev-parse", f"{new}^") == old  # a new commit on the branch, history kept
    assert git(s.repo, "diff", "--name-only", s.base, new).split() == ["src/one.txt"]
    assert "keep the code" in git(s.repo, "log", "-1", "--format=%B", new)
    # the worker's worktree follows its branch and stays clean
    assert git(wt, "status", "--porcelain") == "" and not (wt / "notes.txt").exists()
    assert (wt / "README.md").read_text() == "# sample\n"
    data = json.loads(boss("quarantine", "list", "--json", cwd=s.repo).stdout)
    w1 = next(d for d in data if d["id"] == "W1")
    assert w1["verdict"] == "QUEUED" and w1["decision"]["decision"] == "salvage"
    assert w1["decision"]["head"] == new and w1["decision"]["previous_head"] == old

    # W3 first lands with the others; the salvaged W1 is then landed alone
    quarantine.reject(s.paths, s.m, load_config(s.repo), "W2", "no")
    records = ceremony(s)
    assert records["W1"].verdict == "MERGED" and records["W3"].verdict == "MERGED"
    tracked = set(git(s.repo, "ls-tree", "-r", "--name-only", "main").split())
    assert "src/one.txt" in tracked and "notes.txt" not in tracked
    assert git(s.repo, "show", "main:README.md") == "# sample"


def test_salvage_refuses_a_worktree_with_uncommitted_changes(s):
    wt = s.worktree("W1")
    (wt / "src" / "one.txt").write_text("unsaved\n")
    with pytest.raises(StateError, match="uncommitted changes"):
        quarantine.salvage(s.paths, s.m, load_config(s.repo), "W1", "x")
    assert not (s.paths.root / "quarantine" / "W1.json").exists()


def test_a_commit_by_hand_after_review_keeps_the_accepted_paths_and_no_more(s):
    quarantine.accept(s.paths, s.m, load_config(s.repo), "W2", "fine")
    head = s.head("W2")
    later = commit_files(s.repo, head, {"docs/more.md": "new\n"}, "after review")
    git(s.repo, "update-ref", f"refs/heads/{s.m.worker('W2').branch}", later)
    records = ceremony(s)
    assert records["W2"].verdict == "QUARANTINED" and "finished by hand (1 commit)" in records["W2"].reason
    assert "docs/more.md" in records["W2"].out_of_scope
    inside = commit_files(s.repo, head, {"src/two.txt": "finished by hand\n"}, "after review")
    git(s.repo, "update-ref", f"refs/heads/{s.m.worker('W2').branch}", inside)
    records = ceremony(s)
    assert records["W2"].verdict == "MERGED" and records["W2"].by_hand == 1
    assert git(s.repo, "show", "main:src/two.txt") == "finished by hand"


def test_an_unreadable_decision_names_its_file(s):
    path = s.paths.root / "quarantine" / "W1.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(StateError, match=r"W1\.json"):
        quarantine.read_decision(s.paths, "W1")


def test_merged_work_is_not_reviewable(s):
    quarantine.accept(s.paths, s.m, load_config(s.repo), "W1", "ok")
    ceremony(s)
    with pytest.raises(InputError, match="already merged"):
        quarantine.reject(s.paths, s.m, load_config(s.repo), "W1", "too late")


def test_a_decision_goes_stale_when_the_worker_runs_again(s):
    quarantine.reject(s.paths, s.m, load_config(s.repo), "W2", "out of scope")
    assert quarantine.read_decision(s.paths, "W2") is not None
    s.work("W2", {"src/two.txt": "2, done right\n"})  # `boss retry W2`: new work, in scope
    assert quarantine.read_decision(s.paths, "W2") is None
    assert ceremony(s)["W2"].verdict == "MERGED"
