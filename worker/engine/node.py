"""One worker's run on a cluster node: the Dask task the Boss submits (worker.engine.dask_pool).

The node keeps a mirror of the shared remote in its own local folder (`boss-cache/`, under a
lock; fetched before a task unless it holds exactly the refs the Boss published for the task, and
always before a task Dask runs again), and runs each task in a fresh repository of its own that
borrows the mirror's objects and holds the refs of the task: the plan's files the Boss ships are
written into its `.boss/`, the real `worker run PLAN ID` runs there (the same lifecycle, gates and
sandbox as a local run), the worker's refs are pushed back to the remote by compare-and-swap
against the values the run started from, and what the Boss records (the worker's folder, its
state-log lines) comes back as bytes.
"""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from boss.core import git
from worker.engine import live, warm
from worker.engine.refs import local_refs, owned, owned_prefixes, push_cas, remote_git
from worker.lifecycle.broker import WAIT_ENV

MAX_FILE = 8 * 1024 * 1024  # the most one returned file holds; a larger one is left on the node
MAX_TOTAL = 32 * 1024 * 1024  # the most one task returns
KEEP_OUT = {"CONTEXT.md", "run.lock"}
STOP_POLL = 1.0  # seconds between looks at the Boss's stop event (and publishing a run's status)
ABANDON_WAIT = 30.0  # seconds a run stopped because its task failed has to end


def here() -> tuple[Path, str]:
    """The node's local folder, and its name as the Boss's log shows it."""
    try:
        from distributed import get_worker

        me = get_worker()
        return Path(me.local_directory), f"{me.name} ({me.address})"
    except (ImportError, ValueError):
        return Path(tempfile.gettempdir()), os.uname().nodename


@contextlib.contextmanager
def lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def mirror(remote: str, root: Path, current: Callable[[Path], bool] | None = None) -> Path:
    """The node's mirror of remote (one task at a time per node), fetched now unless `current`
    says it already holds what the task needs."""
    cache = root / "boss-cache" / (hashlib.sha256(remote.encode()).hexdigest()[:16] + ".git")
    with lock(cache.with_suffix(".lock")):
        if not (cache / "HEAD").is_file():
            shutil.rmtree(cache, ignore_errors=True)
            remote_git(root, "clone", "--quiet", "--mirror", "--", remote, str(cache))
        elif current is None or not current(cache):
            remote_git(root, f"--git-dir={cache}", "fetch", "--quiet", "--prune", "--no-tags", "origin")
    return cache


def task_refs(task: dict[str, Any]) -> list[str] | None:
    """The ref patterns of what the task's run uses: the plan's base, its worker's and its
    dependencies' branches and refs; None from a Boss that does not name them (every branch and
    boss ref then)."""
    owners = task.get("owners")
    if not isinstance(task.get("published"), dict) or not owners:
        return None
    patterns = [f"refs/boss/{task['plan']}/base"]
    for wid, branch in owners:
        patterns += [f"refs/heads/{branch}", *owned_prefixes(task["plan"], str(wid))]
    return patterns


def holds(cache: Path, task: dict[str, Any]) -> bool:
    """Whether the mirror's refs of the task's worker and dependencies (and the plan's base) are
    exactly those the Boss published for it: the mirror's objects are then all the run needs, and
    a fetch would bring nothing it uses. The Boss's word decides only whether to fetch: the run's
    push at the end moves the remote by compare-and-swap from these values."""
    patterns = task_refs(task)
    if patterns is None:
        return False  # a Boss that does not say: fetch
    plan, published = task["plan"], task["published"]
    base = f"refs/boss/{plan}/base"
    found = git.refs_at(cache, patterns, f"--git-dir={cache}")

    def of(refs: dict[str, str], wid: str, branch: str) -> dict[str, str]:
        return {ref: commit for ref, commit in refs.items() if owned(plan, wid, branch, ref)}

    owners = [(str(wid), str(branch)) for wid, branch in task["owners"]]
    return found.get(base) == task["base_commit"] == published.get(base) and all(
        of(found, wid, branch) == of(published, wid, branch) for wid, branch in owners
    )


def borrowing(work: Path, cache: Path, git_dir: Path | None = None) -> None:
    """A new repository at work (its git folder at git_dir, else work/.git) that borrows the
    mirror's objects, on a branch no fetch moves."""
    where = ["--separate-git-dir", str(git_dir)] if git_dir is not None else []
    # No template: a sample hook or description copied into every task's repository is only cost.
    git.git(work, "init", "--quiet", "--template=", "--initial-branch=boss-node/unborn", *where)
    objects = (git_dir if git_dir is not None else work / ".git") / "objects"
    (objects / "info" / "alternates").write_text(str(cache / "objects") + "\n")


def write_shipped(root: Path, files: dict[str, Any]) -> None:
    """Files the Boss shipped ({path relative to root: bytes}) written under root; a path that
    would leave root or reach a .git folder is never written."""
    for rel, data in files.items():
        parts = PurePosixPath(rel).parts
        if rel.startswith("/") or not parts or any(p in ("..", ".", "", ".git") for p in parts):
            continue  # the Boss ships none of these
        target = root.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(bytes(data))


def _workspace(cache: Path, root: Path, task: dict[str, Any]) -> Path:
    """A fresh repository for this task: the mirror's refs of the task (task_refs), the base
    checked out."""
    repo = root / "boss-runs" / f"{task['plan']}-{task['id']}-{uuid.uuid4().hex[:8]}"
    repo.mkdir(parents=True)
    borrowing(repo, cache)
    patterns = task_refs(task) or ["refs/heads/", "refs/boss/"]
    moves: dict[str, str | None] = {**git.refs_at(repo, patterns, f"--git-dir={cache}")}
    moves[f"refs/heads/{task['base']}"] = task["base_commit"]
    git.update_refs(repo, moves)  # the mirror's refs copied (its objects are borrowed): no fetch
    git.git(repo, "checkout", "--quiet", "--detach", task["base_commit"])
    write_shipped(repo, task["files"])
    return repo


def _collect(folder: Path) -> dict[str, bytes]:
    """The worker's folder as {relative path: bytes}, bounded."""
    files: dict[str, bytes] = {}
    total = 0
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if not path.is_file() or path.is_symlink() or rel in KEEP_OUT or path.stat().st_size > MAX_FILE:
            continue
        size = path.stat().st_size
        if total + size > MAX_TOTAL:
            break
        files[rel] = path.read_bytes()
        total += size
    return files


def _run_worker(repo: Path, plan: str, wid: str, stop: str, wait: float = 0.0) -> tuple[int, str]:
    """`worker run PLAN ID` in repo: its exit code and its output's tail. When the Boss sets the
    Dask event `stop` (run_workers.sh was stopped), the worker gets SIGTERM, as a local one would:
    it stops its agent and records FAILED "interrupted". While it runs, its status and approval
    requests go to the Boss, and the Boss's decisions come into its approvals folder
    (worker.engine.live); a TIER 3 call waits `wait` seconds for them (the Boss's BOSS_APPROVAL_WAIT).
    Its end is seen at once (not at the next look at the Boss's event). The run is forked by the
    node's warm helper (worker.engine.warm), as `python -P -m worker run PLAN ID` would run (a task
    run by hand starts that afresh: no helper outlives it)."""
    out = repo.parent / f"{repo.name}.out"
    out.write_bytes(b"")
    env = {k: v for k, v in os.environ.items() if k != WAIT_ENV}
    if wait > 0:
        env[WAIT_ENV] = f"{wait:g}"
    event = stop_event(stop)
    proc = warm.start(["run", plan, wid], str(repo), env, str(out), fork=on_a_node(), name=f"worker {wid}")
    status = repo / ".boss" / "plans" / plan / "workers" / wid / "status.json"
    folder = repo / ".boss" / "plans" / plan / "approvals"
    shown, asked, heard = b"", None, None  # asked: published once at least, even empty
    try:
        with on_stop(event, proc.terminate):
            while True:
                try:
                    code = proc.wait(STOP_POLL if event is not None else None)
                    break
                except subprocess.TimeoutExpired:
                    shown = _show(status, f"{stop}-status", shown)
                    heard = live.hear(folder, plan, wid, f"{stop}-decisions", heard)
                    asked = _ask(folder, f"{stop}-requests", asked)
    except BaseException:  # never leave the run going in a workspace about to be removed
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(ABANDON_WAIT)
        raise
    with out.open("rb") as sink:
        sink.seek(max(0, out.stat().st_size - 4000))
        output = sink.read().decode(errors="replace")
    out.unlink(missing_ok=True)
    return code, output


def _show(status: Path, name: str, shown: bytes) -> bytes:
    """Publish the running worker's status to the Boss (the Dask variable name) when it changed."""
    try:
        data = status.read_bytes()[:MAX_FILE]
    except OSError:
        return shown
    if data != shown and not _publish(name, data):
        return shown  # published next time
    return data


def _publish(name: str, value: object) -> bool:
    """Set the Dask variable name; False when the scheduler could not be told (next time)."""
    from distributed import Variable

    try:
        Variable(name).set(value)  # type: ignore[no-untyped-call]
    except Exception:  # the scheduler is busy or unreachable for a moment
        return False
    return True


def _ask(folder: Path, name: str, asked: dict[str, bytes] | None) -> dict[str, bytes] | None:
    """Publish the plan's approval requests on this node (a Dask variable) when they changed, so a
    TIER 3 request reaches the Boss while the worker still runs, as a local one does; what was
    published (None: nothing yet, published next time even empty)."""
    try:
        now = {f.name: f.read_bytes()[:MAX_FILE] for f in sorted(folder.glob("R*.json"))}
    except OSError:  # a request being written: read next time
        return asked
    if now != asked and not _publish(name, now):
        return asked
    return now


def on_a_node() -> bool:
    """Whether this runs in a Dask node's task (not a task run by hand, as the tests do)."""
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


def first_start(stop: str) -> bool:
    """Whether this is the first start of the task whose stop event is `stop` (a Dask event the
    first start sets, which the Boss clears, so deletes, when the task is over:
    worker.engine.live.forget). Outside a cluster, True (nothing runs a task again); where the
    scheduler cannot tell, False."""
    if not stop or not on_a_node():
        return True
    from distributed import Event

    started = Event(f"{stop}-started")  # type: ignore[no-untyped-call]
    try:
        if started.is_set():  # type: ignore[no-untyped-call]
            return False
        started.set()  # type: ignore[no-untyped-call]
    except Exception:  # the scheduler busy or unreachable: do not trust the task's values
        return False
    return True


def stop_event(name: str) -> Any:
    """The Dask event named name, or None outside a cluster (or without a name)."""
    if not name or not on_a_node():
        return None
    from distributed import Event

    return Event(name)  # type: ignore[no-untyped-call]


@contextlib.contextmanager
def on_stop(event: Any, stop: Callable[[], object]) -> Iterator[None]:
    """While the block runs, a thread calls stop once when the Boss sets the Dask event (None:
    nothing to watch). The thread runs in the task's context: Dask's objects work only there."""
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            try:
                told = event.wait(STOP_POLL)
            except Exception:  # the scheduler unreachable for a moment: look again
                done.wait(STOP_POLL)
                continue
            if told:
                if not done.is_set():
                    stop()
                return

    if event is not None:
        runner = contextvars.copy_context().run
        threading.Thread(target=runner, args=(watch,), name="boss-node-stop", daemon=True).start()
    try:
        yield
    finally:
        done.set()


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    """Run worker task['id'] of task['plan'] here; what the Boss records, and whether the push held."""
    root, name = here()
    if on_a_node():
        warm.ready()  # its helper imports the lifecycle meanwhile (the first task of the node)
    # Run again by Dask (its node was lost), the task's published values may be stale: the lost
    # run may have pushed after all. Only a first start may trust them.
    current = (lambda c: holds(c, task)) if first_start(task.get("stop", "")) else None
    cache = mirror(task["remote"], root, current)
    repo = _workspace(cache, root, task)
    try:
        plan, wid, branch = task["plan"], task["id"], task["branch"]
        before = local_refs(repo, plan, wid, branch)
        code, output = _run_worker(repo, plan, wid, task.get("stop", ""), float(task.get("wait", 0.0)))
        after = local_refs(repo, plan, wid, branch)
        refused = push_cas(repo, task["remote"], after, before)
        plan_dir = repo / ".boss" / "plans" / plan
        log = plan_dir / "log"
        return {
            "code": code,
            "output": output,
            "files": _collect(plan_dir / "workers" / wid),
            "approvals": {
                f.name: f.read_bytes()[:MAX_FILE] for f in sorted((plan_dir / "approvals").glob("R*.json"))
            },
            "log": log.read_bytes()[-MAX_FILE:] if log.is_file() else b"",
            "refs": after,
            "refused": refused,
            "node": name,
        }
    finally:
        shutil.rmtree(repo, ignore_errors=True)
