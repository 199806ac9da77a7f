"""`boss render` after a worker was removed from the manifest: it is no longer rendered or run,
its generated CONTEXT.md goes, its run's records stay, and the render says so once."""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest
from conftest import boss, make_repo
from worker_helpers import make_plan, worker

from boss.core import status as st
from boss.core.manifest import from_dict, load, save, to_dict


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
    save(from_dict(data, "manifest.yaml"), paths.manifest)


def without(wid):
    return lambda d: d.update(workers=[w for w in d["workers"] if w["id"] != wid])


def three(repo):
    paths, _ = make_plan(repo, [worker("W1"), worker("W2", test="test -f src/two"),
                                worker("W3", test="test -f src/three")])  # fmt: skip
    boss("render", "p", cwd=repo)
    return paths


def test_a_removed_worker_is_no_longer_rendered_and_the_render_says_so_once(repo):
    paths = three(repo)
    finished(paths, "W3")
    edit(paths, without("W3"))
    res = boss("render", "p", cwd=repo)
    assert (
        "W3: removed from the manifest: no longer rendered or run; its run's records stay in workers/W3/\n"
        in res.stdout
    )
    assert not paths.context("W3").exists() and paths.context("W1").exists()
    assert st.read(paths.status("W3")).state == "SUCCESS"  # a record, kept
    assert "W3" not in paths.plan_md.read_text() and "W3" not in paths.run_script.read_text()
    assert "W3" not in boss("status", "p", cwd=repo).stdout
    again = boss("render", "p", cwd=repo)
    assert "removed" not in again.stdout
    # a worker that never ran leaves nothing behind
    edit(paths, without("W2"))
    res = boss("render", "p", cwd=repo)
    assert "W2: removed from the manifest: no longer rendered or run\n" in res.stdout
    assert not paths.worker_dir("W2").exists()


def test_a_worker_added_back_is_judged_against_the_definition_it_ran_with(repo):
    paths = three(repo)
    finished(paths, "W2")
    finished(paths, "W3")
    raw = to_dict(load(paths.manifest))
    edit(paths, without("W2"))
    edit(paths, without("W3"))
    boss("render", "p", cwd=repo)
    w2, w3 = (next(w for w in raw["workers"] if w["id"] == wid) for wid in ("W2", "W3"))
    edit(paths, lambda d: d["workers"].extend([w2, {**w3, "test": "test -f src/other"}]))
    res = boss("render", "p", cwd=repo)
    assert "W3: its test changed since it ran (SUCCESS); its result is dropped, it runs again" in res.stdout
    assert "W2:" not in res.stdout  # back as it ran: its result holds
    assert st.read(paths.status("W2")).state == "SUCCESS" and not paths.status("W3").exists()
    assert paths.context("W2").exists() and paths.context("W3").exists()


def test_an_edited_context_is_kept_and_a_running_worker_cannot_be_removed(repo):
    paths = three(repo)
    paths.context("W2").write_text("my notes\n")
    finished(paths, "W3", "RUNNING", pid=os.getpid())
    edit(paths, without("W3"))
    res = boss("render", "p", cwd=repo, check=None)
    assert res.returncode != 0
    assert "worker W3 of plan p is running and it was removed from the manifest; stop it" in res.stderr
    assert paths.context("W3").exists()
    edit(paths, without("W2"))
    finished(paths, "W3", "FAILED")
    res = boss("render", "p", cwd=repo)
    assert (
        "W2: removed from the manifest: no longer rendered or run, its CONTEXT.md (edited by hand) is kept"
        in res.stdout
    )
    assert paths.context("W2").read_text() == "my notes\n" and not paths.context("W3").exists()


def test_an_index_entry_that_names_no_worker_folder_removes_nothing(repo):
    paths = three(repo)
    planted = paths.root / "CONTEXT.md"
    planted.write_text("not a worker's\n")
    index = json.loads(paths.rendered_index.read_text())
    index["files"]["workers/../CONTEXT.md"] = hashlib.sha256(planted.read_bytes()).hexdigest()
    index["workers"][".."] = {}
    paths.rendered_index.write_text(json.dumps(index))
    res = boss("render", "p", cwd=repo)
    assert "removed" not in res.stdout and planted.read_text() == "not a worker's\n"
