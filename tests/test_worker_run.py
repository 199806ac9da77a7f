"""worker run: the lifecycle of SPEC section 5, end to end with the scripted agent and real git."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import git, make_repo, worker_cmd
from worker_helpers import make_plan, worker

from boss.core import statelog
from boss.core import status as st
from boss.core.config import load_config
from worker.lifecycle.run import run_worker


@pytest.fixture
def calc(tmp_path, monkeypatch):
    r = make_repo(
        tmp_path / "calc",
        {"src/calc.py": "def add(a, b):\n    return 0\n", "README.md": "calc\n"},
    )
    monkeypatch.chdir(r)
    return r


def run(paths, m, wid, **kw):
    return run_worker(paths, m, load_config(paths.repo), wid, **kw)


def events(paths, wid=None):
    return [e for e in statelog.read(paths.log) if wid is None or e.worker == wid]


def test_success_commits_on_branch_and_records_status(calc):
    w = worker(
        "W1",
        steps=[{"replace": {"src/calc.py": ["return 0", "return a + b"]}}],
        test="grep -q 'a + b' src/calc.py",
    )
    paths, m = make_plan(calc, [w])
    assert run(paths, m, "W1") == st.SUCCESS
    s = st.read(paths.status("W1"))
    assert s.state == "SUCCESS" and s.iteration == 1 and s.strategy == 1
    assert s.red["exit_code"] == 1 and s.green["exit_code"] == 0
    assert s.start_commit == git(calc, "rev-parse", "main")
    assert s.head_commit == git(calc, "rev-parse", m.workers[0].branch)
    assert git(calc, "show", f"{s.head_commit}:src/calc.py").endswith("return a + b")
    # the user's checkout is untouched
    assert (calc / "src/calc.py").read_text().endswith("return 0\n")
    assert git(calc, "status", "--porcelain") == ""
    actions = [e.action for e in events(paths, "W1")]
    assert actions[:3] == ["start", "worktree", "red"]
    assert {"agent", "test", "commit", "scope", "end"} <= set(actions)
    assert (paths.attempts("W1") / "s1i1" / "agent.log").is_file()
    assert (paths.attempts("W1") / "s1i1" / "test.log").is_file()


def test_dependency_chain_dependent_sees_its_dependency(calc):
    w1 = worker("W1", steps=[{"write": {"src/base.txt": "from W1"}}], test="test -f src/base.txt")
    w2 = worker(
        "W2",
        depends_on=["W1"],
        steps=[{"run": "cp src/base.txt src/copy.txt"}],
        test="grep -q 'from W1' src/copy.txt",
    )
    paths, m = make_plan(calc, [w1, w2])
    assert run(paths, m, "W1") == st.SUCCESS
    assert run(paths, m, "W2") == st.SUCCESS
    s1, s2 = st.read(paths.status("W1")), st.read(paths.status("W2"))
    assert s2.start_commit == s1.head_commit


def test_several_dependencies_start_from_their_merge(calc):
    w1 = worker("W1", steps=[{"write": {"src/a.txt": "a"}}], test="test -f src/a.txt")
    w2 = worker("W2", steps=[{"write": {"src/b.txt": "b"}}], test="test -f src/b.txt")
    w3 = worker(
        "W3",
        depends_on=["W1", "W2"],
        steps=[{"run": "cat src/a.txt src/b.txt > src/c.txt"}],
        test="grep -q ab src/c.txt",
    )
    paths, m = make_plan(calc, [w1, w2, w3])
    for wid in ("W1", "W2", "W3"):
        assert run(paths, m, wid) == st.SUCCESS, st.read(paths.status(wid))


def test_worker_refuses_when_dependency_not_done(calc):
    from boss.core.errors import StateError

    paths, m = make_plan(calc, [worker("W1"), worker("W2", depends_on=["W1"])])
    with pytest.raises(StateError, match="depends on W1"):
        run(paths, m, "W2")
    assert st.read(paths.status("W2")) is None


def test_never_passes_writes_blocker_after_all_iterations_and_rolls_back(calc):
    w = worker(
        "W1",
        steps=[{"write": {"src/attempt.txt": "try"}}],
        test="test -f src/never.txt",
        max_iterations=2,
        max_strategies=2,
    )
    paths, m = make_plan(calc, [w])
    assert run(paths, m, "W1") == st.FAILED
    s = st.read(paths.status("W1"))
    assert s.iteration == 4 and s.strategy == 2
    assert "gave up after 4 iterations in 2 strategies" in s.reason
    agent_runs = [e for e in events(paths, "W1") if e.action == "agent"]
    assert len(agent_runs) == 4
    shifts = [e for e in events(paths, "W1") if e.action == "STRATEGY SHIFT"]
    assert len(shifts) == 1
    report = paths.blocker("W1").read_text()
    for section in (
        "Strategies attempted",
        "Error logs",
        "Hypothesis of the root cause",
        "Recommended manual intervention",
    ):
        assert section in report
    wt = paths.worktree("W1")
    assert git(wt, "status", "--porcelain") == ""
    assert git(wt, "rev-parse", "HEAD") == s.start_commit
    # the second strategy's prompt carried the shift and the failed attempt
    prompt = (paths.attempts("W1") / "s2i3" / "prompt.md").read_text()
    assert "STRATEGY SHIFT" in prompt and "src/attempt.txt" in prompt
    # feedback of iteration 2 holds the previous test output
    second = (paths.attempts("W1") / "s1i2" / "prompt.md").read_text()
    assert "## Feedback from the last iteration\n\n### The acceptance test failed (exit 1)" in second
    assert (paths.worker_dir("W1") / "feedback.md").read_text().startswith("## The acceptance test failed")


def test_a_run_that_succeeds_removes_the_earlier_runs_blocker_report(calc):
    w = worker("W1", test="test -f src/done.txt && test -f ../go", max_iterations=1, max_strategies=1)
    paths, m = make_plan(calc, [w])
    assert run(paths, m, "W1") == st.FAILED
    assert paths.blocker("W1").is_file()
    (paths.worktree("W1").parent / "go").write_text("")  # what held it back is fixed
    assert run(paths, m, "W1") == st.SUCCESS
    assert not paths.blocker("W1").exists()  # it was about the run before


def test_scope_violation_names_the_path(calc):
    w = worker("W1", scope=["^src/"], steps=[{"write": {"src/done.txt": "x", "docs/out.md": "oops"}}])
    paths, m = make_plan(calc, [w])
    assert run(paths, m, "W1") == st.SCOPE_VIOLATION
    s = st.read(paths.status("W1"))
    assert s.violations == ["docs/out.md"]
    assert any(e.action == "scope" and "docs/out.md" in e.result for e in events(paths))


def test_test_already_passing_fails_before_agent_runs(calc):
    w = worker("W1", test="true", steps=[{"write": {"src/x": "x"}}])
    paths, m = make_plan(calc, [w])
    assert run(paths, m, "W1") == st.FAILED
    s = st.read(paths.status("W1"))
    assert "already passes" in s.reason and s.iteration == 0
    assert not any(e.action == "agent" for e in events(paths))


@pytest.mark.parametrize(
    ("test", "why"),
    [
        ("no-such-command-xyz --flag", "not found"),
        ("python -m pytest -q tests/test_missing.py", "cannot run: pytest found no such test file or folder"),
        ("python -m pytest -q --no-such-flag", "cannot run: pytest reported"),
        ("bash -c 'if then'", "syntax error"),
    ],
)
def test_test_that_cannot_run_fails_the_worker(calc, test, why):
    paths, m = make_plan(calc, [worker("W1", test=test)])
    assert run(paths, m, "W1") == st.FAILED
    assert why in st.read(paths.status("W1")).reason
    assert not any(e.action == "agent" for e in events(paths))


def test_pytest_failure_inside_test_passes_red_gate(calc):
    (calc / "tests").mkdir()
    (calc / "tests/test_add.py").write_text(
        "def test_add():\n    from calc import add\n    assert add(2, 3) == 5\n"
    )
    (calc / "conftest.py").write_text(
        "import sys, pathlib\nsys.path.insert(0, str(pathlib.Path(__file__).parent / 'src'))\n"
    )
    git(calc, "add", "-A")
    git(calc, "commit", "-qm", "tests")
    w = worker(
        "W1",
        scope=["^src/"],
        test=f"{sys.executable} -m pytest -q tests/test_add.py",
        steps=[{"replace": {"src/calc.py": ["return 0", "return a + b"]}}],
    )
    paths, m = make_plan(calc, [w])
    assert run(paths, m, "W1") == st.SUCCESS, st.read(paths.status("W1")).reason
    # the root conftest.py is the test's harness: frozen with it
    assert st.read(paths.status("W1")).red["frozen"] == ["conftest.py", "tests/test_add.py"]


def test_agent_that_edits_the_acceptance_test_is_refused(calc):
    (calc / "check.sh").write_text("grep -q 'a + b' src/calc.py\n")
    git(calc, "add", "-A")
    git(calc, "commit", "-qm", "check")
    cheat = {"write": {"check.sh": "true\n"}}
    honest = {"write": {"check.sh": "true\n"}, "replace": {"src/calc.py": ["return 0", "return a + b"]}}
    w = worker("W1", scope=["^src/", "^check.sh$"], test="bash check.sh", steps=[cheat, honest])
    paths, m = make_plan(calc, [w])
    assert run(paths, m, "W1") == st.SUCCESS
    s = st.read(paths.status("W1"))
    assert s.iteration == 2  # the cheat did not make the gate pass
    tamper = [e for e in events(paths) if e.action == "tamper"]
    assert tamper and "check.sh" in tamper[0].result
    assert git(calc, "show", f"{s.head_commit}:check.sh") == "grep -q 'a + b' src/calc.py"
    assert "were undone" in (paths.attempts("W1") / "s1i2" / "prompt.md").read_text()


def test_timed_out_agent_counts_as_failed_iteration(calc):
    slow = {"sleep": 30}
    fast = {"write": {"src/done.txt": "x"}}
    w = worker("W1", steps=[slow, fast], agent_timeout=1)
    paths, m = make_plan(calc, [w])
    start = time.monotonic()
    assert run(paths, m, "W1") == st.SUCCESS
    assert time.monotonic() - start < 15
    agent_events = [e for e in events(paths) if e.action == "agent"]
    assert "timed out" in agent_events[0].result
    assert st.read(paths.status("W1")).iteration == 2


def test_the_next_prompt_says_the_last_run_timed_out(calc):
    w = worker("W1", steps=[{"sleep": 30}, {"write": {"src/done.txt": "x"}}], agent_timeout=1)
    paths, m = make_plan(calc, [w])
    assert run(paths, m, "W1") == st.SUCCESS
    prompt = (paths.attempts("W1") / "s1i2" / "prompt.md").read_text()
    assert "Your last run was stopped after 1s (agent_timeout)" in prompt


def test_an_agent_stopped_by_its_limit_every_time_is_the_blockers_hypothesis(calc):
    w = worker("W1", steps=[{"sleep": 30}], agent_timeout=1, max_iterations=1, max_strategies=2)
    paths, m = make_plan(calc, [w])
    assert run(paths, m, "W1") == st.FAILED
    assert "gave up after 2 iterations in 2 strategies" in st.read(paths.status("W1")).reason
    report = paths.blocker("W1").read_text()
    assert "stopped by agent_timeout in every iteration" in report
    assert "- agent runs: 1 (exit " in report and "; 1 stopped by agent_timeout" in report


def test_an_agent_that_only_edits_the_test_is_named_in_the_blocker_report(calc):
    (calc / "check.sh").write_text("grep -q 'a + b' src/calc.py\n")
    git(calc, "add", "-A")
    git(calc, "commit", "-qm", "check")
    cheat = {"write": {"check.sh": "true\n"}}
    w = worker("W1", scope=["^src/", "^check.sh$"], test="bash check.sh", steps=[cheat], max_strategies=1)
    paths, m = make_plan(calc, [w])
    assert run(paths, m, "W1") == st.FAILED
    report = paths.blocker("W1").read_text()
    assert "- refused edits to the acceptance test: `check.sh`" in report
    assert "only changed the acceptance test" in report
    assert "gave up after 2 iterations in 1 strategy;" in report


@pytest.mark.parametrize(
    ("command", "code", "why"), [("no-such-agent-xyz", 127, "not found"), ("./x.txt", 126, "not executable")]
)
def test_an_agent_that_cannot_run_fails_at_once(calc, command, code, why):
    (calc / "x.txt").write_text("not a program\n")
    (calc / ".boss").mkdir(exist_ok=True)
    (calc / ".boss/config.yaml").write_text(f"agents:\n  gone:\n    command: {command}\n")
    git(calc, "add", "x.txt")
    git(calc, "commit", "-qm", "x")
    paths, m = make_plan(calc, [worker("W1", agent="gone")])
    assert run(paths, m, "W1") == st.FAILED
    reason = st.read(paths.status("W1")).reason
    assert (
        f"the agent cannot run (exit {code}: command {why}); see workers/W1/attempts/s1i1/agent.log" in reason
    )
    assert sum(e.action == "agent" for e in events(paths)) == 1  # not max_strategies x max_iterations
    assert git(paths.worktree("W1"), "status", "--porcelain") == ""


def test_write_test_mode_freezes_what_the_agent_wrote(calc):
    write = {"write": {"tests/check.sh": "grep -q 'a + b' src/calc.py\n"}}
    cheat = {"write": {"tests/check.sh": "true\n"}}
    work = {"replace": {"src/calc.py": ["return 0", "return a + b"]}}
    w = worker(
        "W1",
        scope=["^src/", "^tests/"],
        test="bash tests/check.sh",
        write_test=True,
        steps=[write, cheat, work],
    )
    paths, m = make_plan(calc, [w])
    assert run(paths, m, "W1") == st.SUCCESS
    s = st.read(paths.status("W1"))
    assert s.red["frozen"] == ["tests/check.sh"]
    assert git(calc, "show", f"{s.head_commit}:tests/check.sh").startswith("grep")
    assert "write the acceptance test only" in (paths.attempts("W1") / "write-test" / "prompt.md").read_text()


def test_copy_and_setup_run_once_in_a_new_worktree(calc, monkeypatch):
    monkeypatch.setenv("BOSS_SANDBOX", "off")  # the setup writes beside the worktree, to count
    (calc / ".env").write_text("SECRET=1\n")
    w = worker("W1", test="grep -q SECRET=1 .env && test -f src/done.txt")
    paths, m = make_plan(calc, [w], copy=[".env"], setup="echo ran >> ../setup-count")
    assert run(paths, m, "W1") == st.SUCCESS
    assert (paths.worktree("W1").parent / "setup-count").read_text() == "ran\n"
    assert (
        git(
            calc,
            "show",
            f"{st.read(paths.status('W1')).head_commit}:.env",
        )
        if False
        else True
    )
    # .env was never committed
    files = git(calc, "ls-tree", "-r", "--name-only", m.workers[0].branch).split()
    assert ".env" not in files


def test_failed_setup_fails_the_worker(calc):
    paths, m = make_plan(calc, [worker("W1")], setup="exit 7")
    assert run(paths, m, "W1") == st.FAILED
    assert "setup failed (exit 7)" in st.read(paths.status("W1")).reason


def test_usage_is_summed_into_status(calc):
    steps = [
        {"print": json.dumps({"usage": {"cost_usd": 0.25, "input_tokens": 100, "output_tokens": 10}})},
        {
            "print": json.dumps({"usage": {"cost_usd": 0.5, "input_tokens": 200, "output_tokens": 20}}),
            "write": {"src/done.txt": "x"},
        },
    ]
    (calc / ".boss").mkdir()
    (calc / ".boss/config.yaml").write_text(
        "agents:\n  mine:\n    command: '\"$BOSS_PYTHON\" -m worker.scripted_agent'\n"
    )
    w = worker("W1", steps=steps, agent="mine")
    paths, m = make_plan(calc, [w])
    assert run(paths, m, "W1") == st.SUCCESS
    assert st.read(paths.status("W1")).usage == {"cost_usd": 0.75, "input_tokens": 300, "output_tokens": 30}


def test_agent_environment_follows_the_spec(calc, monkeypatch):
    monkeypatch.setenv("BOSS_SANDBOX", "off")  # the agent writes its environment beside the worktree
    dump = "env | grep ^BOSS_ | sort > ../env-$BOSS_ITERATION.txt"
    w = worker("W1", steps=[{"run": dump, "write": {"src/done.txt": "x"}}])
    paths, m = make_plan(calc, [w])
    assert run(paths, m, "W1") == st.SUCCESS
    env = dict(
        line.split("=", 1)
        for line in (paths.worktree("W1").parent / "env-1.txt").read_text().splitlines()
        if "=" in line
    )
    assert env["BOSS_PLAN"] == "p" and env["BOSS_WORKER"] == "W1"
    assert env["BOSS_ITERATION"] == "1" and env["BOSS_STRATEGY"] == "1"
    assert env["BOSS_WORKTREE"] == str(paths.worktree("W1"))
    assert env["BOSS_CONTEXT"] == str(paths.context("W1"))
    assert env["BOSS_SCOPE"] == "^src/"
    for key in ("BOSS_PROMPT", "BOSS_FEEDBACK"):
        assert key in env


def test_kill_9_reads_crashed_and_rerun_finishes(calc, monkeypatch):
    monkeypatch.setenv("BOSS_SANDBOX", "off")  # host pids, written beside the worktree
    # The agent leaves a child in a new session, as Claude Code, Gemini CLI and OpenCode do.
    slow = {"run": "setsid sleep 60 & echo $! > ../daemon.pid; sleep 60"}
    w = worker("W1", steps=[slow], agent_timeout=120)
    paths, _ = make_plan(calc, [w])
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker", "run", "p", "W1"], cwd=calc, start_new_session=True
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        s = st.read(paths.status("W1"))
        if s and s.iteration == 1 and any(e.action == "red" for e in events(paths)):
            break
        time.sleep(0.1)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    out = subprocess.run(
        [sys.executable, "-m", "boss", "status", "p", "--json"],
        cwd=calc,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out)["workers"][0]["state"] == "CRASHED"
    # rerun with a script that now succeeds
    w2 = worker("W1", steps=[{"write": {"src/done.txt": "x"}}])
    paths, _m = make_plan(calc, [w2])
    worker_cmd("run", "p", "W1", cwd=calc, check=0)
    assert st.read(paths.status("W1")).state == "SUCCESS"
    # the rerun stopped the agent the killed worker had left running, and its setsid child
    assert any(e.action == "reap" for e in events(paths, "W1"))
    from boss.core.proc import pid_alive

    assert not pid_alive(int((paths.worktree("W1").parent / "daemon.pid").read_text()))


def test_a_forged_child_pgid_makes_the_rerun_kill_nothing(calc):
    from boss.core import proctree

    plain = {k: v for k, v in os.environ.items() if k != proctree.MARKER}
    stranger = subprocess.Popen(["sleep", "60"], env=plain, start_new_session=True)
    try:
        paths, m = make_plan(calc, [worker("W1")])
        forged = st.Status(plan="p", id="W1", branch=m.workers[0].branch, state=st.RUNNING,
                           child_pgid=stranger.pid, pid=999_999)  # fmt: skip
        st.write(paths.status("W1"), forged)
        assert run(paths, m, "W1") == st.SUCCESS
        assert stranger.poll() is None
        assert not any(e.action == "reap" for e in events(paths, "W1"))
    finally:
        stranger.kill()
        stranger.wait()


def test_each_attempt_records_what_the_agent_was_started_with(calc, monkeypatch):
    monkeypatch.setenv("MY_API_KEY", "sk-secret")
    paths, m = make_plan(calc, [worker("W1")])
    assert run(paths, m, "W1") == st.SUCCESS
    record = json.loads((paths.attempts("W1") / "s1i1" / "agent.json").read_text())
    assert record["profile"] == "scripted" and record["version"] is None
    assert record["argv"] == [sys.executable, "-P", "-m", "worker.scripted_agent"]
    assert record["env"]["BOSS_WORKER"] == "W1" and "MY_API_KEY" in record["env_names"]
    assert "sk-secret" not in json.dumps(record)


def test_an_agent_whose_guard_never_ran_stops_the_worker(calc, tmp_path, monkeypatch):
    # A claude that ignores its hook settings: it edits through Bash, and no guard decides.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    use = {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "touch src/done.txt"}}
    line = json.dumps({"type": "assistant", "message": {"content": [use]}})
    fake = bin_dir / "claude"
    fake.write_text(f"#!/bin/bash\n[ \"$1\" = --version ] && {{ echo '9.9.9 (Claude Code)'; exit; }}\n"
                    f"echo '{line}'\ntouch src/done.txt\n"
                    'echo \'{"type":"result","subtype":"success","is_error":false,"result":"ok"}\'\n')  # fmt: skip
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr("worker.agents.profile._versions", {})
    paths, m = make_plan(calc, [worker("W1", agent="claude")])
    assert run(paths, m, "W1") == st.FAILED
    s = st.read(paths.status("W1"))
    assert "the claude guard judged 0 of 1 tool calls" in s.reason
    assert "9.9.9 (Claude Code)" in s.reason and "not judged" in s.reason
    assert s.head_commit == s.start_commit  # nothing committed as success
    assert git(calc, "rev-parse", m.workers[0].branch) == s.start_commit
    assert not any(e.action == "test" for e in events(paths, "W1") if ".i1" in e.iteration_id)
    record = json.loads((paths.attempts("W1") / "s1i1" / "agent.json").read_text())
    assert record["version"] == "9.9.9 (Claude Code)" and record["argv"][0] == "claude"


def _fake_claude(tmp_path, monkeypatch, body: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "claude"
    fake.write_text(f"#!/bin/bash\n[ \"$1\" = --version ] && {{ echo '9.9.9 (Claude Code)'; exit; }}\n{body}")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr("worker.agents.profile._versions", {})


def test_a_guard_that_judged_fewer_calls_than_the_agent_made_stops_the_worker(calc, tmp_path, monkeypatch):
    # Two Bash calls, one guard decision: one call ran unjudged (one decision used to pass a run).
    uses = [{"type": "tool_use", "id": f"t{i}", "name": "Bash", "input": {"command": "ls"}} for i in (1, 2)]
    line = json.dumps({"type": "assistant", "message": {"content": uses}})
    # One decision: the guard hook asked once (through the worker's broker, as Claude's hook would).
    hook = json.dumps({"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "ls"}})
    decide = f"echo '{hook}' | \"$BOSS_PYTHON\" -P -m worker.autonomy.guard --agent claude --plan p --worker W1 >/dev/null\n"
    _fake_claude(tmp_path, monkeypatch, f"echo '{line}'\n{decide}")
    paths, m = make_plan(calc, [worker("W1", agent="claude")])
    assert run(paths, m, "W1") == st.FAILED
    s = st.read(paths.status("W1"))
    assert "the claude guard judged 1 of 2 tool calls (1 ran unjudged)" in s.reason, s.reason
    assert [e.action for e in events(paths, "W1")].count("guard") == 1


def test_a_cli_that_fails_before_doing_any_work_stops_the_worker_at_once(calc, monkeypatch):
    # Claude logged out: an error result at once, no tool call, on every run.
    fakes = os.path.join(os.path.dirname(__file__), "fakes", "bin")
    monkeypatch.setenv("PATH", f"{fakes}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_CLAUDE_FAIL", "Not logged in · Please run /login")
    paths, m = make_plan(calc, [worker("W1", agent="claude", max_iterations=5)])
    paths.blocker("W1").parent.mkdir(parents=True, exist_ok=True)
    paths.blocker("W1").write_text("an earlier run's report\n")
    assert run(paths, m, "W1") == st.FAILED
    s = st.read(paths.status("W1"))
    assert s.reason == (
        "the claude CLI failed before doing any work: Not logged in · Please run /login "
        "(workers/W1/attempts/s1i1/agent.log); fix the CLI's login or provider, then "
        "`boss retry W1 --plan p`"
    ), s.reason
    assert s.iteration == 1 and s.head_commit == s.start_commit
    assert [e.action for e in events(paths, "W1")].count("agent") == 1
    assert events(paths, "W1")[-1].action == "cli-failure"
    assert not paths.blocker("W1").exists()  # nothing blames the requirement


# What each real CLI printed when its provider answered 401 (or 500), captured against the contract
# suite's scripted servers: (profile, output, the failure it must report).
_CLAUDE_401 = (
    '{"type":"result","subtype":"success","is_error":true,"api_error_status":401,"num_turns":1,'
    '"result":"Invalid API key · Fix external API key","total_cost_usd":0}'
)
_CLAUDE_RETRY = (
    '{"type":"system","subtype":"api_retry","attempt":8,"max_retries":10,"retry_delay_ms":38369.8,'
    '"error_status":401,"error":"authentication_failed"}'
)
_CODEX_500 = (
    '{"type":"turn.started"}\n{"type":"error","message":"We are currently experiencing high demand."}\n'
    '{"type":"turn.failed","error":{"message":"We are currently experiencing high demand."}}'
)
_GEMINI_401 = (
    '{"type":"result","status":"error","error":{"type":"unknown","message":"[API Error: invalid x-api-key]"},'
    '"stats":{"total_tokens":0,"tool_calls":0}}'
)
_OPENCODE_401 = (
    '{"type":"error","error":{"name":"APIError","data":{"message":"invalid x-api-key","statusCode":401,'
    '"isRetryable":false}}}'
)
_AIDER_401 = (
    "Aider v0.86.2\n\nlitellm.AuthenticationError: AuthenticationError: OpenAIException - invalid \n"
    "x-api-key\nThe API provider is not able to authenticate you. Check your API key.\n"
)


@pytest.mark.parametrize(
    ("name", "output", "expected"),
    [
        ("claude", _CLAUDE_401, "Invalid API key · Fix external API key"),
        ("claude", _CLAUDE_RETRY, "API request failed: authentication_failed (HTTP 401), retry 8 of 10"),
        ("claude", '{"type":"result","subtype":"success","is_error":false,"result":"ok"}', None),
        ("claude", '{"type":"result","subtype":"error_max_turns","is_error":true}', None),
        ("codex", _CODEX_500, "We are currently experiencing high demand."),
        ("codex", '{"type":"error","message":"Reconnecting... 1/5"}\n{"type":"turn.completed"}', None),
        ("gemini", _GEMINI_401, "[API Error: invalid x-api-key]"),
        ("gemini", '{"type":"result","status":"success","stats":{}}', None),
        ("opencode", _OPENCODE_401, "APIError (HTTP 401): invalid x-api-key"),
        ("opencode", '{"type":"text","part":{"text":"done"}}', None),
        (
            "aider",
            _AIDER_401,
            "litellm.AuthenticationError: AuthenticationError: OpenAIException - invalid x-api-key",
        ),
        ("aider", "Applied edit to src/calc.py\nlitellm.APIConnectionError: later\n", None),
        ("scripted", "anything", None),
    ],
)
def test_each_profile_reads_its_clis_own_failure(name, output, expected):
    from boss.core.config import Config
    from worker.agents.registry import get_profile

    assert get_profile(name, Config()).failure(output) == expected


def test_agent_config_planted_in_the_worktree_is_gone_before_the_next_start(calc):
    # Iteration 1 plants an OpenCode plugin that ignores itself; iteration 2 must not find it.
    plant = {"write": {".opencode/.gitignore": "*\n", ".opencode/plugin/evil.js": "export default {}\n"}}
    check = {"run": "test ! -e .opencode/plugin/evil.js && touch src/done.txt"}
    paths, m = make_plan(calc, [worker("W1", steps=[plant, check])])
    assert run(paths, m, "W1") == st.SUCCESS
    reset = [e for e in events(paths, "W1") if e.action == "agent-config"]
    assert len(reset) == 1 and reset[0].iteration_id == "W1.s1.i2"
    assert ".opencode/plugin/evil.js (added)" in reset[0].result
    assert "start commit" in reset[0].result


def test_secret_flag_values_are_masked_in_the_recorded_argv():
    from worker.agents.profile import Invocation, ScriptedProfile, attempt_record

    argv = ["aider", "--openai-api-key", "sk-1", "--anthropic-api-key=sk-2", "--model", "gpt-4o",
            "--auth-token", "tok", "--no-auth", "--read", "x.py", "-c", "p.api_key=sk-3", "--", "--token"]  # fmt: skip
    record = attempt_record(ScriptedProfile(), Invocation(argv), {}, {})
    assert record["argv"] == ["aider", "--openai-api-key", "***", "--anthropic-api-key=***", "--model",
                              "gpt-4o", "--auth-token", "***", "--no-auth", "--read", "x.py", "-c",
                              "p.api_key=***", "--", "--token"]  # fmt: skip


@pytest.mark.parametrize("command", [["worker", "run", "p", "W1"], ["boss", "retry", "W1"]])
def test_sigterm_leaves_a_true_status_and_stops_the_agent(calc, command, monkeypatch):
    monkeypatch.setenv("BOSS_SANDBOX", "off")  # host pids, written beside the worktree
    w = worker("W1", steps=[{"run": "echo $$ > ../agent.pid; sleep 60"}], agent_timeout=120)
    paths, _m = make_plan(calc, [w])
    proc = subprocess.Popen([sys.executable, "-m", *command], cwd=calc, stdout=subprocess.DEVNULL)
    pidfile = paths.worktree("W1").parent / "agent.pid"
    deadline = time.monotonic() + 20
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 130
    s = st.read(paths.status("W1"))
    assert s.state == "FAILED" and "interrupted" in s.reason
    from boss.core.proc import pid_alive

    assert not pid_alive(int(pidfile.read_text()))


def test_second_concurrent_run_is_refused(calc):
    w = worker("W1", steps=[{"sleep": 3, "write": {"src/done.txt": "x"}}])
    paths, _m = make_plan(calc, [w])
    proc = subprocess.Popen([sys.executable, "-m", "worker", "run", "p", "W1"], cwd=calc)
    deadline = time.monotonic() + 10
    while (st.read(paths.status("W1")) is None) and time.monotonic() < deadline:
        time.sleep(0.05)
    res = worker_cmd("run", "p", "W1", cwd=calc, check=1)
    assert "already running" in res.stderr
    assert proc.wait(timeout=30) == 0


def test_test_and_setup_know_their_worker(calc, monkeypatch):
    monkeypatch.setenv("BOSS_SANDBOX", "off")  # the setup leaves a mark beside the worktree
    w = worker("W1", test='test "$BOSS_WORKER" = W1 && test -f src/done.txt && test -f ../setup-$BOSS_WORKER')
    paths, _ = make_plan(calc, [w], setup='touch "../setup-$BOSS_WORKER"; test "$BOSS_PLAN" = p')
    assert run(paths, m_of(paths), "W1") == st.SUCCESS


def test_a_worktree_deleted_by_hand_is_made_again(calc):
    import shutil

    flaky = worker(
        "W1",
        test="test -f src/W1.txt",
        max_iterations=1,
        max_strategies=1,
        steps=[{"run": "test -f ../go && echo W1 > src/W1.txt || true"}],
    )
    paths, m = make_plan(calc, [flaky])
    assert run(paths, m, "W1") == st.FAILED
    shutil.rmtree(paths.worktree("W1"))
    (paths.worktree("W1").parent / "go").write_text("")
    assert run(paths, m, "W1") == st.SUCCESS


def m_of(paths):
    from boss.core.manifest import load

    return load(paths.manifest)


def test_a_hanging_test_is_reported_as_a_timeout(calc):
    w = worker(
        "W1", test="test -f src/done.txt && sleep 30", test_timeout=1, max_iterations=1, max_strategies=1
    )
    paths, m = make_plan(calc, [w])
    assert run(paths, m, "W1") == st.FAILED
    assert any(e.action == "test" and "timed out after 1s" in e.result for e in events(paths))
    report = paths.blocker("W1").read_text()
    assert "timed out after 1s (test_timeout)" in report and "hangs or is too slow" in report


def test_approval_requests_of_an_earlier_run_are_not_blamed_for_this_one(calc):
    from boss.core import approvals

    paths, m = make_plan(
        calc, [worker("W1", steps=[{"write": {"src/x.txt": "x"}}], max_iterations=1, max_strategies=1)]
    )
    old = approvals.request(
        paths.approvals_dir,
        plan="p",
        worker="W1",
        command="rm -rf build",
        reason="old",
        rule="recursive-delete",
    )
    path = paths.approvals_dir / f"{old.id}.json"
    path.write_text(path.read_text().replace(old.created_at, "2000-01-01T00:00:00Z"))
    assert run(paths, m, "W1") == st.FAILED
    assert "approval" not in st.read(paths.status("W1")).reason
    assert "Waiting for approval" not in paths.blocker("W1").read_text()


TOOL_OUTPUT = {
    "claude": [
        {"type": "assistant", "message": {"content": [{"type": "tool_use", "name": "Bash", "input": {}},
                                                      {"type": "tool_use", "name": "Read", "input": {}}]}},
        {"type": "assistant", "message": {"content": [{"type": "tool_use", "name": "Edit", "input": {}}]}},
    ],
    "codex": [
        {"type": "item.started", "item": {"id": "i1", "type": "command_execution"}},
        {"type": "item.completed", "item": {"id": "i1", "type": "command_execution"}},
        {"type": "item.completed", "item": {"id": "i2", "type": "file_change"}},
        {"type": "item.completed", "item": {"id": "i3", "type": "agent_message"}},
    ],
    "gemini": [
        {"type": "tool_use", "tool_name": "run_shell_command"},
        {"type": "tool_use", "tool_name": "replace"},
        {"type": "tool_use", "tool_name": "read_file"},
    ],
    "opencode": [
        {"type": "tool_use", "part": {"tool": "bash"}},
        {"type": "tool_use", "part": {"tool": "write"}},
        {"type": "tool_use", "part": {"tool": "read"}},
    ],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(TOOL_OUTPUT))
def test_each_cli_profile_counts_its_shell_and_edit_tool_calls(name):
    from worker.agents.registry import PROFILES

    output = "warning: not json\n" + "\n".join(json.dumps(e) for e in TOOL_OUTPUT[name])
    assert PROFILES[name].tool_calls(output) == 2
    assert PROFILES[name].tool_calls("") == 0


def test_profiles_that_cannot_tell_count_no_tool_calls():
    from worker.agents.profile import CommandProfile, ScriptedProfile

    assert CommandProfile("c", "true").tool_calls("x") is None
    # The scripted agent can tell: its guarded `shell:` commands, one line each.
    assert ScriptedProfile().tool_calls("x") == 0
    assert ScriptedProfile().tool_calls("scripted agent: shell: ls\nls output\n") == 1
