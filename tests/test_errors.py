"""Every error in the catalogue (boss/core/error_catalogue.py, the README's "Errors"), through the real CLI.

Each entry has a scenario here that makes the situation in a real temporary repository and
runs the real command. The message must start with `Error:`, match the catalogue's message
(which names the file, field or worker and says what to do), come with the catalogue's exit
code, and show no traceback. Entries whose message is still to be improved are expected to
fail (strict), so fixing the message flips them.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from conftest import boss, git, make_repo, worker_cmd, write_files

from boss.core import error_catalogue as cat

Result = subprocess.CompletedProcess[str]

PLAN_MD = """\
# Alpha
Do alpha.

## W1: first
- scope: ^src/
- test: false
- agent: scripted

Work on src.

## W2: second
- scope: ^tests/
- depends on: W1
- test: false
- agent: scripted

Work on tests.
"""

# Entries whose message lacks something a person needs; the reason says what to change.
TO_IMPROVE: dict[str, str] = {}
# Progress a command rightly prints on stderr before it fails (the planner ran, then failed).
PROGRESS = {"planner-failed": "Asking ", "planner-invalid": "Asking "}
# Scenarios running several commands where only the first must show the catalogue's message.
FIRST_ONLY = {"usage"}


def new_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"README.md": "# r\n", "src/a.py": "x = 1\n", "tests/t.txt": "t\n"})


def plan_repo(tmp_path: Path, md: str = PLAN_MD) -> Path:
    repo = new_repo(tmp_path)
    (repo / "P.md").write_text(md)
    boss("plan", "--from", "P.md", cwd=repo)
    return repo


def validate(tmp_path: Path, change: Callable[[dict], None]) -> list[Result]:
    repo = new_repo(tmp_path)
    data = {
        "version": 1,
        "plan": "p",
        "base": "main",
        "workers": [
            {"id": "W1", "title": "a", "scope": "^a/", "test": "x"},
            {"id": "W2", "title": "b", "scope": "^b/", "test": "x"},
        ],
    }
    change(data)
    (repo / "m.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return [boss("validate", "m.yaml", cwd=repo, check=None)]


def w(data: dict, index: int = 0) -> dict:
    return data["workers"][index]


@contextmanager
def flocked(path: Path) -> Iterator[None]:
    """Hold the lock a running command would hold (flock(2) on the sidecar file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def run(*args: str, cwd: Path) -> Result:
    return boss(*args, cwd=cwd, check=None)


# --- scenarios, one per catalogue entry ---------------------------------------------------


def s_not_a_repo(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "P.md").write_text(PLAN_MD)
    return [run("status", cwd=plain), run("plan", "--from", "P.md", cwd=plain)]


def s_no_commits(tmp_path):
    repo = tmp_path / "empty"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "P.md").write_text(PLAN_MD)
    return [run("plan", "--from", "P.md", cwd=repo)]


def s_no_plan(tmp_path):
    repo = new_repo(tmp_path)
    return [run("status", cwd=repo), run("merge", cwd=repo), run("log", cwd=repo)]


def s_several_plans(tmp_path):
    repo = plan_repo(tmp_path)
    (repo / "Q.md").write_text(PLAN_MD.replace("# Alpha", "# Beta"))
    boss("plan", "--from", "Q.md", cwd=repo)
    return [run("status", cwd=repo), run("retry", "W1", cwd=repo)]


def s_unknown_plan(tmp_path):
    repo = plan_repo(tmp_path)
    return [run("status", "nope", cwd=repo), run("retry", "W1", "--plan", "nope", cwd=repo)]


def s_unknown_worker(tmp_path):
    repo = plan_repo(tmp_path)
    return [
        run("log", "--worker", "NOPE", cwd=repo),
        run("retry", "NOPE", cwd=repo),
        run("quarantine", "show", "NOPE", cwd=repo),
        worker_cmd("restore", "NOPE", cwd=repo, check=None),
    ]


def s_plan_mode(tmp_path):
    repo = new_repo(tmp_path)
    (repo / "P.md").write_text(PLAN_MD)
    return [run("plan", cwd=repo), run("plan", "--from", "P.md", "--agent", "claude", cwd=repo)]


def s_plan_task_missing(tmp_path):
    return [run("plan", "--agent", "claude", cwd=new_repo(tmp_path))]


def s_plan_task_with_from(tmp_path):
    repo = new_repo(tmp_path)
    (repo / "P.md").write_text(PLAN_MD)
    return [run("plan", "--from", "P.md", "a task", cwd=repo)]


def s_plan_test_without_split(tmp_path):
    repo = new_repo(tmp_path)
    (repo / "P.md").write_text(PLAN_MD)
    return [run("plan", "--from", "P.md", "--test", "pytest", cwd=repo)]


def s_split_without_test(tmp_path):
    return [run("plan", "--split", "src", "a task", cwd=new_repo(tmp_path))]


def s_split_no_match(tmp_path):
    return [run("plan", "--split", "nomatch/*", "a task", "--test", "true", cwd=new_repo(tmp_path))]


def s_plan_file_unreadable(tmp_path):
    return [run("plan", "--from", "nothere.md", cwd=new_repo(tmp_path))]


def s_plan_exists(tmp_path):
    return [run("plan", "--from", "P.md", cwd=plan_repo(tmp_path))]


def s_detached_head(tmp_path):
    repo = new_repo(tmp_path)
    git(repo, "checkout", "-q", "--detach")
    (repo / "P.md").write_text(PLAN_MD)
    return [run("plan", "--from", "P.md", cwd=repo)]


def s_base_missing(tmp_path):
    repo = new_repo(tmp_path)
    (repo / "P.md").write_text(PLAN_MD)
    return [run("plan", "--from", "P.md", "--base", "nobranch", cwd=repo)]


def s_manifest_unknown_key(tmp_path):
    return validate(tmp_path, lambda d: w(d).update(colour="red"))


def s_manifest_missing_field(tmp_path):
    return validate(tmp_path, lambda d: w(d).pop("test"))


def s_manifest_bad_value(tmp_path):
    return validate(tmp_path, lambda d: w(d).update(max_iterations=0))


def s_manifest_bad_version(tmp_path):
    return validate(tmp_path, lambda d: d.update(version=2))


def s_manifest_duplicate_id(tmp_path):
    return validate(tmp_path, lambda d: w(d, 1).update(id="W1"))


def s_manifest_unknown_dependency(tmp_path):
    return validate(tmp_path, lambda d: w(d, 1).update(depends_on=["W9"]))


def s_manifest_self_dependency(tmp_path):
    return validate(tmp_path, lambda d: w(d).update(depends_on=["W1"]))


def s_manifest_cycle(tmp_path):
    def cycle(d: dict) -> None:
        d["workers"] = [
            {"id": a, "title": a, "scope": f"^{a}/", "test": "x", "depends_on": [b]}
            for a, b in (("A", "B"), ("B", "C"), ("C", "A"))
        ]

    return validate(tmp_path, cycle)


def s_manifest_group_apart(tmp_path):
    def apart(d: dict) -> None:
        d["workers"] = [
            {"id": a, "title": a, "scope": f"^{a}/", "test": "x", **extra}
            for a, extra in (("A", {"group": "g"}), ("X", {"depends_on": "A"}),
                             ("B", {"group": "g", "depends_on": "X"}))
        ]  # fmt: skip

    return validate(tmp_path, apart)


def s_manifest_bad_regex(tmp_path):
    return validate(tmp_path, lambda d: w(d).update(scope="^src/("))


def s_manifest_empty_scope(tmp_path):
    return validate(tmp_path, lambda d: w(d).update(scope=["^a/", ""]))


def s_manifest_bad_branch(tmp_path):
    return validate(tmp_path, lambda d: w(d).update(branch="feat/a..b"))


def s_manifest_branch_is_base(tmp_path):
    return validate(tmp_path, lambda d: w(d).update(branch="main"))


def s_manifest_shared_branch(tmp_path):
    return validate(tmp_path, lambda d: [w(d, i).update(branch="feat/same") for i in (0, 1)])


def s_manifest_bad_slug(tmp_path):
    return validate(tmp_path, lambda d: d.update(plan="Bad_Slug"))


def s_manifest_bad_id(tmp_path):
    return validate(tmp_path, lambda d: w(d).update(id="9bad"))


def s_invalid_yaml(tmp_path):
    repo = plan_repo(tmp_path)
    manifest = repo / ".boss/plans/alpha/manifest.yaml"
    good = manifest.read_text()
    manifest.write_text(good + "workers: [\n")
    results = [run("status", cwd=repo)]
    manifest.write_text(good)
    (repo / ".boss/config.yaml").write_text("jobs: [\n")
    results.append(run("status", cwd=repo))
    (repo / "y.yaml").write_text("plan: p\n  base: main: x\n")
    results.append(run("validate", "y.yaml", cwd=repo))
    return results


def md(tmp_path, text: str) -> list[Result]:
    repo = new_repo(tmp_path)
    (repo / "b.md").write_text(text)
    return [run("plan", "--from", "b.md", cwd=repo)]


def s_md_no_title(tmp_path):
    return md(tmp_path, "Just some text.\n")


def s_md_no_workers(tmp_path):
    return md(tmp_path, "# Title\nThe task.\n")


def s_md_bad_heading(tmp_path):
    return md(tmp_path, "# T\ntext\n## W1 x\n- scope: ^a/\n")


def s_md_bad_field(tmp_path):
    return md(tmp_path, "# T\ntext\n## W1: x\n- scope: ^a/\n- tset: false\n- test: x\n")


def config(tmp_path, text: str) -> list[Result]:
    repo = plan_repo(tmp_path)
    (repo / ".boss/config.yaml").write_text(text)
    return [run("status", cwd=repo), run("plan", "--from", "P.md", "--force", cwd=repo)]


def s_config_unknown_key(tmp_path):
    return config(tmp_path, "agnets: {}\n")


def s_config_agent_no_command(tmp_path):
    return config(tmp_path, "agents:\n  mybot: {env: {A: 1}}\n")


def s_config_bad_value(tmp_path):
    return config(tmp_path, "jobs: -1\n")


def s_config_sandbox(tmp_path):
    return config(tmp_path, "sandbox: sometimes\n")


def s_ui_extra_missing(tmp_path):
    repo = plan_repo(tmp_path)
    blocked = tmp_path / "blocked" / "starlette"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('not installed', name='starlette')\n")
    path = os.pathsep.join(p for p in (str(blocked.parent), os.environ.get("PYTHONPATH", "")) if p)
    return [boss("ui", "--no-browser", cwd=repo, check=None, env={"PYTHONPATH": path})]


def s_ui_port_busy(tmp_path):
    import socket

    repo = plan_repo(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        return [
            run("ui", "--no-browser", "--host", "127.0.0.1", "--port", str(taken.getsockname()[1]), cwd=repo)
        ]


def s_ui_host_not_loopback(tmp_path):
    return [run("ui", "--no-browser", "--host", "0.0.0.0", cwd=plan_repo(tmp_path))]  # noqa: S104


def s_sandbox_required(tmp_path):
    repo = plan_repo(tmp_path)
    env = {"BOSS_SANDBOX": "required", "BOSS_BWRAP": "/nonexistent/bwrap"}
    (repo / ".boss/config.yaml").write_text("sandbox: required\n")
    return [
        worker_cmd("run", "alpha", "W1", cwd=repo, check=None, env={"BOSS_BWRAP": "/nonexistent/bwrap"}),
        worker_cmd("run", "alpha", "W1", cwd=repo, check=None, env=env),
    ]


def s_sandbox_real_cli(tmp_path):
    repo = plan_repo(tmp_path, PLAN_MD.replace("- agent: scripted", "- agent: claude", 1))
    env = {"BOSS_SANDBOX": "auto", "BOSS_BWRAP": "/nonexistent/bwrap"}
    return [worker_cmd("run", "alpha", "W1", cwd=repo, check=None, env=env)]


def s_unknown_agent_planner(tmp_path):
    return [run("plan", "--agent", "nosuch", "do x", cwd=new_repo(tmp_path))]


def s_unknown_agent_worker(tmp_path):
    repo = plan_repo(tmp_path, PLAN_MD.replace("- agent: scripted", "- agent: nosuch", 1))
    return [
        run("retry", "W1", cwd=repo),
        worker_cmd("run", "alpha", "W1", cwd=repo, check=None),
        run("validate", cwd=repo),
    ]


def s_scripted_cannot_plan(tmp_path):
    return [run("plan", "--agent", "scripted", "do x", cwd=new_repo(tmp_path))]


def planner_repo(tmp_path, name: str, command: str) -> Path:
    repo = new_repo(tmp_path)
    write_files(repo, {".boss/config.yaml": yaml.safe_dump({"agents": {name: {"command": command}}})})
    return repo


def s_planner_failed(tmp_path):
    repo = planner_repo(tmp_path, "badplanner", "echo 'not logged in' >&2; exit 3")
    return [run("plan", "--agent", "badplanner", "do x", cwd=repo)]


def s_planner_invalid(tmp_path):
    repo = planner_repo(tmp_path, "chatty", "echo 'I would refactor everything.'")
    return [run("plan", "--agent", "chatty", "do x", cwd=repo)]


def s_dependency_not_done(tmp_path):
    return [worker_cmd("run", "alpha", "W2", cwd=plan_repo(tmp_path), check=None)]


def _failed_with_hand_commit(tmp_path):
    """W1 never passes (test: false); a person then commits on its branch."""
    repo = plan_repo(tmp_path)
    worker_cmd("run", "alpha", "W1", cwd=repo, check=1)
    wt = repo / ".worktrees/alpha/W1"
    (wt / "src/b.py").write_text("y = 2\n")
    git(wt, "add", "-A")
    git(wt, "commit", "-q", "-m", "finish by hand")
    return repo


def s_hand_commits(tmp_path):
    repo = _failed_with_hand_commit(tmp_path)
    return [run("retry", "W1", cwd=repo)]


def s_worker_dropped(tmp_path):
    repo = plan_repo(tmp_path)
    boss("drop", "W1", "--reason", "not wanted", cwd=repo)
    return [run("retry", "W1", cwd=repo)]


def s_not_dropped(tmp_path):
    return [run("drop", "W1", "--undo", cwd=plan_repo(tmp_path))]


def s_worker_busy(tmp_path):
    repo = plan_repo(tmp_path)
    with flocked(repo / ".boss/plans/alpha/workers/W1/run.lock"):
        return [
            worker_cmd("run", "alpha", "W1", cwd=repo, check=None),
            run("retry", "W1", cwd=repo),
        ]


def s_context_missing(tmp_path):
    repo = plan_repo(tmp_path)
    (repo / ".boss/plans/alpha/workers/W1/CONTEXT.md").unlink()
    return [worker_cmd("run", "alpha", "W1", cwd=repo, check=None)]


def s_cost_cap_without_cost(tmp_path):
    md = PLAN_MD.replace("- agent: scripted\n", "- agent: codex\n- max_cost_usd: 0.50\n")
    repo = plan_repo(tmp_path, md)
    return [worker_cmd("run", "alpha", "W1", cwd=repo, check=None), run_workers(repo)]


def run_workers(repo: Path, *args: str) -> Result:
    script = repo / ".boss/plans/alpha/run_workers.sh"
    return subprocess.run(["bash", str(script), *args], cwd=repo, capture_output=True, text=True)


def s_only_unknown(tmp_path):
    return [run_workers(plan_repo(tmp_path), "--only", "NOPE")]


def s_script_usage(tmp_path):
    return [run_workers(plan_repo(tmp_path), "--bogus")]


def bare_remote(repo: Path) -> Path:
    remote = repo.parent / "remote.git"
    git(repo.parent, "clone", "-q", "--bare", str(repo), str(remote))
    return remote


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


def s_dask_needs_address(tmp_path):
    return [run_workers(plan_repo(tmp_path), "--engine", "dask", "--remote", "/srv/x.git")]


def s_dask_remote_unreadable(tmp_path):
    repo = plan_repo(tmp_path)
    address = f"tcp://127.0.0.1:{free_port()}"
    return [
        run_workers(repo, "--engine", "dask", "--scheduler", address, "--remote", str(tmp_path / "nope.git"))
    ]


def s_dask_extra_missing(tmp_path):
    repo = plan_repo(tmp_path)
    blocked = tmp_path / "blocked" / "distributed"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('not installed', name='distributed')\n")
    path = os.pathsep.join(p for p in (str(blocked.parent), os.environ.get("PYTHONPATH", "")) if p)
    script = repo / ".boss/plans/alpha/run_workers.sh"
    args = ("--engine", "dask", "--scheduler", "tcp://127.0.0.1:1", "--remote", str(bare_remote(repo)))
    env = {**os.environ, "PYTHONPATH": path}
    return [subprocess.run(["bash", str(script), *args], cwd=repo, capture_output=True, text=True, env=env)]


def s_dask_scheduler_unreachable(tmp_path):
    repo = plan_repo(tmp_path)
    address = f"tcp://127.0.0.1:{free_port()}"
    return [run_workers(repo, "--engine", "dask", "--scheduler", address, "--remote", str(bare_remote(repo)))]


@contextmanager
def lone_scheduler(tmp_path: Path) -> Iterator[str]:
    """A real Dask scheduler on loopback with no node; its address."""
    pytest.importorskip("distributed")
    info = tmp_path / "scheduler.json"
    dask = str(Path(sys.executable).parent / "dask")
    args = [
        dask,
        "scheduler",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--no-dashboard",
        "--scheduler-file",
        str(info),
    ]
    scheduler = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (info.is_file() and info.read_text().strip()):
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.1)
        yield json.loads(info.read_text())["address"]
    finally:
        scheduler.terminate()
        scheduler.wait(timeout=30)


def s_dask_no_agent_nodes(tmp_path):
    repo = plan_repo(tmp_path)
    with lone_scheduler(tmp_path) as address:
        return [
            run_workers(repo, "--engine", "dask", "--scheduler", address, "--remote", str(bare_remote(repo)))
        ]


def s_dask_node_without_boss(tmp_path):
    repo = plan_repo(tmp_path)
    blocked = tmp_path / "blocked" / "worker"  # the node's Python finds no boss worker package
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('not installed', name='worker')\n")
    dask = str(Path(sys.executable).parent / "dask")
    with lone_scheduler(tmp_path) as address:
        env = {**os.environ, "PYTHONPATH": str(blocked.parent)}
        args = [dask, "worker", address, "--host", "127.0.0.1", "--no-dashboard", "--nthreads", "1"]
        node = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            import distributed

            with distributed.Client(address, timeout=30, set_as_default=False) as client:
                client.wait_for_workers(1, timeout=60)
            remote = str(bare_remote(repo))
            return [run("merge", "--engine", "dask", "--scheduler", address, "--remote", remote, cwd=repo)]
        finally:
            node.terminate()
            node.wait(timeout=30)


def s_dask_no_nodes(tmp_path):
    repo = plan_repo(tmp_path)
    with lone_scheduler(tmp_path) as address:
        return [
            run(
                "merge",
                "--engine",
                "dask",
                "--scheduler",
                address,
                "--remote",
                str(bare_remote(repo)),
                cwd=repo,
            )
        ]


def running_status(repo: Path, worker_id: str = "W1") -> None:
    """A worker's status says RUNNING, in a live process (this one) with a fresh heartbeat."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    status = {"version": 1, "plan": "alpha", "id": worker_id, "state": "RUNNING", "pid": os.getpid(),
              "heartbeat": now, "started_at": now, "branch": f"feat/{worker_id.lower()}"}  # fmt: skip
    (repo / f".boss/plans/alpha/workers/{worker_id}/status.json").write_text(json.dumps(status))


def s_retry_dependent_running(tmp_path):
    repo = plan_repo(tmp_path)
    running_status(repo, "W2")
    return [run("retry", "W1", cwd=repo)]


def s_redo_nothing(tmp_path):
    repo = plan_repo(tmp_path)
    return [run("retry", "W1", "--onto", cwd=repo)]


def s_redo_dependency_not_in_base(tmp_path):
    repo = plan_repo(tmp_path)
    status = {"version": 1, "plan": "alpha", "id": "W2", "state": "FAILED", "reason": "gave up"}
    (repo / ".boss/plans/alpha/workers/W2/status.json").write_text(json.dumps(status))
    return [run("retry", "W2", "--onto", cwd=repo)]


def s_redo_not_on_base(tmp_path):
    repo = plan_repo(tmp_path)
    git(repo, "branch", "side")
    git(repo, "commit", "-q", "--allow-empty", "-m", "main moves on")
    git(repo, "checkout", "-q", "side")
    git(repo, "commit", "-q", "--allow-empty", "-m", "side")
    return [run("retry", "W1", "--onto", "side", cwd=repo), run("retry", "W1", "--onto", "nope", cwd=repo)]


def s_run_while_running(tmp_path):
    repo = plan_repo(tmp_path)
    running_status(repo)
    return [run_workers(repo)]


def s_pool_stopped(tmp_path):
    repo = plan_repo(tmp_path)
    fake = tmp_path / "fake-worker"
    # A pool that says it is ready and dies before it reports the worker it was told to run.
    fake.write_text(
        "#!/usr/bin/env bash\n[[ $1 == pool ]] && { echo ready >&3; read -r _; exit 9; }\nexit 0\n"
    )
    fake.chmod(0o755)
    script = repo / ".boss/plans/alpha/run_workers.sh"
    env = {**os.environ, "BOSS_WORKER_BIN": str(fake)}
    return [
        subprocess.run(
            ["bash", str(script), "--only", "W1"], cwd=repo, capture_output=True, text=True, env=env
        )
    ]


def s_pool_events_fd(tmp_path):
    return [worker_cmd("pool", "alpha", "--events-fd", "97", cwd=plan_repo(tmp_path), check=None)]


def s_render_running_changed(tmp_path):
    repo = plan_repo(tmp_path)
    running_status(repo)
    manifest = repo / ".boss/plans/alpha/manifest.yaml"
    manifest.write_text(manifest.read_text().replace("test: 'false'", "test: test -f src/x", 1))
    return [run("render", cwd=repo)]


def s_render_running_removed(tmp_path):
    repo = plan_repo(tmp_path)
    running_status(repo, "W2")
    manifest = repo / ".boss/plans/alpha/manifest.yaml"
    data = yaml.safe_load(manifest.read_text())
    data["workers"] = data["workers"][:1]
    manifest.write_text(yaml.safe_dump(data))
    return [run("render", cwd=repo)]


def s_corrupted_status(tmp_path):
    repo = plan_repo(tmp_path)
    bad = {"version": 1, "plan": "alpha", "id": "W1", "state": "RUNNING", "pid": "abc", "heartbeat": 7}
    (repo / ".boss/plans/alpha/workers/W1/status.json").write_text(json.dumps(bad))
    return [run("status", cwd=repo)]


def s_demo_not_empty(tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "precious.txt").write_text("keep me")
    return [run("demo", str(busy), cwd=tmp_path)]


def s_merge_busy(tmp_path):
    repo = plan_repo(tmp_path)
    with flocked(repo / ".boss/plans/alpha/merge/merge.lock"):
        return [run("merge", cwd=repo)]


def s_not_quarantined(tmp_path):
    repo = plan_repo(tmp_path)
    return [
        run("quarantine", "accept", "W1", "-m", "looks fine", cwd=repo),
        run("quarantine", "reject", "W1", "-m", "no", cwd=repo),
        run("quarantine", "salvage", "W1", cwd=repo),
    ]


def s_diff_not_started(tmp_path):
    repo = plan_repo(tmp_path)
    return [run("diff", "W1", cwd=repo), run("diff", "W1", "--stat", "--plan", "alpha", cwd=repo)]


def s_diff_no_branch(tmp_path):
    repo = plan_repo(tmp_path)
    git(repo, "update-ref", "refs/boss/alpha/W1/start", "HEAD")
    return [run("diff", "W1", cwd=repo)]


def s_approval_unknown(tmp_path):
    repo = plan_repo(tmp_path)
    return [run("approve", "NOPE", cwd=repo), run("deny", "NOPE", "--plan", "alpha", cwd=repo)]


def s_policy_invalid(tmp_path):
    repo = plan_repo(tmp_path)
    (repo / ".boss/policy.yaml").write_text("version: 1\nrules:\n  - id: deploy\n    tier: 9\n")
    return [worker_cmd("classify", "--", "ls", cwd=repo, check=None)]


def s_classify_usage(tmp_path):
    repo = new_repo(tmp_path)
    return [
        worker_cmd("classify", cwd=repo, check=None),
        worker_cmd("classify", "--json", cwd=repo, check=None),
    ]


def s_classify_words(tmp_path):
    return [worker_cmd("classify", "rm", "x", cwd=new_repo(tmp_path), check=None)]


def s_restore_no_worktree(tmp_path):
    return [worker_cmd("restore", "W1", cwd=plan_repo(tmp_path), check=None)]


def s_usage(tmp_path):
    repo = plan_repo(tmp_path)
    return [
        run("status", "--bogus", cwd=repo),
        run("clean", "alpha", "--all", cwd=repo),
        run("quarantine", "accept", "W1", cwd=repo),
        run("nosuchcommand", cwd=repo),
    ]


def s_git_failed(tmp_path):
    md_text = "# Alpha\nDo.\n\n- max iterations: 1\n- max strategies: 1\n\n## W1: first\n"
    md_text += "- scope: ^src/\n- test: false\n- agent: scripted\n\nWork.\n"
    repo = plan_repo(tmp_path, md_text)
    worker_cmd("run", "alpha", "W1", cwd=repo, check=1)  # gives up at once; its worktree stays
    tree = repo / ".worktrees/alpha/W1"
    hook = {"tool_name": "Bash", "tool_input": {"command": "rm src/a.py"}, "cwd": str(tree)}
    guard = ["guard", "--agent", "claude", "--plan", "alpha", "--worker", "W1"]
    res = subprocess.run([sys.executable, "-m", "worker", *guard], input=json.dumps(hook),
                         cwd=repo, capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 0 and "TIER 2 (checkpoint" in res.stdout, res
    (Path(git(tree, "rev-parse", "--absolute-git-dir")) / "index.lock").touch()  # a crashed git's
    res = worker_cmd("restore", "W1", cwd=repo, check=None)
    assert "stderr: fatal: Unable to create" in res.stderr and "index.lock" in res.stderr
    return [res]


def s_internal_error(tmp_path):
    repo = plan_repo(tmp_path)
    inject = tmp_path / "inject"
    # A fault injected at start-up (sitecustomize): `boss status` meets an exception it does not expect.
    write_files(inject, {"sitecustomize.py": (
        "import boss.cli.status as s\n"
        "def broken(*args, **kwargs):\n"
        "    raise RuntimeError('injected fault')\n"
        "s.status.callback = broken\n"
    )})  # fmt: skip
    path = os.pathsep.join(p for p in (str(inject), os.environ.get("PYTHONPATH", "")) if p)
    res = boss("status", cwd=repo, check=None, env={"PYTHONPATH": path})
    logs = sorted((repo / ".boss").glob("crash-*.log"))
    assert logs, res.stderr
    assert "RuntimeError: injected fault" in logs[-1].read_text()
    assert str(logs[-1]) in res.stderr
    return [res]


# --- boss do, boss undo -------------------------------------------------------------------


def do_repo(tmp_path: Path, *, landed: bool = True) -> Path:
    """A repository where a `boss do` landed its fix (or, with landed=False, failed)."""
    from test_do import FIX, calc_repo, do, task

    repo = calc_repo(tmp_path)
    do(repo, task("Fix add", FIX if landed else {"print": "nothing"}), check=0 if landed else 1)
    return repo


def commit_file(repo: Path, name: str) -> None:
    (repo / name).write_text("x\n")
    git(repo, "add", name)
    git(repo, "commit", "-qm", name)


def s_do_no_task(tmp_path):
    return [run("do", "--test", "true", cwd=new_repo(tmp_path))]


def s_do_no_test(tmp_path):
    return [run("do", "Fix add", cwd=new_repo(tmp_path))]


def s_do_from_and_task(tmp_path):
    repo = new_repo(tmp_path)
    (repo / "P.md").write_text(PLAN_MD)
    return [run("do", "Fix add", "--from", "P.md", cwd=repo)]


def s_do_from_many(tmp_path):
    repo = new_repo(tmp_path)
    (repo / "P.md").write_text(PLAN_MD)
    return [run("do", "--from", "P.md", cwd=repo)]


def s_do_detached(tmp_path):
    repo = new_repo(tmp_path)
    git(repo, "checkout", "-q", "--detach")
    return [run("do", "Fix add", "--test", "true", cwd=repo)]


def s_do_plan_name(tmp_path):
    return [run("do", "Fix add", "--test", "true", "--plan", "Bad Name", cwd=new_repo(tmp_path))]


def s_do_plan_exists(tmp_path):
    repo = plan_repo(tmp_path)
    return [run("do", "Fix add", "--test", "true", "--plan", "alpha", cwd=repo)]


def s_do_nothing_to_resume(tmp_path):
    repo = new_repo(tmp_path)
    return [run("do", "--retry", cwd=repo), run("undo", cwd=repo)]


def s_do_retry_args(tmp_path):
    return [run("do", "--retry", "Fix add", cwd=new_repo(tmp_path))]


def s_do_not_a_do(tmp_path):
    repo = plan_repo(tmp_path)
    return [run("do", "--retry", "--plan", "alpha", cwd=repo), run("undo", "alpha", cwd=repo)]


def s_do_busy(tmp_path):
    repo = do_repo(tmp_path, landed=False)
    with flocked(repo / ".boss/plans/do-fix-add/do.lock"):
        return [run("do", "--retry", cwd=repo)]


def s_do_worker_running(tmp_path):
    repo = do_repo(tmp_path, landed=False)
    status = repo / ".boss/plans/do-fix-add/workers/W1/status.json"
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    data = {**json.loads(status.read_text()), "state": "RUNNING", "pid": os.getpid(), "heartbeat": now}
    status.write_text(json.dumps(data))
    return [run("do", "--retry", cwd=repo)]


def s_undo_nothing_landed(tmp_path):
    return [run("undo", cwd=do_repo(tmp_path, landed=False))]


def s_undo_done(tmp_path):
    repo = do_repo(tmp_path)
    boss("undo", cwd=repo)
    return [run("undo", cwd=repo)]


def s_undo_moved_since(tmp_path):
    repo = do_repo(tmp_path)
    commit_file(repo, "later.txt")
    return [run("undo", cwd=repo)]


def s_undo_moved_before(tmp_path):
    from test_do import gated, task

    repo = do_repo(tmp_path, landed=False)
    flag = tmp_path / "go"
    second = (
        "do",
        task("Fix add", gated(flag)),
        "--test",
        sys.executable + " check.py",
        "--agent",
        "scripted",
    )
    boss(*second, "--plan", "fix2", cwd=repo, check=1)
    commit_file(repo, "meanwhile.txt")
    flag.write_text("go\n")
    boss("do", "--retry", "--plan", "fix2", cwd=repo)
    return [run("undo", "fix2", cwd=repo)]


def s_undo_dirty(tmp_path):
    repo = do_repo(tmp_path)
    (repo / "src/calc.py").write_text("# mine\n")
    return [run("undo", cwd=repo)]


SCENARIOS: dict[str, Callable[[Path], list[Result]]] = {
    name[2:].replace("_", "-"): fn for name, fn in list(globals().items()) if name.startswith("s_")
}


def _params() -> list:
    params = []
    for e in cat.ENTRIES:
        marks = [pytest.mark.xfail(strict=True, reason=TO_IMPROVE[e.key])] if e.key in TO_IMPROVE else []
        params.append(pytest.param(e, id=e.key, marks=marks))
    return params


def test_every_entry_has_a_scenario_and_every_scenario_an_entry():
    keys = [e.key for e in cat.ENTRIES]
    assert len(keys) == len(set(keys))
    assert set(keys) == set(SCENARIOS)
    assert set(TO_IMPROVE) <= set(keys)


@pytest.mark.parametrize("entry", _params())
def test_error_through_the_cli(entry: cat.Entry, tmp_path):
    results = SCENARIOS[entry.key](tmp_path)
    assert results
    rx = cat.pattern(entry)
    for n, res in enumerate(results):
        shown = (res.args, res.returncode, res.stdout[-2000:], res.stderr)
        assert res.returncode == entry.exit_code, shown
        stderr = res.stderr
        if entry.key in PROGRESS and stderr.startswith(PROGRESS[entry.key]):
            stderr = stderr.split("\n", 1)[1]
        assert stderr.startswith("Error:"), shown
        assert "Traceback" not in res.stderr + res.stdout, shown
        if n == 0 or entry.key not in FIRST_ONLY:
            assert rx.search(res.stderr), (rx.pattern, shown)


def test_every_error_class_has_an_entry():
    """Each kind of expected error (boss/core/errors.py) is met by at least one catalogue entry."""
    from boss.core import errors

    kinds = {
        errors.InputError: "not-a-repo",
        errors.ManifestError: "manifest-unknown-key",
        errors.ConfigError: "config-unknown-key",
        errors.PlanNotFound: "no-plan",
        errors.StateError: "dependency-not-done",
        errors.AgentError: "planner-failed",
        errors.CommandError: "git-failed",
        errors.GitError: "git-failed",
        errors.SandboxError: "sandbox-required",
    }
    keys = {e.key for e in cat.ENTRIES}
    assert set(kinds.values()) <= keys
    declared = {c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.BossError)}
    assert declared - set(kinds) == {errors.BossError}, "a new kind of error needs a catalogue entry"


def test_the_readme_lists_the_catalogue():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    begin, end = "<!-- errors:begin -->\n", "<!-- errors:end -->"
    assert begin in readme and end in readme
    block = readme.split(begin, 1)[1].split(end, 1)[0]
    assert block.strip() == cat.render().strip(), (
        "README out of date: paste boss.core.error_catalogue.render()"
    )


def test_placeholders_match_any_text_and_the_rest_literally():
    e = cat.Entry("k", "a", "s", 2, "<file>: field x (a.b) <why>", "f")
    rx = cat.pattern(e)
    assert rx.search("Error: m.yaml: field x (a.b) because")
    assert not rx.search("Error: m.yaml: field x (aXb) because")


def test_table_cells_keep_backticks_and_pipes_readable():
    table = cat.render()
    assert "| Situation | Exit | The message | What to do |" in table
    # a message with backticks is one code span (double backticks), a pipe is escaped
    assert "`` Error: <dir>: not inside a git repository (run `git init` first) ``" in table
    assert cat._cell("a | b", code=True) == "`a \\| b`"
