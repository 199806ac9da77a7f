"""A plan changed under workers that already ran: their results are reset, never merged stale."""

from __future__ import annotations

import json
import os
import time

import pytest
from conftest import boss, make_repo, worker_cmd
from worker_helpers import make_plan, worker

from boss.core import status as st
from boss.core.config import load_config
from boss.core.decisions import decision_path
from boss.core.errors import StateError
from boss.core.manifest import from_dict, load, save, to_dict
from boss.plan import definitions
from boss.plan.render import render_plan


@pytest.fixture
def repo(tmp_path, monkeypatch):
    r = make_repo(tmp_path / "r", {"README.md": "r\n", "src/keep.txt": "k\n"})
    monkeypatch.chdir(r)
    return r


def finished(paths, wid, state="SUCCESS", pid=0):
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    st.write(paths.status(wid), st.Status(plan="p", id=wid, branch=f"b/{wid}", state=state, pid=pid,
                                          heartbeat=now, started_at=now))  # fmt: skip


def edit(paths, change):
    data = to_dict(load(paths.manifest))
    change(data)
    m = from_dict(data, "manifest.yaml")
    save(m, paths.manifest)
    return render_plan(paths, m, load_config(paths.repo))


def three(repo):
    return make_plan(repo, [worker("W1"), worker("W2", depends_on=["W1"], test="test -f src/two"),
                            worker("W3", test="test -f src/three")])  # fmt: skip


def test_a_changed_test_resets_the_worker_and_its_dependents(repo):
    paths, _ = three(repo)
    for wid in ("W1", "W2", "W3"):
        finished(paths, wid)
    paths.blocker("W1").write_text("old report\n")
    decision_path(paths, "W3").parent.mkdir(parents=True, exist_ok=True)
    decision_path(paths, "W3").write_text("{}")
    result = edit(paths, lambda d: d["workers"][0].update(test="test -f src/other"))
    assert result.reset == [
        "W1: its test changed since it ran (SUCCESS); its result is dropped, it runs again",
        "W2: its dependency W1 changed since it ran (SUCCESS); its result is dropped, it runs again",
    ]
    assert not paths.status("W1").exists() and not paths.blocker("W1").exists()
    assert not paths.status("W2").exists()
    assert st.read(paths.status("W3")).state == "SUCCESS"  # untouched
    assert decision_path(paths, "W3").exists()


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        (lambda d: d["workers"][2].update(scope=["^lib/"]), "scope"),
        (lambda d: d["workers"][2].update(instructions="Other work."), "instructions"),
        (lambda d: d["workers"][2].update(depends_on=["W1"]), "depends_on"),
        (lambda d: d["workers"][2].update(write_test=True, test="test -f src/three"), "write_test"),
        (lambda d: d["workers"][2].update(branch="feat/other"), "branch"),
    ],
)
def test_each_field_of_the_definition_counts(repo, change, fields):
    paths, _ = three(repo)
    finished(paths, "W3", "FAILED")
    decision_path(paths, "W3").parent.mkdir(parents=True, exist_ok=True)
    decision_path(paths, "W3").write_text("{}")
    result = edit(paths, change)
    assert result.reset == [
        f"W3: its {fields} changed since it ran (FAILED); its result is dropped, it runs again"
    ]
    assert not decision_path(paths, "W3").exists()


def test_a_new_base_resets_every_worker_that_ran(repo):
    paths, _ = three(repo)
    finished(paths, "W1")
    finished(paths, "W3")
    result = edit(paths, lambda d: d.update(base_commit=d["base_commit"][:7]))
    assert [line.split(":")[0] for line in result.reset] == ["W1", "W3"]
    assert "its base changed" in result.reset[0]


def test_titles_settings_and_new_workers_reset_nothing(repo):
    paths, _ = three(repo)
    for wid in ("W1", "W2", "W3"):
        finished(paths, wid)

    def change(d):
        d["workers"][0]["title"] = "A new title"
        d["workers"][1]["max_iterations"] = 9
        d["defaults"]["agent_timeout"] = 60
        d["workers"].append(worker("W4", test="test -f src/four"))

    assert edit(paths, change).reset == []
    assert all(st.read(paths.status(w)).state == "SUCCESS" for w in ("W1", "W2", "W3"))


def test_a_plan_rendered_by_an_older_boss_resets_nothing(repo):
    paths, _ = three(repo)
    finished(paths, "W1")
    index = json.loads(paths.rendered_index.read_text())
    del index["workers"]
    paths.rendered_index.write_text(json.dumps(index))
    assert edit(paths, lambda d: d["workers"][0].update(test="true")).reset == []
    assert definitions.changed(None, load(paths.manifest)) == {}


def test_a_crashed_workers_status_is_kept_for_its_rerun(repo):
    paths, _ = three(repo)
    finished(paths, "W1", "RUNNING", pid=2**22 + 1)  # no such process: it crashed
    paths.blocker("W1").write_text("old report\n")
    assert edit(paths, lambda d: d["workers"][0].update(test="test -f src/other")).reset == [
        "W1: its test changed since it ran (CRASHED); its result is dropped, it runs again"
    ]
    assert st.read(paths.status("W1")).state == "RUNNING"  # reads CRASHED; its rerun reaps its agent
    assert not paths.blocker("W1").exists()


def test_a_running_worker_is_not_changed_under_it(repo):
    paths, _ = three(repo)
    finished(paths, "W1", "RUNNING", pid=os.getpid())
    before = paths.run_script.read_text()
    with pytest.raises(StateError, match=r"worker W1 of plan p is running and its test changed; stop it"):
        edit(paths, lambda d: d["workers"][0].update(test="test -f src/other"))
    assert st.read(paths.status("W1")).state == "RUNNING"
    assert paths.run_script.read_text() == before


def test_boss_plan_force_from_markdown_end_to_end(repo):
    plan = repo.parent / "plan.md"
    text = """# Add a thing

Make src/thing.

- agent: scripted

## W1: Thing
- scope: ^src/
- test: test -f src/thing

```agent-script
[{"write": {"src/thing": "1"}}]
```
"""
    plan.write_text(text)
    boss("plan", "--from", str(plan), cwd=repo)
    worker_cmd("run", "add-a-thing", "W1", cwd=repo)
    assert json.loads(boss("status", "--json", cwd=repo).stdout)["workers"][0]["state"] == "SUCCESS"
    plan.write_text(text.replace("test -f src/thing", "grep -q 2 src/thing"))
    out = boss("plan", "--from", str(plan), "--force", cwd=repo).stdout
    assert "W1: its test changed since it ran (SUCCESS); its result is dropped, it runs again" in out
    assert json.loads(boss("status", "--json", cwd=repo).stdout)["workers"][0]["state"] == "PENDING"
    dry = boss("merge", "--dry-run", cwd=repo, check=None)
    assert "W1         PENDING      not started" in dry.stdout
    assert "Merge order: nothing to merge" in dry.stdout
