"""A test run of the merge ceremony on a cluster node: the Dask task `boss merge --engine dask`
submits for each test slot run (worker/engine/ceremony_slots.py).

The node fetches its mirror of the shared remote (worker.engine.node.mirror), where the Boss
published the ceremony's base and the candidate's commit, and runs the test in a slot of its own
in its local folder, `boss-slots/<ceremony>/<n>/`, held under a lock while a run uses it and kept
for the next runs of the same ceremony, as the Boss's own slots are: made at the base, given the
manifest's copied files and the plan's setup there, then checked out at each candidate (tracked
files as committed, the untracked ones an earlier run left removed, ignored ones kept: the copies,
excluded in the slot's git folder, and what setup made). The slot's git folder is `<n>.git` beside it, out of
the test's reach (the sandbox lets it write the slot only), and the node's own git names it
explicitly, so nothing a test writes in the slot steers the next checkout; a slot whose git
fails is made again. The test runs through boss.core.testrun.execute, as at the Boss: in the
project's sandbox, judged by its exit code and its junit report. What comes back: the run's
figures, its log (bounded) and the node's name.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from boss.core import git, proctree, sandbox, testrun
from boss.core.errors import GitError
from boss.core.proc import run_shell
from worker.engine.node import borrowing, here, mirror, on_stop, stop_event, write_shipped
from worker.engine.refs import remote_git

SLOTS = "boss-slots"
MAX_LOG = 4 * 1024 * 1024  # the most of a run's log that comes back (its end)


def run_test(task: dict[str, Any]) -> dict[str, Any]:
    """Run one test of the ceremony here: {exit_code, elapsed, failures, timed_out, log, node},
    or {error, node} when the slot's setup failed."""
    root, name = here()
    cache = mirror(task["remote"], root)
    stop = stop_event(task.get("stop", ""))  # looked up here: a thread of its own cannot
    with _slot(root / SLOTS / task["session"]) as slot:
        try:
            failed = _ready(slot, cache, task)
        except GitError:  # the slot's git is broken: made again once, from nothing
            _forget(slot)
            failed = _ready(slot, cache, task)
        if failed:
            return {"error": failed, "node": name}
        log = slot.parent / f"{slot.name}.run.log"
        env = dict(os.environ)
        if task["kind"] == "acc":  # what the worker's own run gave its test, here
            env.update(BOSS_PLAN=task["plan"], BOSS_WORKER=task["worker"])
            env.update(BOSS_WORKTREE=str(slot), BOSS_REPO=str(slot))
        owner = proctree.owner(str(slot), task["plan"], "", "ceremony")
        jail = sandbox.resolve(task["sandbox"])
        with _stoppable(stop, owner) as on_start:
            ran = testrun.execute(
                task["command"], slot, env, log, jail, task["limit"],
                bool(task["network"]), int(task["log_cap"]), owner, on_start,
            )  # fmt: skip
        data = log.read_bytes()[-MAX_LOG:] if log.is_file() else b""
        log.unlink(missing_ok=True)
    return {
        "exit_code": ran.exit_code, "elapsed": ran.elapsed, "failures": ran.failures,
        "timed_out": ran.timed_out, "log": data, "node": name,
        "unconfined": "" if jail.active else jail.describe(),
    }  # fmt: skip


@contextlib.contextmanager
def _slot(folder: Path) -> Iterator[Path]:
    """A free slot of this ceremony on this node (its work tree), held while the run uses it."""
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    while True:
        handle = (folder / f"{n}.lock").open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            handle.close()
            n += 1
    try:
        yield folder / str(n)
    finally:
        handle.close()


def _git_dir(slot: Path) -> Path:
    """The slot's git folder, `<n>.git` beside it: out of the test's reach."""
    return slot.parent / f"{slot.name}.git"


def _git(slot: Path, *args: str) -> None:
    """The node's git in a slot: its git folder and work tree named, never found from the slot."""
    git.git(slot.parent, f"--git-dir={_git_dir(slot)}", f"--work-tree={slot}", *args)


def _ready(slot: Path, cache: Path, task: dict[str, Any]) -> str:
    """The slot at the candidate: made at the base and set up first when new; "" when ready,
    else why the setup failed (one line)."""
    ready = slot.parent / f"{slot.name}.ready"
    fresh = not ready.is_file()
    if fresh:
        _forget(slot)
        slot.mkdir(parents=True)
        borrowing(slot, cache, _git_dir(slot))
    refs = [f"+{task['base_ref']}:refs/boss-slot/base", f"+{task['ref']}:refs/boss-slot/candidate"]
    remote_git(
        slot.parent, f"--git-dir={_git_dir(slot)}", "fetch", "--quiet", "--no-tags", "--", str(cache), *refs
    )
    if fresh:
        _git(slot, "checkout", "--quiet", "--force", "--detach", task["base"])
        failed = _setup(slot, task)
        if failed:
            return failed
        ready.touch()
    _git(slot, "checkout", "--quiet", "--force", "--detach", task["commit"])
    _git(slot, "clean", "-fdq")  # what an earlier run here left (ignored files stay: the copies, setup's)
    return ""


def _forget(slot: Path) -> None:
    """The slot gone, so the next run makes it again."""
    (slot.parent / f"{slot.name}.ready").unlink(missing_ok=True)
    shutil.rmtree(slot, ignore_errors=True)
    shutil.rmtree(_git_dir(slot), ignore_errors=True)


def _setup(slot: Path, task: dict[str, Any]) -> str:
    """A new slot's copied files and the plan's setup, at the base; "" when done, else why not.
    The copies are excluded in the slot's git folder, as here: ignored, they stay between runs."""
    write_shipped(slot, task["copy"])
    if task["copy"]:
        git.add_exclude(slot, [f"/{rel}" for rel in task["copy"] if "\n" not in rel], _git_dir(slot))
    if not task["setup"].strip():
        return ""
    log = slot.parent / f"{slot.name}.setup.log"
    jail = sandbox.resolve(task["sandbox"])
    with jail.confine(slot, writable=[slot], network=True, prefix="boss-merge-") as confine:
        outcome = run_shell(
            task["setup"], cwd=slot, env=os.environ, log_path=log, confine=confine,
            log_cap=int(task["log_cap"]), owner=proctree.owner(str(slot), task["plan"], "", "setup"),
        )  # fmt: skip
    if outcome.exit_code == 0:
        return ""
    tail = log.read_bytes()[-300:].decode(errors="replace") if log.is_file() else ""
    _forget(slot)
    return f"setup failed in a test slot (exit {outcome.exit_code}): {' '.join(tail.split())}"


@contextlib.contextmanager
def _stoppable(stop: Any, owner: str) -> Iterator[testrun.OnStart]:
    """An on_start that remembers the run's process group, and a thread that stops the run when
    the Boss sets the Dask event stop (the slot's run was dropped): its group terminated, then
    every process carrying the run's owner marker stopped in stages (one that traps SIGTERM
    too); None: nothing stops it but its limit (outside a cluster)."""
    group: list[int] = []

    def kill() -> None:
        for pgid in group:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGTERM)
        proctree.stop_owner(owner)

    with on_stop(stop, kill):
        yield group.append


def sweep(prefix: str, keep: str, dask_worker: Any = None) -> list[str]:
    """On each node (client.run): remove the slots of this plan's earlier ceremonies (folders
    `boss-slots/<prefix>*` but keep) that no run holds; the folders removed."""
    root = Path(dask_worker.local_directory) if dask_worker is not None else here()[0]
    removed = []
    for folder in sorted((root / SLOTS).glob(f"{prefix}*")):
        if folder.name == keep or not folder.is_dir():
            continue
        with contextlib.ExitStack() as held:
            try:
                for lock in sorted(folder.glob("*.lock")):
                    handle = held.enter_context(lock.open("a"))
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a run still holds a slot of it
            shutil.rmtree(folder, ignore_errors=True)  # while every lock is held
            removed.append(folder.name)
    return removed
