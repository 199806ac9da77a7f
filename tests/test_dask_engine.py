"""run_workers.sh --engine dask against a real cluster on loopback (README, "Running on a Dask cluster").

A `dask scheduler` and three `dask worker` nodes (AGENT=2 each, their own local folders, every
port on 127.0.0.1), a bare repository as the shared remote, a plan of scripted-agent workers with
dependencies: every branch arrives on the remote and in the Boss's repository, the states equal a
local run's, and `boss merge` lands the same tree. Skipped without `distributed` (the dask
extra) unless BOSS_DASK_REQUIRED=1, as in CI.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import worker_helpers
from conftest import boss, git, make_repo
from worker_helpers import make_plan, worker

from boss.core import statelog
from boss.core import status as st

try:
    import distributed
except ImportError:  # pragma: no cover - CI installs the extra
    if os.environ.get("BOSS_DASK_REQUIRED") == "1":
        raise
    pytest.skip("distributed is not installed (pip install 'boss-worker[dask]')", allow_module_level=True)

# Its module cluster is started once, on one xdist worker (scripts/test.sh: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("dask_engine")

DASK = str(Path(sys.executable).parent / "dask")
FILES = {"README.md": "r\n", "src/keep.txt": "k\n"}


def _tagged(tag: str) -> list[int]:
    needle = f"BOSS_CLUSTER_TAG={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def kill_tag(tag: str) -> None:
    """SIGKILL every process carrying tag (a node and all it started), and wait for them to go."""
    for _ in range(50):
        pids = _tagged(tag)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


class Cluster:
    """A scheduler and nodes on 127.0.0.1, each process tagged so it can be killed with all it started."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env, self.tag = root, env, uuid.uuid4().hex
        root.mkdir(parents=True, exist_ok=True)
        self.procs: list[subprocess.Popen] = []
        self.nodes: dict[str, str] = {}  # name -> its kill tag
        info = root / "scheduler.json"
        self._spawn(
            "scheduler",
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address", "127.0.0.1:0",
             "--scheduler-file", str(info)],
            self.tag,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not info.is_file() or not info.read_text().strip():
            assert time.monotonic() < deadline, (root / "scheduler.log").read_text()
            time.sleep(0.1)
        self.address = json.loads(info.read_text())["address"]

    def _spawn(self, name: str, args: list[str], tag: str) -> None:
        log = (self.root / f"{name}.log").open("w")
        env = {**self.env, "BOSS_CLUSTER_TAG": tag}
        self.procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env))

    def add_node(self, name: str, slots: int = 2) -> None:
        local = self.root / name
        local.mkdir()
        self.nodes[name] = f"{self.tag}-{name}"
        self._spawn(
            name,
            [DASK, "worker", self.address, "--name", name, "--host", "127.0.0.1", "--nthreads", "2",
             "--no-nanny", "--resources", f"AGENT={slots}", "--local-directory", str(local),
             "--dashboard-address", "127.0.0.1:0"],
            self.nodes[name],
        )  # fmt: skip

    def wait_for(self, count: int) -> None:
        with distributed.Client(self.address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(count, timeout=90)

    def kill_node(self, name: str) -> None:
        kill_tag(self.nodes.pop(name))

    def stop(self) -> None:
        for tag in list(self.nodes.values()):
            kill_tag(tag)
        kill_tag(self.tag)
        for p in self.procs:
            p.wait(timeout=10)


def cluster_env(tmp: Path) -> dict[str, str]:
    """The nodes' environment: this one without the test's tag (the cluster outlives one test),
    with a git identity and config of their own."""
    env = {k: v for k, v in os.environ.items() if k != "BOSS_TEST_TAG"}
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    (home / "gitconfig").write_text("[init]\n\tdefaultBranch = main\n")
    env.update(HOME=str(home), GIT_CONFIG_GLOBAL=str(home / "gitconfig"), GIT_CONFIG_NOSYSTEM="1")
    for role in ("AUTHOR", "COMMITTER"):
        env[f"GIT_{role}_NAME"], env[f"GIT_{role}_EMAIL"] = "Test", "test@example.com"
    return env


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    c = Cluster(root, cluster_env(root))
    try:
        for n in range(3):
            c.add_node(f"node{n}")
        c.wait_for(3)
        yield c
    finally:
        c.stop()


def plan_workers() -> list[dict]:
    """Seven workers: a diamond, a chain, one that fails and the dependent it takes down."""

    def w(wid, **kw):
        return worker(wid, test=f"test -f src/{wid}.txt", steps=[{"write": {f"src/{wid}.txt": wid}}], **kw)

    return [
        w("W1"),
        w("W2"),
        w("W3", depends_on=["W1"]),
        w("W4", depends_on=["W1", "W2"]),
        w("W5", depends_on=["W3"]),
        worker("W6", test="false", steps=[{"write": {"src/W6.txt": "no"}}]),
        w("W7", depends_on=["W6"]),
    ]


def run_script(paths, *args, timeout=240):
    return worker_helpers.run_script(paths, *args, timeout=timeout)  # nodes take longer to start


def states(paths, ids):
    return {wid: (s.state if (s := st.read(paths.status(wid))) else None) for wid in ids}


def new_plan(tmp_path: Path, name: str):
    repo = make_repo(tmp_path / name, FILES)
    paths, _ = make_plan(repo, plan_workers())
    return repo, paths


def remote_of(tmp_path: Path, repo: Path) -> Path:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(remote)], check=True)
    return remote


def held_by_scheduler(address: str) -> set[str]:
    """The names of the variables, set events and published datasets the scheduler keeps (an
    event nobody set goes when its last waiter stops waiting)."""
    from distributed import Client

    def held(dask_scheduler) -> list[str]:  # runs on the scheduler (sent by value: it is local)
        found = dask_scheduler.extensions
        events = [name for name, event in found["events"]._events.items() if event.is_set()]
        names = [*found["variables"].variables, *found["publish"].datasets, *events]
        return [str(n) for n in names]

    with Client(address, timeout=30, set_as_default=False) as client:
        return set(client.run_on_scheduler(held))


def test_a_plan_runs_on_three_nodes_as_it_runs_here(cluster, tmp_path):
    ids = [w["id"] for w in plan_workers()]
    before = held_by_scheduler(cluster.address)
    local_repo, local = new_plan(tmp_path, "local")
    started = time.monotonic()
    here = run_script(local, "-j", "4")
    local_time = time.monotonic() - started
    repo, paths = new_plan(tmp_path, "boss")
    remote = remote_of(tmp_path, repo)

    started = time.monotonic()
    res = run_script(
        paths, "-j", "6", "--engine", "dask", "--scheduler", cluster.address, "--remote", str(remote)
    )
    cluster_time = time.monotonic() - started
    print(f"local run {local_time:.1f}s, on the cluster {cluster_time:.1f}s")
    assert held_by_scheduler(cluster.address) == before  # each task's variables gone with it

    assert res.returncode == here.returncode == 1, (res.stdout, res.stderr)
    assert states(paths, ids) == states(local, ids)
    assert states(paths, ids)["W4"] == "SUCCESS" and states(paths, ids)["W7"] == "SKIPPED"
    for wid in ("W1", "W2", "W3", "W4", "W5"):
        status = st.read(paths.status(wid))
        assert status is not None and status.pid == 0
        branch = f"refs/heads/{status.branch}"
        # The branch is on the remote and in the Boss's repository, at the head its status names.
        assert git(remote, "rev-parse", branch) == git(repo, "rev-parse", branch) == status.head_commit
        assert git(repo, "rev-parse", f"refs/boss/p/{wid}/start") == status.start_commit
        assert (paths.worker_dir(wid) / "attempts").is_dir()
        events = [e.action for e in statelog.read(paths.log) if e.worker == wid]
        assert "start" in events and events[-1] == "dask", events
    w4 = st.read(paths.status("W4"))
    assert git(repo, "show", f"{w4.head_commit}:src/W1.txt") == "W1"  # built on both dependencies
    assert git(repo, "show", f"{w4.head_commit}:src/W2.txt") == "W2"
    assert "W6" in boss("status", "p", cwd=repo, check=None).stdout
    log = boss("log", "p", "--worker", "W4", cwd=repo).stdout
    assert "ran on node node" in log and "SUCCESS" in log
    assert boss("diff", "W4", "--plan", "p", cwd=repo, check=None).returncode == 0

    boss("merge", "p", cwd=repo, check=None)
    boss("merge", "p", cwd=local_repo, check=None)
    assert git(repo, "rev-parse", "main^{tree}") == git(local_repo, "rev-parse", "main^{tree}")
    assert git(repo, "rev-parse", "main^{tree}") != git(remote, "rev-parse", "main^{tree}")  # it landed


def test_a_second_run_resumes_through_the_remote(cluster, tmp_path):
    """A rerun on the cluster keeps SUCCESS and runs the failed worker again, on whatever node."""
    repo, paths = new_plan(tmp_path, "boss")
    remote = remote_of(tmp_path, repo)
    engine = ("--engine", "dask", "--scheduler", cluster.address, "--remote", str(remote))
    first = run_script(paths, *engine)
    assert first.returncode == 1
    assert "running 7 worker(s), at most 6 at once" in first.stdout  # no -j: the cluster's 3 x AGENT=2
    w1 = st.read(paths.status("W1"))
    res = run_script(paths, "--only", "W1,W6", *engine)
    assert res.returncode == 1, res.stderr
    assert st.read(paths.status("W1")) == w1  # kept, not run again
    assert st.read(paths.status("W6")).state == "FAILED"
    starts = [e for e in statelog.read(paths.log) if e.worker == "W6" and e.action == "start"]
    assert len(starts) == 2


def test_a_scheduler_that_cannot_be_reached_is_one_error_before_any_worker_starts(tmp_path):
    import socket

    repo, paths = new_plan(tmp_path, "boss")
    remote = remote_of(tmp_path, repo)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    started = time.monotonic()
    res = run_script(
        paths,
        "--engine",
        "dask",
        "--scheduler",
        f"tcp://127.0.0.1:{port}",
        "--remote",
        str(remote),
        timeout=60,
    )
    assert res.returncode == 1, (res.stdout, res.stderr)
    errors = [line for line in res.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        f"Error: --scheduler tcp://127.0.0.1:{port}: the Dask scheduler cannot be reached "
        + errors[0].split("cannot be reached ", 1)[1]
    ]
    assert "Traceback" not in res.stderr
    assert time.monotonic() - started < 40
    assert all(st.read(paths.status(w)) is None for w in ("W1", "W2"))  # nothing started
    assert git(remote, "for-each-ref", "refs/boss/") == ""


def test_the_engine_needs_a_scheduler_and_a_remote(tmp_path):
    _, paths = new_plan(tmp_path, "boss")
    res = run_script(paths, "--engine", "dask", timeout=60)
    assert res.returncode == 2
    assert (
        "Error: run_workers.sh --engine dask needs --scheduler (or scheduler in .boss/config.yaml)"
        in res.stderr
    )
    assert st.read(paths.status("W1")) is None


def test_a_local_run_imports_nothing_of_dask(tmp_path):
    repo, paths = new_plan(tmp_path, "boss")
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "sitecustomize.py").write_text(
        "import atexit, sys\n"
        "def _check():\n"
        "    bad = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'))\n"
        f"    if bad: open({str(tmp_path / 'imported.txt')!r}, 'a').write(' '.join(bad) + '\\n')\n"
        "atexit.register(_check)\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(probe), os.environ.get("PYTHONPATH")])),
    }
    res = subprocess.run(
        ["bash", str(paths.run_script), "--only", "W1"], cwd=repo, capture_output=True, text=True, env=env
    )
    assert res.returncode == 0, res.stderr
    assert st.read(paths.status("W1")).state == "SUCCESS"
    assert not (tmp_path / "imported.txt").exists(), (tmp_path / "imported.txt").read_text()


def test_cleanup_helpers_leave_nothing(tmp_path):
    """The node tag kills a process and everything it started (what kill_node relies on)."""
    tag = uuid.uuid4().hex
    env = {**os.environ, "BOSS_CLUSTER_TAG": tag}
    proc = subprocess.Popen(["bash", "-c", "sleep 30 & sleep 30"], env=env)
    time.sleep(0.2)
    kill_tag(tag)
    proc.wait(timeout=5)
    assert not _tagged(tag)
    assert shutil.which("git")


def on_node(local: Path, pattern: str) -> list[Path]:
    """What matches pattern in a node's run folder (boss-runs/), read while the node works in it."""
    try:
        return list(local.glob(f"dask-scratch-space/worker-*/boss-runs/{pattern}"))
    except OSError:  # a folder removed while it was listed
        return []


def twelve() -> list[dict]:
    """Twelve workers with dependencies; W5 sleeps long enough to lose its node under it."""

    def w(wid, sleep=0.5, **kw):
        steps = [{"sleep": sleep, "write": {f"src/{wid}.txt": wid}}]
        return worker(wid, test=f"test -f src/{wid}.txt", steps=steps, **kw)

    return [
        w("W1"), w("W2"), w("W3"),
        w("W4", depends_on=["W1"]), w("W5", sleep=5, depends_on=["W1"]), w("W6", depends_on=["W2", "W3"]),
        w("W7", depends_on=["W4"]), w("W8", depends_on=["W5"]), w("W9", depends_on=["W6", "W7"]),
        worker("W10", test="false", steps=[{"write": {"src/W10.txt": "no"}}]),
        w("W11", depends_on=["W10"]), w("W12", depends_on=["W8", "W9"]),
    ]  # fmt: skip


def test_twelve_workers_on_three_nodes_one_killed_mid_run_end_as_a_local_run(tmp_path):
    """The node running W5 (and all it started) is SIGKILLed mid-run: Dask gives W5 to another
    node, which starts it again from the remote (where the lost run pushed nothing), as a crashed
    worker starts again. Every branch arrives; the verdicts and the landed tree equal a local run's."""
    ids = [w["id"] for w in twelve()]
    local_repo = make_repo(tmp_path / "local", FILES)
    local, _ = make_plan(local_repo, twelve())
    assert run_script(local, "-j", "6").returncode == 1
    c = Cluster(tmp_path / "cluster", cluster_env(tmp_path))
    try:
        for n in range(3):
            c.add_node(f"node{n}")
        c.wait_for(3)
        repo = make_repo(tmp_path / "boss", FILES)
        paths, _ = make_plan(repo, twelve())
        remote = remote_of(tmp_path, repo)
        engine = ("--engine", "dask", "--scheduler", c.address, "--remote", str(remote))
        proc = subprocess.Popen(
            ["bash", str(paths.run_script), "-j", "6", *engine], cwd=repo, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 90
        lost = None
        while lost is None:
            assert time.monotonic() < deadline and proc.poll() is None
            for name in c.nodes:
                if on_node(tmp_path / "cluster" / name, "p-W5-*/.worktrees/p/W5"):
                    lost = name
            time.sleep(0.1)
        time.sleep(1)  # W5's agent is asleep in its first iteration
        c.kill_node(lost)
        out, err = proc.communicate(timeout=240)
    finally:
        c.stop()
    assert proc.returncode == 1, (out, err)
    assert states(paths, ids) == states(local, ids)
    assert states(paths, ids)["W12"] == "SUCCESS" and states(paths, ids)["W11"] == "SKIPPED"
    for wid in ids:
        status = st.read(paths.status(wid))
        if status.state == "SUCCESS":
            branch = f"refs/heads/{status.branch}"
            assert git(remote, "rev-parse", branch) == git(repo, "rev-parse", branch) == status.head_commit
    ran = [e.result for e in statelog.read(paths.log) if e.worker == "W5" and e.action == "dask"]
    assert len(ran) == 1 and ran[0].startswith("ran on node ") and f"node {lost} " not in ran[0], ran
    assert on_node(tmp_path / "cluster" / lost, "p-W5-*")  # where it was lost
    w5, w8 = st.read(paths.status("W5")), st.read(paths.status("W8"))
    assert git(repo, "merge-base", "--is-ancestor", w5.head_commit, w8.head_commit) == ""
    boss("merge", "p", cwd=repo, check=None)
    boss("merge", "p", cwd=local_repo, check=None)
    assert git(repo, "rev-parse", "main^{tree}") == git(local_repo, "rev-parse", "main^{tree}")
    assert git(repo, "show", "main:src/W12.txt") == "W12"


def _worker_runs(tag_prefix: str, plan_id: str) -> list[int]:
    """Processes of the cluster (their tag starts with tag_prefix) running worker plan_id: forked by
    a node's warm helper (named `worker ID`, as the local pool names its workers), or `worker run p ID`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        ours = any(e.startswith(f"BOSS_CLUSTER_TAG={tag_prefix}".encode()) for e in env)
        if ours and (comm == f"worker {plan_id}" or cmd[-3:-1] == [b"p", plan_id.encode()]):
            found.append(int(entry.name))
    return found


def test_a_running_worker_is_followed_live_and_ctrl_c_stops_it_on_its_node(cluster, tmp_path):
    repo = make_repo(tmp_path / "boss", FILES)
    steps = [{"shell": ["rm -rf build"], "sleep": 60, "write": {"src/W1.txt": "W1"}}]
    slow = worker("W1", test="test -f src/W1.txt", steps=steps)
    paths, _ = make_plan(repo, [slow, worker("W2", depends_on=["W1"])])
    remote = remote_of(tmp_path, repo)
    engine = ("--engine", "dask", "--scheduler", cluster.address, "--remote", str(remote))
    proc = subprocess.Popen(
        ["bash", str(paths.run_script), *engine], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not _worker_runs(cluster.tag, "W1"):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.2)
    # The node publishes the running worker's status: the Boss's follows it (iteration, event, heartbeat).
    deadline = time.monotonic() + 30
    while not (shown := st.read(paths.status("W1"))).heartbeat or shown.iteration < 1:
        assert time.monotonic() < deadline, shown
        time.sleep(0.2)
    assert (
        shown.state == "RUNNING" and shown.pid not in (0, proc.pid) and shown.worktree == ""
    )  # the pool's pid
    assert not shown.last_event.startswith("submitted"), shown
    assert "RUNNING" in boss("status", "p", cwd=repo, check=None).stdout
    # Its TIER 3 request reaches the Boss while it still runs, as a local worker's does.
    while "rm -rf build" not in boss("approvals", "p", cwd=repo, check=None).stdout:
        assert time.monotonic() < deadline, boss("approvals", "p", cwd=repo, check=None).stdout
        time.sleep(0.3)
    assert _worker_runs(cluster.tag, "W1")
    os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the script's process group
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    w1 = st.read(paths.status("W1"))
    assert w1.state == "FAILED" and w1.reason.startswith("interrupted"), w1
    assert st.read(paths.status("W2")) is None or st.read(paths.status("W2")).state != "RUNNING"
    deadline = time.monotonic() + 20
    while _worker_runs(cluster.tag, "W1"):  # the node's worker got SIGTERM from the stop event
        assert time.monotonic() < deadline, "the worker on the node still runs"
        time.sleep(0.2)


def test_a_boss_killed_and_started_again_reattaches_to_its_running_task(cluster, tmp_path):
    """run_workers.sh and its pool SIGKILLed while W1 runs on a node: the task goes on (the pool
    published it), the worker reads CRASHED here meanwhile; the script started again takes the
    task back instead of running W1 again, records its result and runs W2."""
    repo = make_repo(tmp_path / "boss", FILES)
    slow = worker("W1", test="test -f src/W1.txt", steps=[{"sleep": 6, "write": {"src/W1.txt": "W1"}}])
    paths, _ = make_plan(repo, [slow, worker("W2", depends_on=["W1"])])
    remote = remote_of(tmp_path, repo)
    engine = ("--engine", "dask", "--scheduler", cluster.address, "--remote", str(remote))
    first = subprocess.Popen(
        ["bash", str(paths.run_script), *engine], cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not _worker_runs(cluster.tag, "W1"):
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)  # the script, its pool and its live view
    first.wait(timeout=10)
    time.sleep(0.5)
    assert "CRASHED" in boss("status", "p", cwd=repo, check=None).stdout
    assert _worker_runs(cluster.tag, "W1")  # still running on its node
    res = run_script(paths, *engine)
    assert res.returncode == 0, (res.stdout, res.stderr)
    events = [e for e in statelog.read(paths.log) if e.worker == "W1"]
    assert [e.action for e in events].count("start") == 1, [e.line() for e in events]  # one run, not two
    assert any(e.action == "dask" and e.result.startswith("reattached") for e in events)
    assert st.read(paths.status("W2")).state == "SUCCESS"
    assert not (paths.worker_dir("W1") / "dask-task.json").exists()


def test_a_task_run_again_starts_from_the_remote_not_from_what_was_published(cluster, tmp_path):
    """A task is fixed when the Boss submits it. Run again by Dask (its node lost after its run
    pushed after all), the values it names may be stale: its second start fetches, starts from
    what the first run pushed, and its push holds. The mark of a first start goes when the Boss
    forgets the task."""
    from distributed import Client

    from boss.core.config import load_config
    from worker.engine import live, node
    from worker.engine.dask_pool import DaskPool

    repo = make_repo(tmp_path / "boss", FILES)
    steps = [{"run": "echo $$-$RANDOM > src/W1.txt"}]  # each run its own commit: its push is judged
    paths, m = make_plan(repo, [worker("W1", test="test -f src/W1.txt", steps=steps)])
    remote = remote_of(tmp_path, repo)
    events = os.open(os.devnull, os.O_WRONLY)
    try:
        with Client(cluster.address, timeout=30, set_as_default=False) as client:
            pool = DaskPool(paths, m, load_config(repo), events, client, str(remote))
            task = dict(pool._task("W1"), stop=f"boss-test-{uuid.uuid4().hex[:8]}-stop")
            here = sorted(client.scheduler_info()["workers"])[0]  # both starts on one node, one mirror

            def start() -> dict:
                future = client.submit(
                    node.run_task, task, resources={"AGENT": 1}, workers=[here], pure=False
                )
                return future.result(timeout=180)

            first = start()
            assert first["code"] == 0 and not first["refused"], first["output"]
            second = start()  # the same task again, as Dask starts it after losing its node
            assert not second["refused"], second["output"]
            assert f"{task['stop']}-started" in held_by_scheduler(cluster.address)
            live.forget(client, task["stop"])  # its messages reach the scheduler in a moment
            deadline = time.monotonic() + 20
            while f"{task['stop']}-started" in held_by_scheduler(cluster.address):
                assert time.monotonic() < deadline, "the mark of a first start stayed at the scheduler"
                time.sleep(0.2)
    finally:
        os.close(events)
