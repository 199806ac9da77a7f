"""The worker pool on a Dask cluster: run_workers.sh --engine dask (README, "Running on a Dask cluster").

The same protocol as worker.lifecycle.pool (run_workers.sh still decides which worker starts
when), but a `run ID` submits the worker as a Dask task asking for one AGENT resource
(worker.engine.node runs it on a node) instead of forking it here. Before the task goes, the
worker's and its dependencies' refs are published to the shared remote (compare-and-swap) and
the worker is recorded RUNNING with this process's pid (so it reads CRASHED if the pool dies).
When it ends, its refs are fetched from the remote (the remote's values: refs.to_take), its folder
and its own state-log lines are written into .boss/, and its status is checked against git: a
SUCCESS whose head is not the branch on the remote is recorded FAILED.
"""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from boss.core import approvals, git, notify, statelog
from boss.core import status as st
from boss.core.config import Config
from boss.core.errors import BossError, InputError, StateError
from boss.core.manifest import Manifest
from boss.core.paths import PlanPaths
from worker.engine import live, node, shipping
from worker.engine.refs import fetch_into, local_refs, push_cas, remote_owned, remote_refs, to_take
from worker.lifecycle.broker import approval_wait
from worker.lifecycle.command import EXIT_CODES
from worker.lifecycle.pool import INTERRUPTED, Pool

FOLLOW_EVERY = 2.0  # seconds between looks at the running workers' published statuses
CONNECT_TIMEOUT = 10  # seconds to reach the scheduler before saying it cannot be reached


def connect(scheduler: str, timeout: float = CONNECT_TIMEOUT, agents: bool = True) -> Any:
    """A Dask client of the scheduler; StateError, one line, when it cannot be had, or has no node
    (with `agents`: no node offering the AGENT resource): the tasks would wait for ever."""
    try:
        from distributed import Client
    except ImportError as e:
        missing = e.name or "distributed"
        msg = f"the dask engine needs its extra ({missing} is missing): pip install 'boss-worker[dask]'"
        raise StateError(msg) from e
    try:
        _knock(scheduler, timeout)
        client = Client(scheduler, timeout=timeout, set_as_default=False)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError, ValueError, TypeError) as e:
        why = (str(e).strip().splitlines() or [type(e).__name__])[0]
        msg = f"--scheduler {scheduler}: the Dask scheduler cannot be reached ({why}); start it or fix it"
        raise StateError(msg) from e
    nodes = client.scheduler_info().get("workers", {}).values()
    if not agents and not nodes:
        client.close()  # type: ignore[no-untyped-call]
        msg = f"--scheduler {scheduler}: no node is connected to it; start nodes with `dask worker ADDRESS`"
        raise StateError(msg)
    if agents and not any(n.get("resources", {}).get("AGENT", 0) >= 1 for n in nodes):
        client.close()  # type: ignore[no-untyped-call]
        msg = (
            f"--scheduler {scheduler}: no node offers the AGENT resource; "
            "start nodes with `dask worker ADDRESS --resources AGENT=2`"
        )
        raise StateError(msg)
    return client


def _knock(scheduler: str, timeout: float) -> None:
    """For tcp://HOST:PORT, one TCP connection first: a refused one fails now, not after the
    client's retries for the whole timeout (OSError)."""
    if not scheduler.startswith("tcp://"):
        return
    host, _, port = scheduler.removeprefix("tcp://").rstrip("/").rpartition(":")
    if not port.isdigit():
        msg = f"not an address of the form tcp://HOST:PORT ({scheduler!r})"
        raise ValueError(msg)
    with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
        pass


class DaskPool(Pool):
    """Workers of one plan as Dask tasks, and the events the script reads."""

    def __init__(
        self, paths: PlanPaths, m: Manifest, config: Config, events: int, client: Any, remote: str
    ) -> None:
        super().__init__(paths, m, config, events)
        self.client, self.remote = client, remote
        self.futures: dict[str, Any] = {}
        self.stops: dict[str, str] = {}  # worker -> the Dask event that stops it on its node
        self.shipped: dict[str, dict[str, approvals.Request]] = {}  # worker -> the requests it was sent
        self.ledgers: dict[str, live.Ledger] = {}  # worker -> what its node knows of them
        self.writing = threading.Lock()  # the progress thread's status writes against the end's
        self.progress = threading.Thread(target=self._follow, name="boss-progress", daemon=True)
        self.ended: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.base = shipping.base(paths.repo, m)
        base_ref = f"refs/boss/{paths.plan}/base"
        refused = push_cas(
            paths.repo, remote, {base_ref: self.base}, remote_refs(paths.repo, remote, [base_ref])
        )
        if refused:
            msg = f"the shared remote {remote}: cannot publish the plan's base ({refused})"
            raise StateError(msg)

    def serve(self) -> int:
        try:
            if self.client is not None:
                self.progress.start()
            return super().serve()
        finally:
            self.client.close()

    def _prewarm(self) -> None:
        super()._prewarm()
        if self.client is not None:  # -j when none was given: the AGENT slots of the cluster now
            nodes = self.client.scheduler_info().get("workers", {}).values()
            self.emit("jobs", max(1, int(sum(n.get("resources", {}).get("AGENT", 0) for n in nodes))))

    def busy(self) -> bool:
        return bool(self.futures)

    def _start(self, worker_id: str) -> None:
        if self.stopping:
            self.emit("done", worker_id, INTERRUPTED)
            return
        if self._reattach(worker_id):
            return
        try:
            task = self._task(worker_id)
        except BossError as e:
            self.emit("done", worker_id, self._fail(worker_id, str(e)))
            return
        where = f"submitted to the Dask scheduler {self.client.scheduler.address}"
        running = self._old(worker_id).evolve(
            state=st.RUNNING, pid=os.getpid(), heartbeat="", started_at=st.now_iso(), finished_at="",
            reason="", child_pgid=0, last_event=where,
        )  # fmt: skip
        st.write(self.paths.status(worker_id), running)
        key = f"boss-{self.paths.plan}-{worker_id}-{uuid.uuid4().hex[:8]}"
        task["stop"] = self.stops[worker_id] = f"{key}-stop"
        task["wait"] = approval_wait(os.environ)  # a TIER 3 call waits on the node as it would here
        future = self.client.submit(node.run_task, task, key=key, resources={"AGENT": 1}, pure=False)
        # Published, the task outlives this pool: a Boss started again reattaches to it (_reattach).
        self.client.publish_dataset(**{key: future})
        self.ledgers[worker_id] = live.Ledger.of(self.shipped[worker_id])
        live.save(self._record_file(worker_id), key, self.ledgers[worker_id])
        self._follow_future(worker_id, future)

    def _follow_future(self, worker_id: str, future: Any) -> None:
        self.futures[worker_id] = future
        future.add_done_callback(lambda _f: self._ended(worker_id))

    def _record_file(self, worker_id: str) -> Path:
        """The task a worker runs as on the cluster (its key, what its node knows of the approval
        requests: worker.engine.live.Ledger)."""
        return self.paths.worker_dir(worker_id) / "dask-task.json"

    def _reattach(self, worker_id: str) -> bool:
        """Take back the worker's task when a Boss before this one submitted it and the cluster
        still holds it (running, or ended with its result waiting); False when there is none."""
        record = self._record_file(worker_id)
        try:
            key, ledger = live.load(record)
            held = key in self.client.list_datasets()
        except (OSError, ValueError, KeyError, TypeError):
            held = False
        if not held:
            record.unlink(missing_ok=True)
            return False
        self.shipped[worker_id], self.ledgers[worker_id] = ledger.sent, ledger
        self.stops[worker_id] = f"{key}-stop"
        again = "reattached to its task on the cluster (the Boss before this one submitted it)"
        st.write(
            self.paths.status(worker_id),
            self._old(worker_id).evolve(state=st.RUNNING, pid=os.getpid(), last_event=again),
        )
        statelog.append(
            self.paths.log, statelog.Event(st.now_iso(), st.RUNNING, worker_id, "dask", again, "")
        )
        self._follow_future(worker_id, self.client.get_dataset(key))
        return True

    def _forget(self, worker_id: str) -> None:
        """The worker's task is over for the cluster too: unpublished, its record gone."""
        stop = self.stops.pop(worker_id, "")
        self.ledgers.pop(worker_id, None)
        with contextlib.suppress(Exception):  # the scheduler gone: nothing holds it any more
            self.client.unpublish_dataset(stop.removesuffix("-stop"))
        with contextlib.suppress(Exception):
            live.forget(self.client, stop)
        self._record_file(worker_id).unlink(missing_ok=True)

    def _ended(self, worker_id: str) -> None:
        """On the client's thread: hand the worker to the main loop and wake it."""
        self.ended.put(worker_id)
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"d")

    def _task(self, worker_id: str) -> dict[str, Any]:
        """What the node needs: the plan's files, the worker's folder and its dependencies' statuses;
        the worker's and its dependencies' refs published to the remote first."""
        w, paths, repo = self.m.worker(worker_id), self.paths, self.paths.repo
        published: dict[str, str] = {f"refs/boss/{paths.plan}/base": self.base}
        for wid in (worker_id, *w.depends_on):
            branch = self.m.worker(wid).branch
            mine = local_refs(repo, paths.plan, wid, branch)
            theirs = remote_owned(repo, self.remote, paths.plan, wid, branch)
            refused = push_cas(repo, self.remote, mine, theirs)
            if refused:
                msg = f"worker {wid}: cannot publish its refs to the shared remote {self.remote} ({refused})"
                raise StateError(msg)
            published.update(mine)  # the remote's values now: a node whose mirror holds them need not fetch
        self.shipped[worker_id] = {r.id: r for r in approvals.list_requests(paths.approvals_dir)}
        files = shipping.plan_files(paths, self.m, worker_id)
        return {
            "remote": self.remote, "plan": paths.plan, "id": worker_id, "branch": w.branch,
            "base": self.m.base, "base_commit": self.base, "files": files, "published": published,
            "owners": [[wid, self.m.worker(wid).branch] for wid in (worker_id, *w.depends_on)],
        }  # fmt: skip

    def _reap(self) -> None:
        if self.stopping and self.futures:
            from distributed import Event

            for worker_id in self.futures:
                Event(self.stops[worker_id], client=self.client).set()  # type: ignore[no-untyped-call]
            self.client.cancel(list(self.futures.values()))
            for worker_id in list(self.futures):
                with self.writing:
                    self.futures.pop(worker_id)
                self._forget(worker_id)
                self._fail(
                    worker_id, "interrupted (run_workers.sh stopped; a task already on a node may finish)"
                )
                self.emit("done", worker_id, INTERRUPTED)
            return
        while True:
            try:
                worker_id = self.ended.get_nowait()
            except queue.Empty:
                return
            with self.writing:
                future = self.futures.pop(worker_id, None)
            if future is None:
                continue
            try:
                code = self._record(worker_id, future.result())
            except BossError as e:
                code = self._fail(worker_id, str(e))
            except Exception as e:
                why = (str(e).strip().splitlines() or [""])[0][:300]
                code = self._fail(worker_id, f"the cluster could not run it ({type(e).__name__}: {why})")
            self._forget(worker_id)
            self.emit("done", worker_id, code)

    def _follow(self) -> None:
        """On its own thread: each running worker's status as its node publishes it, written here
        RUNNING (strategy, iteration, last event, heartbeat), so `boss status` and the dashboard
        follow it live; a node whose heartbeat stops reads CRASHED until Dask runs it again."""
        from distributed import Variable

        while True:
            time.sleep(FOLLOW_EVERY)
            running = self._running()
            for worker_id, stop in list(self.stops.items()):
                if running is not None and stop.removesuffix("-stop") not in running:
                    continue  # still queued (or between nodes): nothing published yet to look at
                with contextlib.suppress(Exception):  # the scheduler is gone: next time
                    self._exchange(worker_id, stop)
                try:
                    data = Variable(f"{stop}-status", client=self.client).get(timeout=0.2)  # type: ignore[no-untyped-call]
                except Exception:  # noqa: S112 - not published yet, or the scheduler is gone: next time
                    continue
                with self.writing:
                    if worker_id in self.futures and self.stops.get(worker_id) == stop:
                        self._progress(worker_id, bytes(data))

    def _running(self) -> set[str] | None:
        """The keys of the tasks a node runs now (one question to the scheduler), None if unknown."""
        try:
            return {str(key) for keys in self.client.processing().values() for key in keys}
        except Exception:  # the scheduler is busy or gone: look at every worker
            return None

    def _exchange(self, worker_id: str, stop: str) -> None:
        """A running worker's approval requests from its node, and the Boss's decisions on them
        back to it (worker.engine.live)."""
        asked = live.asked(self.client, stop)
        with self.writing:
            ledger = self.ledgers.get(worker_id)
            if ledger is None or worker_id not in self.futures or self.stops.get(worker_id) != stop:
                return  # ended meanwhile: its result is taken (_record)
            if live.exchange(self.client, self.paths, worker_id, stop, ledger, asked):
                live.save(self._record_file(worker_id), stop.removesuffix("-stop"), ledger)

    def _progress(self, worker_id: str, raw: bytes) -> None:
        got = self._parse(worker_id, raw)
        if got is not None and got.state in (st.RUNNING, st.WAITING):
            w = self.m.worker(worker_id)
            shown = got.evolve(state=st.RUNNING, pid=os.getpid(), child_pgid=0, worktree="", branch=w.branch)
            st.write(self.paths.status(worker_id), shown)

    def _fail(self, worker_id: str, reason: str) -> int:
        """Record the worker FAILED with reason; its exit code."""
        now = st.now_iso()
        failed = self._old(worker_id).evolve(state=st.FAILED, reason=reason, pid=0, finished_at=now)
        st.write(self.paths.status(worker_id), failed)
        statelog.append(self.paths.log, statelog.Event(now, st.FAILED, worker_id, "dask", reason, ""))
        notify.emit(self.paths.repo, notify.WORKER_ENDED, self.paths.plan, worker=worker_id, state=st.FAILED,
                    reason=reason)  # fmt: skip
        return EXIT_CODES[st.FAILED]

    def _old(self, worker_id: str) -> st.Status:
        w = self.m.worker(worker_id)
        return st.read(self.paths.status(worker_id)) or st.Status(
            plan=self.paths.plan, id=w.id, branch=w.branch
        )

    def _record(self, worker_id: str, result: dict[str, Any]) -> int:
        """Write what the node returned into .boss/ as a local run would, judged from git."""
        w, paths = self.m.worker(worker_id), self.paths
        if result.get("refused"):
            msg = (
                f"its push to the shared remote was refused ({result['refused']}): a newer run moved its refs"
            )
            raise StateError(msg)
        mine = local_refs(paths.repo, paths.plan, worker_id, w.branch)
        theirs = to_take(paths.repo, self.remote, (paths.plan, worker_id, w.branch), result.get("refs"), mine)
        fetch_into(paths.repo, self.remote, theirs, [r for r in mine if r not in theirs])
        shipping.take_files(paths.worker_dir(worker_id), dict(result.get("files") or {}))
        sent = self.shipped.pop(worker_id, {})
        ledger = self.ledgers.get(worker_id) or live.Ledger.of(sent)
        live.take(paths, worker_id, ledger, dict(result.get("approvals") or {}))
        status = self._status(worker_id, bytes(dict(result.get("files") or {}).get("status.json", b"")))
        log = bytes(result.get("log") or b"").decode("utf-8", errors="replace")
        for line in log.splitlines():
            event = statelog.parse(line)
            if event is not None and event.worker.split(".")[0] == worker_id:  # W1, W1.s1.i2 (its guard's)
                statelog.append(paths.log, event)
        statelog.append(
            paths.log,
            statelog.Event(
                st.now_iso(),
                status.state,
                worker_id,
                "dask",
                f"ran on node {str(result.get('node'))[:80]}",
                "",
            ),
        )
        notify.emit(paths.repo, notify.WORKER_ENDED, paths.plan, worker=worker_id, state=status.state,
                    reason=status.reason)  # fmt: skip
        return EXIT_CODES.get(status.state, 1)

    def _parse(self, worker_id: str, raw: bytes) -> st.Status | None:
        """A node's status.json bytes as a Status of this worker, or None."""
        scratch = self.paths.worker_dir(worker_id) / f"status.node-{threading.get_ident()}.json"
        scratch.write_bytes(raw)
        try:
            got = st.read(scratch)
        except InputError:
            return None
        finally:
            scratch.unlink(missing_ok=True)
        if got is None or got.plan != self.paths.plan or got.id != worker_id:
            return None
        return got

    def _status(self, worker_id: str, raw: bytes) -> st.Status:
        """The node's status.json, believed only as far as git bears it out; written."""
        w, path = self.m.worker(worker_id), self.paths.status(worker_id)
        got = self._parse(worker_id, raw)
        if got is None or got.plan != self.paths.plan or got.id != worker_id or got.state not in EXIT_CODES:
            state = got.state if got else "no valid status"
            msg = f"the node returned worker {worker_id} unfinished ({state})"
            raise StateError(msg)
        head = git.rev(self.paths.repo, f"refs/heads/{w.branch}")
        if got.state != st.FAILED and got.head_commit != head:
            said, there = got.head_commit[:10] or "nothing", (head or "nothing")[:10]
            msg = f"the node reported {got.state} at {said}, but its branch on the remote is at {there}"
            raise StateError(msg)
        status = got.evolve(pid=0, child_pgid=0, branch=w.branch, worktree="")  # the node's is gone
        st.write(path, status)
        return status


def serve(paths: PlanPaths, m: Manifest, config: Config, events: int, scheduler: str, remote: str) -> int:
    """Run the pool for one plan on the cluster at scheduler, reporting on the events descriptor."""
    remote_refs(paths.repo, remote, ["HEAD"])  # readable, or one line before anything else
    client = connect(scheduler)
    try:
        pool = DaskPool(paths, m, config, events, client, remote)
    except BaseException:
        client.close()
        raise
    return pool.serve()
