"""Corrupt state on disk, through the command lines: one `Error:` line naming the file and the
field (exit 2), or the broken worker shown CORRUPT while the rest of the plan still reads."""

from __future__ import annotations

import json

import pytest
from conftest import boss, git, make_repo, worker_cmd
from worker_helpers import make_plan, worker

from boss.core import status as st
from boss.core import yamlio
from boss.core.errors import InputError
from boss.core.statusview import CORRUPT

CORRUPTIONS = {
    "not UTF-8": (b'{"plan": "p", "id": "W2", "state": "FAILED\xff"}', "byte 42: not UTF-8 text"),
    "not JSON": (b'{"plan": "p", "id": "W2", "state": ', "not valid JSON"),
    "unknown state": (b'{"plan": "p", "id": "W2", "state": "DONE"}', "field state: 'DONE' is not one of"),
    "wrong type": (
        b'{"plan": "p", "id": "W2", "iteration": "3"}',
        "field iteration: '3' is not a whole number",
    ),
    "wrong element": (b'{"plan": "p", "id": "W2", "violations": [1]}', "field violations: must be a list"),
    "huge pid": (
        b'{"plan": "p", "id": "W2", "pid": 99999999999999999999}',
        "field pid: 99999999999999999999 is",
    ),
    "huge number": (b'{"plan": "p", "id": "W2", "pid": ' + b"9" * 5000 + b"}", "not valid JSON"),
    "deep": (b"[" * 100_000, "not valid JSON"),
    "NUL bytes": (b"\0" * 64, "not valid JSON"),
    "a list": (b"[1, 2]", "not a status object"),
}


@pytest.fixture
def plan(tmp_path, monkeypatch):
    """A plan of three workers: W1 SUCCESS, W2 (to be corrupted), W3 FAILED."""
    repo = make_repo(tmp_path / "repo", {"src/a.py": "x = 1\n", "README.md": "r\n"})
    monkeypatch.chdir(repo)
    paths, _ = make_plan(repo, [worker("W1"), worker("W2"), worker("W3")])
    st.write(paths.status("W1"), st.Status(plan="p", id="W1", state=st.SUCCESS))
    st.write(paths.status("W3"), st.Status(plan="p", id="W3", state=st.FAILED, reason="the test failed"))
    return paths


def one_error(proc, *needles: str) -> str:
    """The one `Error:` line of a failed command, which names what it must."""
    lines = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, proc.stderr
    assert "internal error" not in lines[0] and "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_the_reader_names_the_file_and_the_problem(tmp_path, case):
    data, problem = CORRUPTIONS[case]
    path = tmp_path / "status.json"
    path.write_bytes(data)
    with pytest.raises(InputError) as e:
        st.read(path)
    assert str(e.value).startswith(f"{path}: ") and problem in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("case", ["not UTF-8", "unknown state", "deep"])
def test_boss_status_shows_the_corrupt_worker_and_the_others(plan, case):
    plan.status("W2").write_bytes(CORRUPTIONS[case][0])
    proc = boss("status", plan.plan, check=2)  # the table, and the error: exit 2
    one_error(proc, ".boss/plans/p/workers/W2/status.json: ", CORRUPTIONS[case][1])
    rows = {line.split()[0]: line for line in proc.stdout.splitlines()[2:]}
    assert rows["W1"].split()[1] == "SUCCESS" and rows["W3"].split()[1] == "FAILED"
    assert rows["W2"].split()[1] == CORRUPT and "workers/W2/status.json: " in rows["W2"]
    assert "1 CORRUPT" in proc.stdout.splitlines()[0]
    data = json.loads(boss("status", plan.plan, "--json", check=2).stdout)
    w2 = next(w for w in data["workers"] if w["id"] == "W2")
    assert w2["state"] == CORRUPT and CORRUPTIONS[case][1] in w2["reason"]


def test_run_workers_summary_and_states_show_it_corrupt(plan):
    plan.status("W2").write_bytes(CORRUPTIONS["wrong type"][0])
    states = worker_cmd("states", plan.plan).stdout.split("\n")
    assert "W2 CORRUPT" in states and "W1 SUCCESS" in states
    summary = worker_cmd("states", plan.plan, "--summary").stdout
    assert "W2         CORRUPT: " in summary and "field iteration" in summary and "1 SUCCESS" in summary


def test_merge_clean_and_retry_refuse_with_one_error_line(plan):
    plan.status("W2").write_bytes(CORRUPTIONS["not UTF-8"][0])
    for args in (("merge", plan.plan, "--dry-run"), ("merge", plan.plan), ("clean", plan.plan, "--dry-run")):
        proc = boss(*args, check=2)
        one_error(proc, "W2/status.json", "not UTF-8")
    # W1's retry resets its dependents; here none, and W2's file is not W1's business.
    plan.status("W1").write_bytes(CORRUPTIONS["unknown state"][0])
    proc = boss("retry", "W1", "--plan", plan.plan, check=0)
    assert "W1: SUCCESS" in proc.stdout
    assert st.read(plan.status("W1")).state == st.SUCCESS  # the run wrote a new one


def test_a_worker_whose_dependency_status_is_corrupt_stops_with_one_error(tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "repo", {"src/a.py": "x = 1\n", "README.md": "r\n"})
    monkeypatch.chdir(repo)
    paths, _ = make_plan(repo, [worker("W1"), worker("W2", depends_on=["W1"])])
    paths.status("W1").write_bytes(b'{"plan": "p", "id": "W1", "state": 7}')
    proc = worker_cmd("run", paths.plan, "W2", check=2)
    one_error(proc, "W1/status.json", "field state")


MANIFESTS = {
    "duplicate key": (
        lambda text: text.replace("  title: Work W1\n", "  title: Work W1\n  title: Other\n", 1),
        ("manifest.yaml", "duplicate key 'title'"),
    ),
    "NUL in a test command": (
        lambda text: text.replace("test: test -f src/done.txt", 'test: "test -f src/done.txt\\0"', 1),
        ("manifest.yaml", "worker W1 field test", "NUL byte"),
    ),
    "escape in a scope": (
        lambda text: text.replace("- ^src/", '- "^src/\\e[2J"', 1),
        ("manifest.yaml", "worker W1 field scope", "control character"),
    ),
    "huge timeout": (
        lambda text: text.replace("test_timeout: 600", "test_timeout: " + "9" * 40, 1),
        ("manifest.yaml", "defaults field test_timeout"),
    ),
    "over-long number": (
        lambda text: text.replace("max_strategies: 2", "max_strategies: " + "9" * 5000, 1),
        ("manifest.yaml", "Exceeds the limit"),
    ),
    "not UTF-8": (lambda text: text + "# \udcff\n", ("manifest.yaml", "not UTF-8")),
}


@pytest.mark.parametrize("case", sorted(MANIFESTS))
def test_boss_status_on_a_corrupt_manifest_is_one_error(plan, case):
    mutate, needles = MANIFESTS[case]
    text = plan.manifest.read_text()
    changed = mutate(text)
    assert changed != text
    plan.manifest.write_bytes(changed.encode("utf-8", errors="surrogateescape"))
    for args in (("status", plan.plan), ("validate", plan.plan)):
        one_error(boss(*args, check=2), *needles)  # the manifest's error: no table
    one_error(worker_cmd("run", plan.plan, "W1", check=2), *needles)


def test_a_corrupt_config_is_one_error(plan):
    config = plan.repo / ".boss" / "config.yaml"
    cases = {
        "jobs: 2\njobs: 3\n": "duplicate key 'jobs'",
        'agents:\n  x:\n    command: "run\\0"\n': "agent x: field command: contains a NUL byte",
        "agents:\n  x:\n    command: run\n    env: {A=B: 1}\n": "agent x: field env: must map variable names",
        "log_cap_mb: 0\n": "field log_cap_mb: must be a whole number >= 1",
        "planner_timeout: 99999999999999999999\n": "field planner_timeout: must be at most",
        "1: x\nzz: y\n": "field 1: unknown key",
    }
    for text, problem in cases.items():
        config.write_text(text)
        one_error(boss("status", plan.plan, check=2), "config.yaml", problem)


MARKDOWN = "# Demo\n\nDo it.\n\n## W1: First\n\n- scope: ^src/\n- test: true\n\nWork.\n"


@pytest.mark.parametrize(
    ("data", "needles"),
    [
        (MARKDOWN.replace("Work.", "Wo\0rk.").encode(), ("PLAN.md:10: plan: contains a NUL byte",)),
        (MARKDOWN.replace("- test: true", "- test: true\x1b]0;x\x07").encode(), ("PLAN.md:8:", "control char")),
        (MARKDOWN.encode() + b"\xff\n", ("PLAN.md:11: plan: byte", "not UTF-8")),
        (MARKDOWN.replace("- test: true", "- test: true\n- max iterations: " + "9" * 5000).encode(),
         ("PLAN.md", "max_iterations", "from 1 to 100")),
    ],
)  # fmt: skip
def test_boss_plan_from_a_corrupt_markdown_file_is_one_error(tmp_path, monkeypatch, data, needles):
    repo = make_repo(tmp_path / "repo")
    monkeypatch.chdir(repo)
    (repo / "PLAN.md").write_bytes(data)
    one_error(boss("plan", "--from", "PLAN.md", check=2), *needles)
    assert not (repo / ".boss" / "plans").exists()


def test_a_markdown_plan_with_tabs_and_crlf_still_reads(tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "repo")
    monkeypatch.chdir(repo)
    text = MARKDOWN.replace("Work.", "Work:\n\tindented.").replace("\n", "\r\n")
    (repo / "PLAN.md").write_bytes(text.encode())
    boss("plan", "--from", "PLAN.md")
    git(repo, "status")
    assert (
        "indented"
        in yamlio.load_file(next((repo / ".boss" / "plans").iterdir()) / "manifest.yaml")["workers"][0][
            "instructions"
        ]
    )


def test_a_corrupt_journal_and_policy_name_their_files(plan):
    journal = plan.merge_dir / "journal.json"
    journal.parent.mkdir(parents=True, exist_ok=True)
    journal.write_bytes(b'{"version": 1, "plan": "p", "base": "main", "base_start": "x", '
                        b'"integration_branch": "b", "worktree": "w", "records": [{"id": 5}]}')  # fmt: skip
    proc = boss("merge", plan.plan, check=1)
    one_error(proc, "journal.json", "records[0] field id")
    journal.unlink()
    policy = plan.repo / ".boss" / "policy.yaml"
    policy.write_text("version: 1\nrules: []\nrules: []\n")
    proc = worker_cmd("classify", "--", "ls", check=2)
    one_error(proc, "policy.yaml", "line 3", "duplicate key 'rules' (first on line 2)")


def test_a_corrupt_state_log_reads_around_the_bad_lines(plan):
    log = plan.log
    good = log.read_bytes() if log.is_file() else b""
    log.write_bytes(good + b"\xff\xfe garbage | | \0\n" + b"x" * 10_000 + b"\n")
    proc = boss("log", plan.plan)
    assert "Traceback" not in proc.stderr
