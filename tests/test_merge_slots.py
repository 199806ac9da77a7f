"""`boss merge --slots N` gives the serial ceremony's answer: the same plan, built twice by the same
function in two repositories, merged with `--slots 1` (the serial ceremony) and with more slots;
the verdicts, why each dropped worker was dropped, the merges that landed (in order) and main's
tree are the same, and every commit the base moved through is a tree whose integration test
passed. Cases: no breaking worker, one, three of eight, a conflict, dependencies, an acceptance
test that fails after the merge (and one that a later merge breaks), groups, and a flaky test."""

from __future__ import annotations

import json
import os
import re
import time

import pytest
import yaml
from conftest import boss, git
from merge_helpers import make_scenario, spec

# The integration test: red when src/ holds BROKEN, or half of a pair without the other half;
# with src/flaky.txt, red the first time it runs on a tree and green after (a flaky test, counted
# per tree in $FLAKY_DIR, outside the repository: only `sandbox: off` lets it write there).
CHECK_SH = """#!/usr/bin/env bash
set -u
if grep -rq BROKEN src; then echo "FAIL: src/ holds broken code"; exit 1; fi
if [ -f src/half_a.txt ] && [ ! -f src/half_b.txt ]; then echo "FAIL: half a pair"; exit 1; fi
if [ -f src/x.txt ] && [ -f src/y.txt ]; then echo "FAIL: x and y do not go together"; exit 1; fi
if [ -f src/flaky.txt ]; then
  mark="${FLAKY_DIR:?}/$(git rev-parse 'HEAD^{tree}')"
  if [ ! -e "$mark" ]; then : > "$mark"; echo "FAIL: flaky, first run on this tree"; exit 1; fi
fi
echo ok
"""
FILES = {"README.md": "# sample\n", "check.sh": CHECK_SH, "src/shared.txt": "one\ntwo\nthree\n"}
SLEEP = "0.2"
BAD = {"src/bad.txt": "BROKEN\n"}


def new(wid: str) -> dict[str, str | None]:
    """A worker's own new file."""
    return {f"src/{wid.lower()}.txt": f"{wid}\n"}


def build(root, work, *, sleep=SLEEP, sandbox_off=False):
    """A plan in a new repository: work is [(manifest entry, files its branch commits)], in an
    order where each dependency comes first. The same call gives the same trees."""
    s = make_scenario(
        root, [w for w, _ in work], integration_test=f"sleep {sleep} && bash check.sh", files=FILES
    )
    if sandbox_off:
        (s.repo / ".boss/config.yaml").write_text("sandbox: off\n")
    for w, files in work:
        s.work(w["id"], files)
    return s


def ceremony(s, slots, env=None):
    """`boss merge p --slots N --json` as a user runs it: report.json's content, exit code added."""
    started = time.monotonic()
    proc = boss("merge", "p", "--slots", str(slots), "--json", cwd=s.repo, check=None, env=env)
    assert proc.returncode in (0, 1), (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout.startswith("{"), (proc.returncode, proc.stdout, proc.stderr)
    data = json.loads(proc.stdout)
    data["exit"], data["wall"] = proc.returncode, time.monotonic() - started
    assert data["slots"] == slots
    return data


def why(w):
    """What a worker's verdict rests on, not the words or timings it is told in."""
    reason = w["reason"]
    cause = (
        "acceptance" if "acceptance test" in reason else "integration" if "integration test" in reason else ""
    )
    kind = (w["verdict"], w["retried"], bool(w["merge_commit"]))
    if w["verdict"] == "MERGED":
        return kind
    skipped = reason if w["verdict"] == "SKIPPED" else ""  # names the dependency that was not merged
    return (*kind, cause, w["conflicts"], w["conflict_with"], w["new_failures"], w["broke"], skipped)


def landed_merges(s):
    """The workers whose merge commits the base moved through, oldest first."""
    subjects = git(
        s.repo, "log", "--first-parent", "--reverse", "--format=%s", f"{s.base}..main"
    ).splitlines()
    return [re.match(r"boss: merge (\S+) ", x).group(1) for x in subjects]


def evidence(s, data):
    """Each worker's reason and the tail of its test logs: what a failed comparison shows."""
    out = []
    for w in data["workers"]:
        logs = [s.repo / w[k] for k in ("test_log", "retry_log") if w[k]]
        tails = [" | ".join(x.read_text().splitlines()[-3:]) for x in logs if x.is_file()]
        out.append(f"{w['id']} {w['verdict']}: {w['reason']} {tails}")
    return "\n".join(out)


def outcome(s, data):
    return {
        "exit": data["exit"],
        "verdicts": {w["id"]: w["verdict"] for w in data["workers"]},
        "why": {w["id"]: why(w) for w in data["workers"]},
        "landed": landed_merges(s),
        "tree": git(s.repo, "rev-parse", "main^{tree}"),
        "landed_flag": data["landed"],
    }


def every_landed_commit_passed(s):
    """Each commit on main's first-parent line since the base (a group's: its last member's) is a
    tree the journal records as tested green and proven; the last is the verified tree."""
    j = json.loads((s.paths.merge_dir / "journal.json").read_text())
    commits = git(s.repo, "rev-list", "--first-parent", "--reverse", f"{s.base}..main").splitlines()
    groups = [s.m.worker(wid).group for wid in landed_merges(s)]
    assert len(commits) == len(groups)
    for k, commit in enumerate(commits):
        if groups[k] and k + 1 < len(commits) and groups[k + 1] == groups[k]:
            continue  # inside a group: only the tree after its last member is judged (serial too)
        tree = git(s.repo, "rev-parse", f"{commit}^{{tree}}")
        runs = [run for key, run in j["tested"].items() if key.split()[0] == tree]
        assert any(run["exit_code"] == 0 for run in runs), (commit, tree, runs)
        assert tree in j["proven"], (commit, tree)
    if commits:
        assert j["verified"] == git(s.repo, "rev-parse", "main^{tree}")


def same_answer(tmp_path, work, slots=(4,), *, expected, sandbox_off=False, flaky=False):
    """The plan merged serially and with each number of slots: the same outcome, the expected
    verdicts; the runs counted as the interface says. The outcomes, serial first."""
    results = []
    for n in (1, *slots):
        s = build(tmp_path / f"slots{n}", work, sandbox_off=sandbox_off)
        env = None
        if flaky:
            (tmp_path / f"flaky{n}").mkdir()
            env = {"FLAKY_DIR": str(tmp_path / f"flaky{n}")}
        data = ceremony(s, n, env)
        every_landed_commit_passed(s)
        results.append((n, outcome(s, data), data, s))
        print(f"--slots {n}: {data['wall']:.2f}s, {data['rounds']} rounds, {data['test_runs']} test runs, "
              f"{data['speculative_runs']} speculative, {data['wasted_runs']} wasted")  # fmt: skip
    (_, serial, first, s1), *parallel = results
    assert serial["verdicts"] == expected, evidence(s1, first)
    assert first["speculative_runs"] == 0 and first["wasted_runs"] == 0
    assert first["rounds"] == first["test_runs"] + first["acceptance_runs"]  # serial: a run, a round
    for n, got, data, s in parallel:
        assert got == serial, f"--slots {n} differs:\n{evidence(s, data)}\n--slots 1:\n{evidence(s1, first)}"
        # test_runs counts the integration runs the judge used: the serial ceremony's; the runs
        # made ahead of need include the unused ones (acceptance runs are not compared: serially
        # the final check runs the merged workers' tests in one run, with slots each on its own)
        assert data["test_runs"] == first["test_runs"], (n, data)
        made = data["test_runs"] + data["acceptance_runs"] + data["wasted_runs"]
        assert 0 <= data["wasted_runs"] <= data["speculative_runs"] <= made, (n, data)
        assert data["rounds"] <= first["rounds"]
        md = (s.paths.merge_dir / "REPORT.md").read_text()
        line = [x for x in md.splitlines() if "slot" in x and "round" in x]
        assert line and str(data["rounds"]) in line[0], md
    return [got for _, got, _, _ in results]


def plain(n, bad=()):
    """Workers W1..Wn each adding a file; those named in bad also add broken code."""
    return [(spec(f"W{i}"), {**new(f"W{i}"), **(BAD if f"W{i}" in bad else {})}) for i in range(1, n + 1)]


def test_no_breaking_worker(tmp_path):
    same_answer(tmp_path, plain(6), (4,), expected={f"W{i}": "MERGED" for i in range(1, 7)})


def test_one_worker_breaks_the_integration_test(tmp_path):
    expected = {f"W{i}": "MERGED" for i in range(1, 7)} | {"W3": "REVERTED"}
    serial, *_ = same_answer(tmp_path, plain(6, bad=["W3"]), (4, 9), expected=expected)
    assert serial["landed"] == ["W1", "W2", "W4", "W5", "W6"]


def test_three_of_eight_break_the_integration_test(tmp_path):
    bad = ["W2", "W5", "W7"]
    expected = {f"W{i}": "REVERTED" if f"W{i}" in bad else "MERGED" for i in range(1, 9)}
    serial, *_ = same_answer(tmp_path, plain(8, bad=bad), (4, 9), expected=expected)
    assert serial["why"]["W5"][3] == "integration"


def test_a_conflict_between_two_workers(tmp_path):
    work = plain(5)
    work[1] = (spec("W2"), {**new("W2"), "src/shared.txt": "one\nW2\nthree\n"})
    work[3] = (spec("W4"), {**new("W4"), "src/shared.txt": "one\nW4\nthree\n"})
    expected = {"W1": "MERGED", "W2": "MERGED", "W3": "MERGED", "W4": "CONFLICT", "W5": "MERGED"}
    serial, *_ = same_answer(tmp_path, work, (4,), expected=expected)
    assert serial["why"]["W4"][4:6] == (["src/shared.txt"], ["W2"])


def test_a_conflict_only_with_a_dropped_worker_is_no_conflict(tmp_path):
    work = plain(5)
    work[1] = (spec("W2"), {**new("W2"), **BAD, "src/shared.txt": "one\nW2\nthree\n"})  # dropped
    work[3] = (spec("W4"), {**new("W4"), "src/shared.txt": "one\nW4\nthree\n"})  # predicted to conflict
    expected = {"W1": "MERGED", "W2": "REVERTED", "W3": "MERGED", "W4": "MERGED", "W5": "MERGED"}
    same_answer(tmp_path, work, (4,), expected=expected)


def test_two_workers_green_alone_red_together_drop_the_later(tmp_path):
    work = plain(6)
    work[1] = (spec("W2"), {**new("W2"), "src/x.txt": "x\n"})
    work[4] = (spec("W5"), {**new("W5"), "src/y.txt": "y\n"})  # green on the base, red after W2
    expected = {f"W{i}": "MERGED" for i in range(1, 7)} | {"W5": "REVERTED"}
    same_answer(tmp_path, work, (4, 9), expected=expected)


def test_a_dependent_of_a_dropped_worker_is_skipped(tmp_path):
    work = [
        (spec("W1"), new("W1")),
        (spec("W2"), {**new("W2"), **BAD}),
        (spec("W3", depends_on=["W2"]), new("W3")),
        (spec("W4"), new("W4")),
        (spec("W5", depends_on=["W4"]), new("W5")),
        (spec("W6", depends_on=["W3"]), new("W6")),
    ]
    expected = {
        "W1": "MERGED",
        "W2": "REVERTED",
        "W3": "SKIPPED",
        "W4": "MERGED",
        "W5": "MERGED",
        "W6": "SKIPPED",
    }
    serial, *_ = same_answer(tmp_path, work, (4,), expected=expected)
    assert "W2" in serial["why"]["W3"][-1] and "W3" in serial["why"]["W6"][-1]


def test_a_failing_acceptance_test_and_one_a_later_merge_breaks(tmp_path):
    work = [
        (spec("W1"), new("W1")),
        (spec("W2", test="grep -q two src/shared.txt"), new("W2")),  # passes, until W5's merge
        (spec("W3", test="test -f src/never.txt"), new("W3")),  # fails on its merged candidate
        (spec("W4"), new("W4")),
        (spec("W5"), {**new("W5"), "src/shared.txt": "one\n"}),  # breaks W2's test: the final check drops it
        (spec("W6"), new("W6")),
    ]
    expected = {
        "W1": "MERGED",
        "W2": "MERGED",
        "W3": "REVERTED",
        "W4": "MERGED",
        "W5": "REVERTED",
        "W6": "MERGED",
    }
    serial, *_ = same_answer(tmp_path, work, (4,), expected=expected)
    assert serial["why"]["W3"][3] == "acceptance" and serial["why"]["W5"][7] == "W2"


def test_groups_land_or_drop_as_one_unit(tmp_path):
    work = [
        (spec("W1"), new("W1")),
        (spec("A", group="pair"), {"src/half_a.txt": "a\n"}),  # red alone, green with B
        (spec("B", group="pair"), {"src/half_b.txt": "b\n"}),
        (spec("W2"), new("W2")),
        (spec("C", group="bad"), new("C")),
        (spec("D", group="bad"), {**new("D"), **BAD}),  # breaks: its group is dropped whole
        (spec("W3"), new("W3")),
    ]
    expected = {"W1": "MERGED", "A": "MERGED", "B": "MERGED", "W2": "MERGED", "C": "REVERTED", "D": "REVERTED",
                "W3": "MERGED"}  # fmt: skip
    serial, *_ = same_answer(tmp_path, work, (4,), expected=expected)
    assert serial["landed"] == ["W1", "A", "B", "W2", "W3"]


def test_a_flaky_test_passes_on_retry_in_both(tmp_path):
    work = plain(5)
    work[1] = (spec("W2"), {**new("W2"), "src/flaky.txt": "f\n"})  # every tree with it is red once
    expected = {f"W{i}": "MERGED" for i in range(1, 6)}
    serial, *_ = same_answer(tmp_path, work, (4,), expected=expected, sandbox_off=True, flaky=True)
    assert serial["why"]["W2"] == ("MERGED", True, True) and serial["why"]["W1"] == ("MERGED", False, True)


def test_nine_slots_take_two_rounds_where_serial_takes_one_per_run(tmp_path):
    work = plain(8, bad=["W4"])
    runs = {}
    for n in (1, 9):
        s = build(tmp_path / f"slots{n}", work, sleep="1")
        runs[n] = ceremony(s, n)
        runs[n]["outcome"] = outcome(s, runs[n])
        every_landed_commit_passed(s)
    serial, fast = runs[1], runs[9]
    print(f"serial: {serial['wall']:.1f}s, {serial['rounds']} rounds, {serial['test_runs']} test runs; "
          f"9 slots: {fast['wall']:.1f}s, {fast['rounds']} rounds, {fast['test_runs']} test runs "
          f"({fast['wasted_runs']} wasted); ratio {serial['wall'] / fast['wall']:.1f}x")  # fmt: skip
    assert fast["outcome"] == serial["outcome"]
    assert serial["outcome"]["verdicts"]["W4"] == "REVERTED"
    assert serial["test_runs"] == 1 + 8 + 1  # the baseline, each merge, the retry of W4's
    assert fast["rounds"] == 2


def test_merge_slots_in_the_config_and_the_default(tmp_path):
    s = build(tmp_path / "config", plain(2))
    (s.repo / ".boss/config.yaml").write_text("merge_slots: 3\n")
    data = json.loads(boss("merge", "p", "--json", cwd=s.repo).stdout)
    assert data["slots"] == 3 and {w["verdict"] for w in data["workers"]} == {"MERGED"}
    s = build(tmp_path / "default", plain(2))
    (s.repo / ".boss/config.yaml").write_text("merge_slots: 0\n")  # 0, as no setting: the cores
    data = json.loads(boss("merge", "p", "--json", cwd=s.repo).stdout)
    assert data["slots"] == max(2, os.cpu_count() or 1)
    s = build(tmp_path / "flag", plain(2))  # the option wins over the config
    (s.repo / ".boss/config.yaml").write_text("merge_slots: 3\n")
    assert ceremony(s, 1)["slots"] == 1


@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_slots_must_be_a_whole_number_of_at_least_one(tmp_path, value):
    s = build(tmp_path / "repo", plain(1))
    before = s.main()
    proc = boss("merge", "p", "--slots", value, cwd=s.repo, check=2)
    assert "--slots" in proc.stderr and s.main() == before


def test_a_bad_merge_slots_in_the_config_names_the_file_and_field(tmp_path):
    s = build(tmp_path / "repo", plain(1))
    (s.repo / ".boss/config.yaml").write_text("merge_slots: -1\n")
    proc = boss("merge", "p", cwd=s.repo, check=2)
    assert (
        "config.yaml" in proc.stderr and "merge_slots" in proc.stderr and len(proc.stderr.splitlines()) <= 2
    )


def test_nine_slot_worktrees_made_at_once_ceremony_after_ceremony(tmp_path):
    """Nine slots start together, each making its worktree: git must never see one half made
    ("fatal: failed to read .git/worktrees/_slot2/commondir"). A race, so several ceremonies."""
    expected = {f"W{i}": "MERGED" for i in range(1, 9)} | {"W5": "REVERTED"}
    for k in range(4):
        s = build(tmp_path / f"repo{k}", plain(8, bad=["W5"]), sleep="0")
        data = ceremony(s, 9)
        assert outcome(s, data)["verdicts"] == expected, evidence(s, data)


def test_the_slots_are_seen_as_they_run_and_in_the_report(tmp_path):
    s = build(tmp_path / "seen", plain(3, bad=["W2"]))
    proc = boss("merge", "p", "--slots", "3", cwd=s.repo, check=1)
    lines = proc.stderr.splitlines()
    started = [line for line in lines if line.startswith("slot ")]
    assert any(line.endswith(": baseline") for line in started), lines
    assert any("candidate 1 (W1)" in line for line in started), lines
    assert {line.split(":")[0] for line in started} <= {"slot 1", "slot 2", "slot 3"}
    report = (s.paths.merge_dir / "REPORT.md").read_text()
    assert "- Test slots: 3;" in report and "run(s) made ahead of need" in report
    section = report.split("section Test slots (3)", 1)[1].split("```", 1)[0]
    bars = [line for line in section.splitlines() if line.strip().startswith("slot ")]
    assert len(bars) == len(started)  # every run a slot made is a bar
    assert any(":crit, " in bar for bar in bars)  # W2's red runs
    serial = build(tmp_path / "serial", plain(3, bad=["W2"]))
    boss("merge", "p", "--slots", "1", cwd=serial.repo, check=1)
    assert "section Test slots" not in (serial.paths.merge_dir / "REPORT.md").read_text()


# Red when a file an earlier run left is there; the copied .env and what setup made must be there.
PLANT = "test ! -e conftest.py && test -f .env && test -f built/done && echo planted > conftest.py"


def test_what_a_test_run_leaves_never_reaches_the_next_run(tmp_path):
    """A run that leaves an untracked file in its worktree (a `conftest.py`, say): the next run
    there, another candidate's, never sees it, serially (the integration worktree) and in slots;
    ignored files, the copied .env and what setup made, stay for it."""
    for slots in (1, 3):
        s = make_scenario(tmp_path / f"slots{slots}", [w for w, _ in plain(5)], integration_test=PLANT,
                          files={**FILES, ".gitignore": "built/\n"})  # fmt: skip
        raw = yaml.safe_load(s.paths.manifest.read_text())
        raw["setup"], raw["copy"] = "mkdir -p built && touch built/done", [".env"]
        s.paths.manifest.write_text(yaml.safe_dump(raw))
        (s.repo / ".env").write_text("TOKEN=local\n")
        for w, files in plain(5):
            s.work(w["id"], files)
        data = ceremony(s, slots)
        verdicts = {w["id"]: w["verdict"] for w in data["workers"]}
        assert verdicts == {f"W{i}": "MERGED" for i in range(1, 6)}, evidence(s, data)
        assert not any(w["retried"] for w in data["workers"]), evidence(s, data)
