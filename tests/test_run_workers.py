"""run_workers.sh: DAG scheduling, -j, --only, skips, resume, Ctrl-C, hostile strings (SPEC 7)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import git, make_repo
from worker_helpers import make_plan, run_script, worker

from boss.core import statelog
from boss.core import status as st


@pytest.fixture
def repo(tmp_path, monkeypatch):
    r = make_repo(tmp_path / "r", {"README.md": "r\n", "src/keep.txt": "k\n"})
    monkeypatch.chdir(r)
    return r


def state(paths, wid):
    s = st.read(paths.status(wid))
    return s.state if s else None


def first(paths, wid, action):
    for e in statelog.read(paths.log):
        if e.worker == wid and e.action == action:
            return e
    return None


def agent_runs(paths, wid):
    return sum(1 for e in statelog.read(paths.log) if e.worker == wid and e.action == "agent")


def sleeper(wid, seconds, **kw):
    return worker(
        wid, test=f"test -f src/{wid}.txt", steps=[{"sleep": seconds, "write": {f"src/{wid}.txt": wid}}], **kw
    )


def test_generated_script_passes_bash_n_and_shellcheck(repo):
    paths, _ = make_plan(repo, [worker("W1"), worker("W2", depends_on=["W1"])])
    subprocess.run(["bash", "-n", str(paths.run_script)], check=True)
    res = subprocess.run(["shellcheck", "-x", str(paths.run_script)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout
    assert os.access(paths.run_script, os.X_OK)


def test_runs_in_parallel_and_exits_0(repo):
    paths, _ = make_plan(repo, [sleeper("W1", 1.5), sleeper("W2", 1.5), sleeper("W3", 1.5)])
    res = run_script(paths, "-j", "3")
    assert res.returncode == 0, res.stdout + res.stderr
    assert all(state(paths, w) == "SUCCESS" for w in ("W1", "W2", "W3"))
    # In parallel: every worker started before any agent ended (serially, W2 starts after W1's
    # agent). The log's order, not a time bound: tests beside this one (xdist) slow it down.
    events = statelog.read(paths.log)
    starts = [i for i, e in enumerate(events) if e.action == "start" and e.worker in ("W1", "W2", "W3")]
    agents = [i for i, e in enumerate(events) if e.action == "agent"]
    assert len(starts) == 3 and agents and max(starts) < min(agents), [(e.worker, e.action) for e in events]
    assert "Next: boss merge" in res.stdout


def test_the_summary_names_pending_approval_requests_of_a_worker_that_succeeded(repo):
    from boss.core import approvals

    paths, _ = make_plan(repo, [worker("W1")])
    approvals.request(paths.approvals_dir, plan="p", worker="W1", command="rm -rf build",
                      reason="recursive deletion", rule="recursive-delete")  # fmt: skip
    res = run_script(paths)
    assert res.returncode == 0, res.stdout + res.stderr
    assert state(paths, "W1") == "SUCCESS"
    assert "W1: 1 approval request(s) pending (R1): boss approvals, then boss approve ID" in res.stdout
    assert "Next: boss merge" in res.stdout


def test_dependent_starts_when_its_dependency_succeeds_not_by_wave(repo):
    paths, _ = make_plan(repo, [sleeper("W1", 0.1), sleeper("W2", 3), sleeper("W3", 0.1, depends_on=["W1"])])
    res = run_script(paths, "-j", "3")
    assert res.returncode == 0, res.stdout + res.stderr
    w3_start = first(paths, "W3", "start").time
    w2_end = first(paths, "W2", "end").time
    assert w3_start <= w2_end
    events = [e for e in statelog.read(paths.log) if e.action in ("start", "end")]
    order = [(e.worker, e.action) for e in events]
    assert order.index(("W3", "start")) < order.index(("W2", "end"))


def test_jobs_1_runs_one_at_a_time(repo):
    paths, _ = make_plan(repo, [sleeper("W1", 0.5), sleeper("W2", 0.5)])
    assert run_script(paths, "-j", "1").returncode == 0
    e = [(x.worker, x.action) for x in statelog.read(paths.log) if x.action in ("start", "end")]
    assert e == [("W1", "start"), ("W1", "end"), ("W2", "start"), ("W2", "end")]


def test_dependents_of_a_failed_worker_are_skipped_with_reason(repo):
    bad = worker("W1", test="test -f src/never.txt", max_iterations=1, max_strategies=1)
    paths, _ = make_plan(
        repo, [bad, worker("W2", depends_on=["W1"]), worker("W3", depends_on=["W2"]), sleeper("W4", 0)]
    )
    res = run_script(paths)
    assert res.returncode == 1
    assert state(paths, "W1") == "FAILED"
    assert state(paths, "W4") == "SUCCESS"
    assert state(paths, "W2") == "SKIPPED"
    assert "dependency W1 ended FAILED" in st.read(paths.status("W2")).reason
    assert state(paths, "W3") == "SKIPPED"
    assert "dependency W2 ended SKIPPED" in st.read(paths.status("W3")).reason


def test_only_runs_the_named_workers(repo):
    paths, _ = make_plan(repo, [sleeper("W1", 0), sleeper("W2", 0), sleeper("W3", 0, depends_on=["W2"])])
    assert run_script(paths, "--only", "W1").returncode == 0
    assert state(paths, "W1") == "SUCCESS" and state(paths, "W2") is None
    res = run_script(paths, "--only", "W3")
    assert res.returncode == 1
    assert state(paths, "W3") == "SKIPPED"
    assert run_script(paths, "--only", "W2,W3").returncode == 0
    assert state(paths, "W3") == "SUCCESS"


def test_bad_usage_exits_2(repo):
    paths, _ = make_plan(repo, [worker("W1")])
    for args, why in [
        (["-j", "zero"], "-j needs a whole number of at least 1, not 'zero'"),
        (["-j0"], "-j needs a whole number of at least 1, not '0'"),
        (["--bogus"], "unknown argument '--bogus'"),
        (["--only", ""], "--only needs worker ids (--only W1,W2), not an empty list"),
        (["--only=,"], "--only needs worker ids"),
        (["--only"], "--only needs worker ids"),
    ]:
        res = run_script(paths, *args)
        assert res.returncode == 2, args
        assert res.stderr.startswith(f"Error: run_workers.sh: {why}"), (args, res.stderr)
        assert "usage: bash run_workers.sh" in res.stderr
    res = run_script(paths, "--only", "NOPE")
    assert res.returncode == 2 and "no worker 'NOPE'" in res.stderr
    assert state(paths, "W1") is None
    assert run_script(paths, "--only", "W1,").returncode == 0


def test_rerun_resumes_keeping_successes(repo):
    flaky = worker(
        "W2",
        test="test -f src/W2.txt",
        max_iterations=1,
        max_strategies=1,
        steps=[{"run": "test -f ../go && echo W2 > src/W2.txt || true"}],
    )
    paths, _ = make_plan(repo, [sleeper("W1", 0), flaky, worker("W3", depends_on=["W2"])])
    assert run_script(paths).returncode == 1
    assert [state(paths, w) for w in ("W1", "W2", "W3")] == ["SUCCESS", "FAILED", "SKIPPED"]
    (paths.worktree("W2").parent / "go").write_text("")
    assert run_script(paths).returncode == 0
    assert [state(paths, w) for w in ("W1", "W2", "W3")] == ["SUCCESS"] * 3
    assert agent_runs(paths, "W1") == 1  # kept, not re-run
    assert agent_runs(paths, "W2") == 2


def test_ctrl_c_stops_every_worker_and_leaves_true_statuses(repo, monkeypatch):
    monkeypatch.setenv("BOSS_SANDBOX", "off")  # host pids, written beside the worktrees
    paths, _ = make_plan(
        repo,
        [
            worker("W1", steps=[{"run": "echo $$ >> ../pids; sleep 60"}], agent_timeout=120),
            worker("W2", steps=[{"run": "echo $$ >> ../pids; sleep 60"}], agent_timeout=120),
            worker("W3", depends_on=["W1"]),
        ],
    )
    proc = subprocess.Popen(
        ["bash", str(paths.run_script), "-j", "2"],
        cwd=repo,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pids = paths.worktree("W1").parent / "pids"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not pids.exists() or len(pids.read_text().split()) < 2):
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    for wid in ("W1", "W2"):
        s = st.read(paths.status(wid))
        assert s.state == "FAILED" and "interrupted" in s.reason
    assert state(paths, "W3") is None
    assert "Interrupted. Next: bash .boss/plans/p/run_workers.sh" in out
    assert "Next: boss merge" not in out
    from boss.core.proc import pid_alive

    time.sleep(0.2)
    assert not [pid for pid in map(int, pids.read_text().split()) if pid_alive(pid)]


def test_ctrl_c_kills_agent_children_that_ignore_interrupt_and_terminate(repo, monkeypatch):
    monkeypatch.setenv("BOSS_SANDBOX", "off")  # host pids, written beside the worktrees
    # Ctrl-C reaches each worker directly and the pool's SIGTERM follows at once: the second
    # signal must not cut the stopping short before the group's final SIGKILL.
    stubborn = "(trap '' INT TERM; exec sleep 60) & echo $! >> ../pids; wait"
    paths, _ = make_plan(
        repo, [worker(w, steps=[{"run": stubborn}], agent_timeout=120) for w in ("W1", "W2", "W3")]
    )
    pids = paths.worktree("W1").parent / "pids"
    for _ in range(3):
        proc = subprocess.Popen(
            ["bash", str(paths.run_script), "-j", "3"], cwd=repo, start_new_session=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not pids.exists() or len(pids.read_text().split()) < 3):
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        os.killpg(proc.pid, signal.SIGTERM)  # and a second signal right behind it
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, out + err
        from boss.core.proc import pid_alive

        survivors = list(map(int, pids.read_text().split()))
        deadline = time.monotonic() + 3  # a killed orphan is a zombie until init reaps it
        while survivors and time.monotonic() < deadline:
            time.sleep(0.05)
            survivors = [pid for pid in survivors if pid_alive(pid)]
        for pid in survivors:
            os.kill(pid, signal.SIGKILL)
        assert not survivors, out + err
        for wid in ("W1", "W2", "W3"):
            s = st.read(paths.status(wid))
            assert s.state == "FAILED" and "interrupted" in s.reason, (wid, s)
        pids.unlink()


def test_a_second_ctrl_c_while_workers_stop_does_not_end_the_script_before_them(repo, tmp_path):
    # Each agent takes 1.5 s to stop; a second Ctrl-C comes half a second into that.
    slow_stop = "trap 'sleep 1.5; exit 1' INT TERM; echo $$ >> ../pids; sleep 60 & wait"
    paths, _ = make_plan(
        repo, [worker(w, steps=[{"run": slow_stop}], agent_timeout=120) for w in ("W1", "W2")]
    )
    pids = paths.worktree("W1").parent / "pids"
    out = (tmp_path / "out.txt").open("w")
    proc = subprocess.Popen(
        ["bash", str(paths.run_script), "-j", "2"], cwd=repo, start_new_session=True, stdout=out, stderr=out
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not pids.exists() or len(pids.read_text().split()) < 2):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    # At the moment the script ends, every worker has recorded how it ended, and the summary is out.
    assert [state(paths, w) for w in ("W1", "W2")] == ["FAILED", "FAILED"]
    out.close()
    assert "Interrupted. Next: bash .boss/plans/p/run_workers.sh" in (tmp_path / "out.txt").read_text()


def test_hostile_strings_run_nothing(repo, tmp_path):
    marker = tmp_path / "pwned"
    evil = f"$(touch {marker}) `touch {marker}`; touch {marker} ' \" \\ \n ünïcødé ☃"
    w = worker(
        "W1",
        scope=["^src/", f"^docs/$(touch {marker})"],
        test=f"test -f src/done.txt # {evil}".replace("\n", " "),
        branch="feat/x$(touch${IFS}" + str(marker) + ")",
    )
    w["title"] = evil
    w["instructions"] = evil + "\n" + w["instructions"]
    paths, _ = make_plan(repo, [w], task=evil, integration_test=f"true {evil}".replace("\n", " "))
    subprocess.run(["bash", "-n", str(paths.run_script)], check=True)
    res = run_script(paths)
    assert res.returncode == 0, res.stdout + res.stderr
    assert state(paths, "W1") == "SUCCESS"
    assert not marker.exists()
    assert git(repo, "rev-parse", "--verify", "refs/heads/feat/x$(touch${IFS}" + str(marker) + ")")


def test_progress_prints_plain_lines_when_not_a_terminal(repo):
    paths, _ = make_plan(repo, [sleeper("W1", 3.0)])  # long enough to be seen RUNNING on a loaded machine
    res = run_script(paths)
    assert res.returncode == 0
    assert "W1" in res.stdout and "RUNNING" in res.stdout and "SUCCESS" in res.stdout


def test_worker_states_json(repo):
    import json

    from conftest import worker_cmd

    paths, _ = make_plan(repo, [sleeper("W1", 0), worker("W2", test="true")])
    run_script(paths)
    assert json.loads(worker_cmd("states", "p", "--json", cwd=repo).stdout) == {
        "W1": "SUCCESS",
        "W2": "FAILED",
    }


def test_status_and_log_commands(repo):
    from conftest import boss

    paths, _ = make_plan(repo, [sleeper("W1", 0), worker("W2", test="true")])
    run_script(paths)
    out = boss("status", cwd=repo).stdout
    assert "W1" in out and "SUCCESS" in out and "FAILED" in out
    import json

    data = json.loads(boss("status", "--json", cwd=repo).stdout)
    assert {w["id"]: w["state"] for w in data["workers"]} == {"W1": "SUCCESS", "W2": "FAILED"}
    log = boss("log", "--worker", "W2", cwd=repo).stdout
    assert "already passes" in log and "W1 |" not in log
    assert boss("log", "--worker", "NOPE", cwd=repo, check=2).stderr.startswith("Error:")


def test_retry_reruns_one_worker(repo):
    from conftest import boss

    flaky = worker(
        "W1",
        test="test -f src/W1.txt",
        max_iterations=1,
        max_strategies=1,
        steps=[{"run": "test -f ../go && echo W1 > src/W1.txt || true"}],
    )
    paths, _ = make_plan(repo, [flaky])
    assert run_script(paths).returncode == 1
    (paths.worktree("W1").parent / "go").write_text("")
    res = boss("retry", "W1", cwd=repo)
    assert "W1: SUCCESS" in res.stdout
    assert boss("retry", "W1", "--fresh", cwd=repo).returncode == 0
    assert state(paths, "W1") == "SUCCESS"
    assert Path(paths.worktree("W1")).is_dir()


def test_retry_of_a_worker_drops_the_results_its_dependents_built_on_its_old_branch(repo):
    from conftest import boss

    paths, _ = make_plan(
        repo,
        [
            worker("W1", steps=[{"write": {"src/W1.txt": "one"}}], test="test -f src/W1.txt"),
            worker(
                "W2", depends_on=["W1"], test="test -f src/W2.txt", steps=[{"write": {"src/W2.txt": "2"}}]
            ),
            worker(
                "W3", depends_on=["W2"], test="test -f src/W3.txt", steps=[{"write": {"src/W3.txt": "3"}}]
            ),
        ],
    )
    assert run_script(paths).returncode == 0
    out = boss("retry", "W1", "--plan", "p", cwd=repo).stdout
    new = st.read(paths.status("W1")).head_commit
    assert "W2: its dependency W1 is retried since it ran (SUCCESS); its result is dropped" in out
    assert "W3: its dependency W1 is retried" in out
    assert "Its dependents (W2, W3): bash .boss/plans/p/run_workers.sh" in out
    assert state(paths, "W2") is None and state(paths, "W3") is None
    assert run_script(paths).returncode == 0
    assert st.read(paths.status("W2")).start_commit == new  # rebuilt on the retried W1


def test_the_summary_does_not_send_to_merge_while_a_worker_runs_elsewhere(repo):
    paths, _ = make_plan(repo, [worker("W1"), worker("W2")])
    st.write(
        paths.status("W2"),
        st.Status(plan="p", id="W2", state=st.RUNNING, pid=os.getpid(), heartbeat=st.now_iso()),
    )
    res = run_script(paths, "--only", "W1")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Still running elsewhere: W2. Watch: boss status p --watch" in res.stdout
    assert "Next: boss merge" not in res.stdout


def test_retry_refuses_while_a_dependent_runs(repo):
    from conftest import boss

    paths, _ = make_plan(repo, [worker("W1"), worker("W2", depends_on=["W1"])])
    st.write(
        paths.status("W2"),
        st.Status(plan="p", id="W2", state=st.RUNNING, pid=os.getpid(), heartbeat=st.now_iso()),
    )
    err = boss("retry", "W1", "--plan", "p", cwd=repo, check=1).stderr
    assert "worker W2 of plan p is running and depends on W1" in err and "before retrying W1" in err
    assert state(paths, "W1") is None  # nothing ran


def test_python_fallback_when_rendering_python_is_gone(repo):
    paths, _ = make_plan(repo, [sleeper("W1", 0)])
    text = paths.run_script.read_text().replace(f"PYTHON={sys.executable}", "PYTHON=/nonexistent/python")
    paths.run_script.write_text(text)
    env = {**os.environ, "BOSS_WORKER_BIN": f"{sys.executable} -m worker"}
    res = subprocess.run(["bash", str(paths.run_script)], cwd=repo, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr


def wait_for(predicate, seconds=30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def pids_in(path: Path) -> list[int]:
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def test_kill_9_of_a_worker_in_the_pool_reads_crashed_and_the_rerun_finishes(repo):
    w1 = worker("W1", steps=[{"run": "test -f ../go || sleep 60"},
                             {"write": {"src/done.txt": "x"}}], agent_timeout=120)  # fmt: skip
    paths, _ = make_plan(repo, [w1, sleeper("W2", 0), sleeper("W3", 0, depends_on=["W1"])])
    go = paths.worktree("W1").parent / "go"
    proc = subprocess.Popen(["bash", str(paths.run_script)], cwd=repo, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    # The agent runs (not the red test, which also shows a child_pgid): its sleep outlives the kill.
    agent_log = paths.attempts("W1") / "s1i1" / "agent.log"
    wait_for(
        lambda: agent_log.is_file() and (s := st.read(paths.status("W1"))) is not None and s.child_pgid > 0
    )
    os.kill(st.read(paths.status("W1")).pid, signal.SIGKILL)  # the worker process, not its agent
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    assert state(paths, "W2") == "SUCCESS"
    assert state(paths, "W3") == "SKIPPED"
    assert "dependency W1 ended CRASHED" in st.read(paths.status("W3")).reason
    from conftest import worker_cmd

    assert "W1 CRASHED" in worker_cmd("states", "p", cwd=repo).stdout
    go.write_text("")
    res = run_script(paths)
    assert res.returncode == 0, res.stdout + res.stderr
    assert [state(paths, w) for w in ("W1", "W2", "W3")] == ["SUCCESS"] * 3
    assert any(e.action == "reap" for e in statelog.read(paths.log) if e.worker == "W1")


def test_the_script_stops_with_a_clear_error_when_the_pool_dies(repo):
    from boss.core.proc import pid_alive

    paths, _ = make_plan(repo, [worker("W1", steps=[{"run": "sleep 1.5"}, {"write": {"src/done.txt": "x"}}])])
    proc = subprocess.Popen(["bash", str(paths.run_script)], cwd=repo, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    wait_for(lambda: (s := st.read(paths.status("W1"))) is not None and s.child_pgid > 0)
    worker_pid = st.read(paths.status("W1")).pid
    pool = int(Path(f"/proc/{worker_pid}/stat").read_text().rsplit(")", 1)[1].split()[1])  # its parent
    assert _cmdline(Path(f"/proc/{pool}")).endswith(" -m worker pool p")
    assert Path(f"/proc/{worker_pid}/comm").read_text().strip() == "worker W1"
    os.kill(pool, signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "Error: run_workers.sh: the worker pool of plan p stopped" in err
    # The worker it had started is not lost: it finishes and records its state.
    wait_for(lambda: state(paths, "W1") == "SUCCESS")
    wait_for(lambda: not pid_alive(st.read(paths.status("W1")).pid))


def _cmdline(proc_dir: Path) -> str:
    try:
        return proc_dir.joinpath("cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def test_a_bad_manifest_stops_the_script_before_any_worker_runs(repo):
    paths, _ = make_plan(repo, [worker("W1")])
    paths.manifest.write_text(paths.manifest.read_text().replace("version: 1", "version: 7"))
    res = run_script(paths)
    assert res.returncode == 2
    assert res.stderr.startswith("Error: ") and "version" in res.stderr
    assert state(paths, "W1") is None


def test_an_unknown_agent_or_a_missing_context_stops_the_script_before_any_worker_runs(repo):
    paths, _ = make_plan(repo, [worker("W1"), worker("W2", agent="scripted")])
    text = paths.manifest.read_text()
    paths.manifest.write_text(text.replace("agent: scripted", "agent: nosuch", 1))
    res = run_script(paths)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "field agent: no agent profile 'nosuch'" in res.stderr and res.stderr.startswith("Error: ")
    assert state(paths, "W1") is None and state(paths, "W2") is None
    res = run_script(paths, "--only", "W2")  # the bad worker is not selected: W2 runs
    assert res.returncode == 0, res.stdout + res.stderr
    assert state(paths, "W2") == "SUCCESS" and state(paths, "W1") is None
    paths.manifest.write_text(text)
    paths.context("W2").unlink()
    res = run_script(paths)
    assert res.returncode == 1 and "CONTEXT.md: missing; run `boss render p` first" in res.stderr
    assert state(paths, "W1") is None


def test_pool_protocol(repo):
    """The pool run_workers.sh talks to: states, run, skip, an unknown line, end."""
    make_plan(repo, [sleeper("W1", 0), worker("W2")])
    script = 'exec 3>&1 1>&2; exec "$@"'
    feed = "run W1\nskip W2 dependency W9 ended FAILED\nskip NOPE x\nhello\nend\n"
    res = subprocess.run(["bash", "-c", script, "-", sys.executable, "-m", "worker", "pool", "p"], cwd=repo,
                         input=feed, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["state W1 PENDING", "state W2 PENDING", "ready", "done W1 0"]
    assert "W2: SKIPPED (dependency W9 ended FAILED)" in res.stderr
    assert "Error: plan p: no worker 'NOPE'" in res.stderr
    assert "Error: worker pool: unknown command 'hello'" in res.stderr
    assert "plan p: 1 SUCCESS, 1 SKIPPED" in res.stderr


def test_pool_refuses_runs_after_sigterm_and_needs_its_events_fd(repo):
    from conftest import worker_cmd

    paths, _ = make_plan(repo, [sleeper("W1", 0)])
    proc = subprocess.Popen([sys.executable, "-m", "worker", "pool", "p", "--events-fd", "1"], cwd=repo,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout.readline() == "state W1 PENDING\n"
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    out, _ = proc.communicate("run W1\nend\n", timeout=60)
    assert proc.returncode == 130
    assert "done W1 130" in out and "Interrupted. Next: bash" in out
    assert state(paths, "W1") is None
    res = worker_cmd("pool", "p", "--events-fd", "97", cwd=repo, check=2)
    assert "--events-fd 97 is not open" in res.stderr
