"""Every outcome visible: `boss status` shows each worker's latest merge or review verdict, each
ceremony's report and logs are kept in merge/history/, `boss diff` shows a worker's whole change.

Real git, the real `boss` CLI; the workers' branches and statuses are made as a worker leaves them.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import boss, git, worker_cmd
from merge_helpers import make_scenario, spec

from boss.core import statelog
from boss.core import status as st
from boss.core.statusview import Columns, Row, format_row, header


def status_of(s) -> dict[str, dict]:
    data = json.loads(boss("status", "p", "--json", cwd=s.repo).stdout)
    return {w["id"]: w for w in data["workers"]} | {"_merge": data["merge"]}


def table(s) -> dict[str, str]:
    """The MERGE column of `boss status`, read from the table as a person sees it."""
    lines = boss("status", "p", cwd=s.repo).stdout.splitlines()
    head = next(n for n, line in enumerate(lines) if line.startswith("WORKER"))
    at = lines[head].index("MERGE")
    return {line.split()[0]: line[at:].split()[0] for line in lines[head + 1 :] if line.strip()}


def merge(s, code: int) -> None:
    # One slot: the logs are named after the workers (with slots, after the slot runs).
    boss("merge", "p", "--slots", "1", cwd=s.repo, check=code)


def assert_history(s, numbers: list[int]) -> None:
    """Every ceremony's folder with its reports, the latest also in merge/, and every path the
    state log names there."""
    history = s.paths.merge_dir / "history"
    assert sorted(p.name for p in history.iterdir()) == [f"{n:04d}" for n in numbers]
    for n in numbers:
        folder = history / f"{n:04d}"
        assert (folder / "REPORT.md").is_file() and (folder / "logs").is_dir()
        assert json.loads((folder / "report.json").read_text())["number"] == n
    latest = history / f"{numbers[-1]:04d}"
    assert (s.paths.merge_dir / "report.json").read_text() == (latest / "report.json").read_text()
    assert f"Ceremony {numbers[-1]}:" in (s.paths.merge_dir / "REPORT.md").read_text()
    named = [e.artifacts for e in statelog.read(s.paths.log) if e.iteration_id.startswith("merge")]
    named = [a for a in named if a]
    assert any("history/0001/logs/" in a for a in named)
    missing = [a for a in named if not (s.paths.root / a).exists()]
    assert not missing, missing


def test_three_ceremonies_each_verdict_shown_and_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("FLAKY_MARK", str(tmp_path / "flaky.mark"))
    s = make_scenario(tmp_path / "repo", [spec("W1"), spec("W2"), spec("W3")])
    s.work("W1", {"src/one.txt": "1\n"})
    s.work("W2", {"src/two.txt": "BROKEN\n"})  # breaks the integration test: REVERTED
    s.work("W3", {"src/three.txt": "3\n", "docs/guide.md": "changed\n"},
           state=st.SCOPE_VIOLATION, violations=["docs/guide.md"])  # fmt: skip
    before = status_of(s)
    assert before["_merge"] is None and before["W1"]["outcome"] == "-"

    merge(s, 1)  # ceremony 1
    shown = status_of(s)
    assert (shown["W1"]["state"], shown["W1"]["verdict"], shown["W1"]["ceremony"]) == ("SUCCESS", "MERGED", 1)
    assert (shown["W2"]["state"], shown["W2"]["verdict"]) == ("SUCCESS", "REVERTED")
    assert "new" in shown["W2"]["verdict_reason"] or "fail" in shown["W2"]["verdict_reason"]
    assert shown["W3"]["verdict"] == "QUARANTINED"
    assert shown["_merge"]["number"] == 1 and shown["_merge"]["step"] == "done"
    assert table(s) == {"W1": "MERGED", "W2": "REVERTED", "W3": "QUARANTINED"}
    assert_history(s, [1])
    # The live view run_workers.sh prints shows the same column.
    with subprocess.Popen(["sleep", "2"]) as parent:
        live = worker_cmd(
            "progress", "p", "--parent", str(parent.pid), "--interval", "0.2", cwd=s.repo
        ).stdout
    assert {line.split()[0]: line.split()[2] for line in live.splitlines()} == {
        "W1": "MERGED", "W2": "REVERTED", "W3": "QUARANTINED"
    }  # fmt: skip

    boss("quarantine", "salvage", "W3", "--plan", "p", "-m", "keep the source", cwd=s.repo)
    assert table(s)["W3"] == "salvaged"  # reviewed; the old verdict was about the old head

    merge(s, 1)  # ceremony 2: W3 salvaged and merged, W2 broken again
    shown = status_of(s)
    assert (shown["W3"]["state"], shown["W3"]["outcome"]) == ("SCOPE_VIOLATION", "MERGED/salvage")
    assert (shown["W2"]["verdict"], shown["W2"]["ceremony"]) == ("REVERTED", 2)
    assert table(s) == {"W1": "MERGED", "W2": "REVERTED", "W3": "MERGED/salvage"}
    assert_history(s, [1, 2])

    # W2 runs again (as `boss retry W2` would) and now passes: its old verdict is not its run's.
    s.work(
        "W2", {"src/two.txt": "2\n"}, started_at="2026-11-25T11:00:00Z", finished_at="2026-11-25T11:00:09Z"
    )
    assert status_of(s)["W2"]["verdict"] == "" and table(s)["W2"] == "-"

    merge(s, 0)  # ceremony 3
    shown = status_of(s)
    assert (shown["W2"]["verdict"], shown["W2"]["ceremony"]) == ("MERGED", 3)
    assert table(s) == {"W1": "MERGED", "W2": "MERGED", "W3": "MERGED/salvage"}
    assert git(s.repo, "show", "main:src/two.txt") == "2"
    assert_history(s, [1, 2, 3])
    # The REVERTED worker's logs of ceremonies 1 and 2 are still where their reports link them.
    for n in (1, 2):
        report = json.loads((s.paths.merge_dir / "history" / f"{n:04d}" / "report.json").read_text())
        w2 = next(w for w in report["workers"] if w["id"] == "W2")
        assert w2["verdict"] == "REVERTED" and (s.repo / w2["test_log"]).is_file()
        md = (s.paths.merge_dir / "history" / f"{n:04d}" / "REPORT.md").read_text()
        assert "(logs/W2.log)" in md
    assert f"(history/0003/logs/{'W2'}.log)" in (s.paths.merge_dir / "REPORT.md").read_text()
    text = boss("status", "p", cwd=s.repo).stdout
    assert "last merge 3" in text and "3 MERGED" in text
    boss("clean", "p", cwd=s.repo)  # removes the merged branches; the history stays, verdicts too
    assert_history(s, [1, 2, 3])
    assert table(s) == {"W1": "MERGED", "W2": "MERGED", "W3": "MERGED/salvage"}
    # The branches are gone: `boss diff` reads the heads boss recorded (W3's is its salvage commit).
    assert boss("diff", "W3", "--name-only", "--plan", "p", cwd=s.repo).stdout.split() == ["src/three.txt"]


def test_a_verdicts_reason_is_the_rows_news():
    row = Row("W2", "SUCCESS", 1, 1, 5.0, "b", "done: tests pass", "", {}, verdict="REVERTED",
              verdict_reason="fails (exit 1)", ceremony=2)  # fmt: skip
    assert format_row(row, 100, cols=Columns.fit([row])).endswith("merge 2: fails (exit 1)")
    merged = Row("W1", "SUCCESS", 1, 1, 5.0, "b", "done: tests pass", "", {}, verdict="MERGED", ceremony=2)
    assert format_row(merged, 100, cols=Columns.fit([merged])).endswith("done: tests pass")


def test_a_ceremony_killed_and_resumed_keeps_its_number(tmp_path):
    s = make_scenario(tmp_path / "repo", [spec("W1"), spec("W2")])
    s.work("W1", {"src/one.txt": "1\n"})
    s.work("W2", {"src/two.txt": "2\n"})
    boss("merge", "p", "--slots", "1", cwd=s.repo, check=None, env={"BOSS_MERGE_CRASH_AT": "test:W2"})
    assert json.loads((s.paths.merge_dir / "journal.json").read_text())["number"] == 1
    assert table(s)["W1"] == "MERGED" and table(s)["W2"] == "QUEUED"
    merge(s, 0)
    assert_history(s, [1])
    assert table(s) == {"W1": "MERGED", "W2": "MERGED"}


def test_diff_shows_the_whole_change_with_out_of_scope_marked(tmp_path):
    s = make_scenario(tmp_path / "repo", [spec("W1")])
    head = s.work("W1", {"src/one.txt": "one\n", "docs/guide.md": "rewritten\n"})
    git(s.repo, "update-ref", "refs/boss/p/W1/start", s.base)
    out = boss("diff", "W1", "--plan", "p", cwd=s.repo).stdout
    assert out.splitlines()[0].startswith(
        f"W1: branch {s.m.worker('W1').branch} at {head[:10]}, from its start {s.base[:10]}"
    )
    assert "2 file(s) changed, 1 out of scope" in out
    assert "+one" in out and "+rewritten" in out and "-guide" in out
    assert out.index("=== in scope: 1 file(s) ===") < out.index("+one") < out.index("=== OUT OF SCOPE")
    assert out.index("=== OUT OF SCOPE: 1 file(s)") < out.index("+rewritten")
    stat = boss("diff", "W1", "--stat", "--plan", "p", cwd=s.repo).stdout.splitlines()
    assert any(line.startswith(" docs/guide.md") and "OUT OF SCOPE" in line for line in stat)
    assert any(line.startswith(" src/one.txt") and "+1 -0" in line and "OUT" not in line for line in stat)
    names = boss("diff", "W1", "--name-only", "--plan", "p", cwd=s.repo).stdout.splitlines()
    assert names == ["docs/guide.md\tOUT OF SCOPE", "src/one.txt"]
    data = json.loads(boss("diff", "W1", "--json", "--plan", "p", cwd=s.repo).stdout)
    assert data["out_of_scope"] == ["docs/guide.md"] and data["start"] == s.base and data["head"] == head


def test_diff_of_a_worker_that_never_ran_and_an_unknown_one(tmp_path):
    s = make_scenario(tmp_path / "repo", [spec("W1")])
    proc = boss("diff", "W1", "--plan", "p", cwd=s.repo, check=2)
    assert "worker W1 has not started" in proc.stderr
    proc = boss("diff", "NOPE", "--plan", "p", cwd=s.repo, check=2)
    assert "NOPE" in proc.stderr


@pytest.mark.parametrize("outcome", ["-", "REVERTED", "MERGED/salvage"])
def test_the_table_stays_readable_at_100_columns(outcome):
    verdict, _, review = outcome.partition("/")
    row = Row("W12", "SCOPE_VIOLATION", 2, 3, 75.0, "boss/plan-name/W12", "merge: acceptance test", "",
              {}, verdict="" if verdict == "-" else verdict, review=review)  # fmt: skip
    cols = Columns.fit([row])
    assert len(format_row(row, 100, cols=cols)) <= 100 and len(header(cols)) <= 100
    assert outcome in format_row(row, 100, cols=cols).split()
