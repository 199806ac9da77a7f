"""The sandbox (boss.core.sandbox, bubblewrap) around every agent, setup and test run of a worker.

Each test runs a real worker with a hostile command agent (a bash command run in the worktree)
on a real repository, and checks the effect on disk: what the agent and the test may write,
what they may see, which network they get, and that nothing they start outlives the run.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import threading
from pathlib import Path

import pytest
from conftest import git, make_repo
from worker_helpers import make_plan, worker

from boss.core import sandbox, statelog
from boss.core import status as st
from boss.core.config import load_config
from boss.core.errors import ConfigError, SandboxError
from worker.lifecycle.run import check_runnable, run_worker

REQUIRED = os.environ.get("BOSS_SANDBOX_REQUIRED") == "1"


def _works() -> bool:
    tool = shutil.which("bwrap")
    return tool is not None and not sandbox.probe(tool)


needs_bwrap = pytest.mark.skipif(
    not _works() and not REQUIRED, reason="bubblewrap is not usable here (CI sets BOSS_SANDBOX_REQUIRED=1)"
)


@pytest.fixture
def calc(tmp_path, monkeypatch):
    r = make_repo(tmp_path / "calc", {"src/calc.py": "def add(a, b):\n    return 0\n", "README.md": "calc\n"})
    monkeypatch.chdir(r)
    monkeypatch.setenv("BOSS_SANDBOX", "required")
    return r


def hostile(repo, script: str, name: str = "evil") -> None:
    """A project agent profile that runs `script` with bash in the worktree."""
    (repo / "agent.sh").write_text(script)
    git(repo, "add", "agent.sh")
    git(repo, "commit", "-qm", "agent")
    (repo / ".boss").mkdir(exist_ok=True)
    (repo / ".boss/config.yaml").write_text(f"agents:\n  {name}:\n    command: bash {repo / 'agent.sh'}\n")


def run(paths, m, wid):
    return run_worker(paths, m, load_config(paths.repo), wid)


@needs_bwrap
def test_agent_writes_only_its_worktree(calc, tmp_path, monkeypatch):
    home = tmp_path / "home-standin"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh/authorized_keys").write_text("mine\n")
    (home / ".bashrc").write_text("# mine\n")
    outside = tmp_path / "outside.txt"
    tmp_target = f"/tmp/boss-sandbox-test-{os.getpid()}"
    script = f"""
mkdir -p src && echo done > src/done.txt
for target in "$BOSS_REPO/README.md" "{home}/.bashrc" "{home}/.ssh/authorized_keys" "{outside}" "{tmp_target}" \\
    "$BOSS_REPO/.boss/plans/p/workers/W1/status.json" "$BOSS_REPO/.git/config" "$BOSS_REPO/.git/hooks/post-merge"; do
  echo pwned >> "$target" 2>/dev/null && echo "WROTE $target"
done
echo scratch > "$TMPDIR/scratch" && echo tmp-ok
"""
    hostile(calc, script)
    paths, m = make_plan(calc, [worker("W1", test="test -f src/done.txt", agent="evil")])
    monkeypatch.setenv("HOME", str(home))
    assert run(paths, m, "W1") == st.SUCCESS
    log = next(paths.attempts("W1").glob("s1i1/agent.log")).read_text()
    assert "WROTE" not in log, log
    assert "tmp-ok" in log
    assert (calc / "README.md").read_text() == "calc\n"
    assert (home / ".bashrc").read_text() == "# mine\n"
    assert (home / ".ssh/authorized_keys").read_text() == "mine\n"
    assert not outside.exists()
    assert not os.path.exists(tmp_target)
    assert not (calc / ".git/hooks/post-merge").exists()
    assert st.read(paths.status("W1")).sandbox == "bubblewrap"


@needs_bwrap
def test_another_workers_worktree_is_read_only(calc):
    script = 'mkdir -p src && echo "$BOSS_WORKER" > "src/$BOSS_WORKER.txt"\n'
    script += 'other=$(dirname "$BOSS_WORKTREE")/W1; [ "$BOSS_WORKER" = W2 ] && echo planted > "$other/src/planted.txt"\n'
    hostile(calc, script)
    w1 = worker("W1", test="test -f src/W1.txt", agent="evil")
    w2 = worker("W2", scope=("^src/W2",), test="test -f src/W2.txt", agent="evil")
    paths, m = make_plan(calc, [w1, w2])
    assert run(paths, m, "W1") == st.SUCCESS
    assert run(paths, m, "W2") == st.SUCCESS
    assert not (paths.worktree("W1") / "src/planted.txt").exists()
    assert "src/planted.txt" not in git(calc, "ls-tree", "-r", "--name-only", m.workers[0].branch)


@needs_bwrap
def test_secrets_in_home_are_hidden(calc, tmp_path, monkeypatch):
    home = tmp_path / "home-standin"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh/id_rsa").write_text("SECRET-KEY\n")
    (home / ".netrc").write_text("machine x password SECRET-NETRC\n")
    # A browser's history keeps the URLs it opened (boss ui's link among them).
    for profile in (
        ".config/chromium/Default",
        ".config/google-chrome/Default",
        ".mozilla/firefox/x.default",
    ):
        (home / profile).mkdir(parents=True)
        (home / profile / "History").write_text("http://127.0.0.1:1/?token=SECRET-HISTORY\n")
    monkeypatch.setenv("HOME", str(home))
    script = "cat ~/.ssh/id_rsa ~/.netrc; grep -rh token ~/.config ~/.mozilla; mkdir -p src && echo x > src/done.txt\n"
    hostile(calc, script)
    paths, m = make_plan(calc, [worker("W1", agent="evil")])
    assert run(paths, m, "W1") == st.SUCCESS
    log = (paths.attempts("W1") / "s1i1/agent.log").read_text()
    assert "SECRET" not in log


@needs_bwrap
def test_a_daemon_the_agent_starts_dies_with_its_sandbox(calc):
    script = """
mkdir -p src && echo x > src/done.txt
setsid nohup sleep 300 > /dev/null 2>&1 &
sleep 0.3
"""
    hostile(calc, script)
    paths, m = make_plan(calc, [worker("W1", agent="evil")])
    assert run(paths, m, "W1") == st.SUCCESS
    # No process of the run is left: conftest's no_leftover_processes checks every process
    # carrying this test's tag, setsid daemons included; check the sleep by its command too.
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
                env = Path(f"/proc/{entry}/environ").read_bytes()
            except OSError:
                continue
            assert not (cmd.startswith(b"sleep\x00300") and os.environ["BOSS_TEST_TAG"].encode() in env)


@needs_bwrap
def test_the_test_run_has_loopback_but_no_network_unless_opened(calc):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                conn.close()
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    probe = (
        f'{sys.executable} -c "import socket,sys; s=socket.socket(); s.settimeout(2); '
        f"sys.exit(0 if s.connect_ex(('127.0.0.1', {port})) == 0 else 1)\""
    )
    # The test passes only when it can reach the host's port: closed by default, so the
    # worker never goes green; with test_network: true it does.
    hostile(calc, "mkdir -p src && echo x > src/done.txt\n")
    test = f"test -f src/done.txt && {probe}"
    try:
        paths, m = make_plan(
            calc, [worker("W1", agent="evil", test=test, max_iterations=1, max_strategies=1)]
        )
        assert run(paths, m, "W1") == st.FAILED
        paths, m = make_plan(calc, [worker("W2", agent="evil", test=test, test_network=True)], plan="q")
        assert run(paths, m, "W2") == st.SUCCESS
    finally:
        stop.set()
        thread.join()
        server.close()
    # Loopback inside the test's own namespace works: a test may start its own servers.
    own = (
        f"{sys.executable} -c \"import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); "
        "c=socket.create_connection(s.getsockname()); print('loopback-ok')\""
    )
    paths, m = make_plan(calc, [worker("W3", agent="evil", test=f"test -f src/done.txt && {own}")], plan="r")
    assert run(paths, m, "W3") == st.SUCCESS


@needs_bwrap
def test_setup_writes_only_the_worktree(calc, tmp_path):
    outside = tmp_path / "setup-outside"
    hostile(calc, "mkdir -p src && echo x > src/done.txt\n")
    setup = f'echo in > .setup-ran; echo out > "{outside}" || true'
    paths, m = make_plan(calc, [worker("W1", agent="evil", scope=("^src/", r"^\.setup"))], setup=setup)
    assert run(paths, m, "W1") == st.SUCCESS
    assert (paths.worktree("W1") / ".setup-ran").read_text() == "in\n"
    assert not outside.exists()


def test_required_without_bubblewrap_refuses_to_start(calc, monkeypatch):
    monkeypatch.setenv("BOSS_BWRAP", "/nonexistent/bwrap")
    hostile(calc, "mkdir -p src && echo x > src/done.txt\n")
    paths, m = make_plan(calc, [worker("W1", agent="evil")])
    with pytest.raises(
        SandboxError, match=r"required \(BOSS_SANDBOX\) but bubblewrap \(bwrap\) is not installed"
    ):
        check_runnable(paths, m, load_config(calc))


def test_auto_without_bubblewrap_runs_and_says_so(calc, monkeypatch):
    monkeypatch.setenv("BOSS_BWRAP", "/nonexistent/bwrap")
    monkeypatch.setenv("BOSS_SANDBOX", "auto")
    hostile(calc, "mkdir -p src && echo x > src/done.txt\n")
    paths, m = make_plan(calc, [worker("W1", agent="evil")])
    assert run(paths, m, "W1") == st.SUCCESS
    status = st.read(paths.status("W1"))
    assert status.sandbox.startswith("none: bubblewrap (bwrap) is not installed")
    assert any(e.action == "sandbox" and "without a sandbox" in e.result for e in statelog.read(paths.log))
    assert "NONE (bubblewrap (bwrap) is not installed" in paths.plan_md.read_text()
    from boss.core.statusview import summary

    assert any("ran WITHOUT a sandbox" in line for line in summary(paths, m, load_config(calc)))


def test_a_real_agent_cli_needs_the_sandbox_or_an_explicit_off(calc, monkeypatch):
    monkeypatch.setenv("BOSS_BWRAP", "/nonexistent/bwrap")
    monkeypatch.setenv("BOSS_SANDBOX", "auto")
    paths, m = make_plan(calc, [worker("W1", agent="claude")])
    with pytest.raises(SandboxError, match="the claude agent CLI runs only inside a sandbox"):
        check_runnable(paths, m, load_config(calc))
    monkeypatch.setenv("BOSS_SANDBOX", "off")
    check_runnable(paths, m, load_config(calc))  # said off: allowed, and said in the status


@pytest.mark.parametrize(
    ("text", "mode"), [("off", "off"), ("'off'", "off"), ("required", "required"), ("auto", "auto")]
)
def test_config_sandbox_setting(tmp_path, text, mode):
    repo = make_repo(tmp_path / "r")
    (repo / ".boss").mkdir()
    (repo / ".boss/config.yaml").write_text(f"sandbox: {text}\n")
    assert load_config(repo).sandbox == mode


def test_config_sandbox_setting_rejects_nonsense(tmp_path):
    repo = make_repo(tmp_path / "r")
    (repo / ".boss").mkdir()
    (repo / ".boss/config.yaml").write_text("sandbox: maybe\n")
    with pytest.raises(ConfigError, match=r"config.yaml: field sandbox: must be one of required, auto, off"):
        load_config(repo)


def test_bad_mode_in_the_environment_is_named(monkeypatch):
    monkeypatch.setenv("BOSS_SANDBOX", "sometimes")
    with pytest.raises(SandboxError, match="BOSS_SANDBOX: field sandbox: 'sometimes'"):
        sandbox.resolve("auto")


@needs_bwrap
def test_the_planner_reads_the_repository_and_writes_nothing_of_it(calc, tmp_path):
    from conftest import boss

    outside = tmp_path / "planner-outside"
    planner = tmp_path / "planner.sh"
    planner.write_text(
        f'cat "$BOSS_WORKTREE/README.md"\n'
        f'echo pwned >> "{calc}/README.md" && echo WROTE-README\n'
        f'echo pwned >> "{outside}" && echo WROTE-OUTSIDE\n'
        f'echo pwned >> "{calc}/.git/config" && echo WROTE-GIT\n'
        "exit 3\n"
    )
    (calc / ".boss").mkdir(exist_ok=True)
    (calc / ".boss/config.yaml").write_text(f"agents:\n  planner:\n    command: bash {planner}\n")
    proc = boss("plan", "--agent", "planner", "do x", cwd=calc, check=1)
    assert "exited with code 3" in proc.stderr
    output = (calc / ".boss/planner/last-output.txt").read_text()
    assert "calc" in output and "WROTE" not in output, output
    assert (calc / "README.md").read_text() == "calc\n"
    assert not outside.exists()
    assert "pwned" not in (calc / ".git/config").read_text()


@needs_bwrap
def test_a_boss_command_run_inside_a_sandbox_fails_with_one_error_line(calc):
    """An agent that runs `boss approve` on its own request gets a clean refusal, not a traceback."""
    import subprocess

    from boss.core import approvals

    paths, _ = make_plan(calc, [worker("W1")])
    req = approvals.request(
        paths.approvals_dir, plan="p", worker="W1", command="rm -rf x", reason="r", rule="r"
    )
    jail = sandbox.resolve("required")
    with jail.confine(calc / "src") as confinement:
        assert confinement is not None
        argv = confinement.wrap([sys.executable, "-m", "boss", "approve", req.id, "--plan", "p"], os.environ)
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=calc, check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: ") and "Read-only file system" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert approvals.load(paths.approvals_dir, req.id).status == approvals.PENDING
