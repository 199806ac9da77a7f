"""A test run of the merge ceremony on a cluster node: the Dask task `boss merge --engine dask`
submits for each test slot run (worker/engine/ceremony_slots.py).

The node fetches its mirror of the shared remote (worker.engine.node.mirror), where the Boss
published the candidate's commit, and runs the test in a slot of its own: a repository in its
local folder, `boss-slots/<ceremony>/<n>/`, held under a lock while a run uses it and kept for
the next run of the same ceremony (tracked files checked out as committed, untracked ones kept,
as in the Boss's own slots). A new slot gets the manifest's copied files and the plan's setup
first. The test itself runs through boss.core.testrun.execute, as at the Boss: in the project's
sandbox, judged by its exit code and its junit report. What comes back: the run's figures, its
log (bounded) and the node's name.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from boss.core import git, proctree, sandbox, testrun
from boss.core.proc import run_shell
from worker.engine.node import here, mirror
from worker.engine.refs import remote_git

SLOTS = "boss-slots"
MAX_LOG = 4 * 1024 * 1024  # the most of a run's log that comes back (its end)
STOP_POLL = 1.0  # seconds between looks at the Boss's stop event


def run_test(task: dict[str, Any]) -> dict[str, Any]:
    """Run one test of the ceremony here: {exit_code, elapsed, failures, timed_out, log, node},
    or {error, node} when the slot's setup failed."""
    root, name = here()
    cache = mirror(task["remote"], root)
    with _slot(root / SLOTS / task["session"], cache) as (repo, fresh):
        spec = f"+{task['ref']}:refs/boss-slot/candidate"
        remote_git(repo, "fetch", "--quiet", "--no-tags", "--", str(cache), spec)
        git.git(repo, "checkout", "--quiet", "--force", "--detach", task["commit"])
        if fresh:
            failed = _setup(repo, task)
            if failed:
                return {"error": failed, "node": name}
        log = repo.parent / f"{repo.name}.run.log"
        env = dict(os.environ)
        if task["kind"] == "acc":  # what the worker's own run gave its test, here
            env.update(BOSS_PLAN=task["plan"], BOSS_WORKER=task["worker"])
            env.update(BOSS_WORKTREE=str(repo), BOSS_REPO=str(repo))
        owner = proctree.owner(str(repo), task["plan"], "", "ceremony")
        with _stoppable(task.get("stop", "")) as on_start:
            ran = testrun.execute(
                task["command"], repo, env, log, sandbox.resolve(task["sandbox"]), task["limit"],
                bool(task["network"]), int(task["log_cap"]), owner, on_start,
            )  # fmt: skip
        data = log.read_bytes()[-MAX_LOG:] if log.is_file() else b""
        log.unlink(missing_ok=True)
    return {
        "exit_code": ran.exit_code, "elapsed": ran.elapsed, "failures": ran.failures,
        "timed_out": ran.timed_out, "log": data, "node": name,
    }  # fmt: skip


@contextlib.contextmanager
def _slot(folder: Path, cache: Path) -> Iterator[tuple[Path, bool]]:
    """A free slot of this ceremony on this node, held while the run uses it: (its repository,
    whether it is new and needs its setup). A slot whose setup never finished is made again."""
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    while True:
        handle = (folder / f"{n}.lock").open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            n += 1
            continue
        break
    try:
        repo, ready = folder / str(n), folder / f"{n}.ready"
        fresh = not ready.is_file()
        if fresh:
            shutil.rmtree(repo, ignore_errors=True)
            repo.mkdir()
            git.git(repo, "init", "--quiet", "--initial-branch=boss-node/unborn")  # no branch a fetch moves
            (repo / ".git" / "objects" / "info" / "alternates").write_text(str(cache / "objects") + "\n")
        yield repo, fresh
    finally:
        handle.close()


def _setup(repo: Path, task: dict[str, Any]) -> str:
    """A new slot's copied files and the plan's setup; "" when ready, else why not (one line)."""
    for rel, data in task["copy"].items():
        parts = PurePosixPath(rel).parts
        if rel.startswith("/") or not parts or any(p in ("..", ".", "") for p in parts) or parts[0] == ".git":
            continue  # the Boss ships none of these
        target = repo.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(bytes(data))
    if task["setup"].strip():
        log = repo.parent / f"{repo.name}.setup.log"
        jail = sandbox.resolve(task["sandbox"])
        with jail.confine(repo, writable=[repo], network=True, prefix="boss-merge-") as confine:
            outcome = run_shell(
                task["setup"], cwd=repo, env=os.environ, log_path=log, confine=confine,
                log_cap=int(task["log_cap"]), owner=proctree.owner(str(repo), task["plan"], "", "setup"),
            )  # fmt: skip
        if outcome.exit_code != 0:
            tail = log.read_bytes()[-300:].decode(errors="replace").strip() if log.is_file() else ""
            return f"setup failed in a test slot (exit {outcome.exit_code}): {' '.join(tail.split())}"
    (repo.parent / f"{repo.name}.ready").touch()
    return ""


@contextlib.contextmanager
def _stoppable(name: str) -> Iterator[testrun.OnStart]:
    """An on_start that remembers the run's process group, and a thread that stops it (SIGTERM)
    when the Boss sets the Dask event `name` (the slot's run was dropped)."""
    group: list[int] = []
    done = threading.Event()

    def watch() -> None:
        try:
            from distributed import Event, get_worker

            get_worker()
            event = Event(name)  # type: ignore[no-untyped-call]
        except (ImportError, ValueError):
            return  # outside a cluster: nothing can stop it but its limit
        while not done.is_set():
            if event.wait(STOP_POLL):  # type: ignore[no-untyped-call]
                for pgid in group:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(pgid, signal.SIGTERM)
                return

    watcher = threading.Thread(target=watch, name="boss-slot-stop", daemon=True)
    if name:
        watcher.start()
    try:
        yield group.append
    finally:
        done.set()


def sweep(prefix: str, keep: str, dask_worker: Any = None) -> list[str]:
    """On each node (client.run): remove the slots of this plan's earlier ceremonies (folders
    `boss-slots/<prefix>*` but keep) that no run holds; the folders removed."""
    root = Path(dask_worker.local_directory) if dask_worker is not None else here()[0]
    removed = []
    for folder in sorted((root / SLOTS).glob(f"{prefix}*")):
        if folder.name == keep or not folder.is_dir():
            continue
        held = []
        for lock in folder.glob("*.lock"):
            with lock.open("a") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    held.append(lock)
        if not held:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed
