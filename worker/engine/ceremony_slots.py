"""The merge ceremony's test slots on a Dask cluster: `boss merge --engine dask` (README, "Running
on a Dask cluster").

The ceremony (boss/ceremony/speculate.py) still predicts the candidates, decides which run comes
next, judges every result and lands at the Boss; what this changes is where a slot's run is made.
For each run the ceremony's base and the candidate's commit are published to the shared remote
(`refs/boss-ceremony/<plan>/<commit>`, a namespace no worker id reaches), and the run is submitted as a
Dask task (worker/engine/ceremony_node.py) asking for no resource: any node runs it, as many at
once as its threads. A dropped run is stopped on its node through a Dask event (set from a
thread of its own, never under the Speculator's lock). A run whose node died under it as often
as Dask allows (KilledWorker) counts as a failed run, not as the end of the ceremony. At the
start, what a killed ceremony of the plan left (refs, slots) is removed; at the end, this one's.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from boss.core import testrun
from boss.core.config import Config
from boss.core.errors import StateError
from boss.core.manifest import Manifest
from boss.core.paths import PlanPaths
from worker.engine import ceremony_node, shipping
from worker.engine.dask_pool import connect
from worker.engine.refs import remote_git, remote_refs

STOPPED = 143  # a run the ceremony dropped and stopped: as a local run stopped by SIGTERM ends
KILLED = 137  # a run whose node died under it each time: as a run killed by SIGKILL ends


class ClusterSlots:
    """boss.core.testrun.Remote on a Dask cluster: the ceremony's test runs made on its nodes."""

    def __init__(
        self, paths: PlanPaths, m: Manifest, config: Config, scheduler: str, remote: str, slots: int
    ) -> None:
        remote_refs(paths.repo, remote, ["HEAD"])  # readable, or one line before anything else
        self.client = connect(scheduler, agents=False)
        try:
            self._begin(paths, m, config, scheduler, remote, slots)
        except BaseException:
            self.client.close()
            raise

    def _begin(
        self, paths: PlanPaths, m: Manifest, config: Config, scheduler: str, remote: str, slots: int
    ) -> None:
        self.paths, self.remote = paths, remote
        self.scheduler = scheduler
        nodes = self.client.scheduler_info().get("workers", {}).values()
        threads = sum(int(n.get("nthreads", 1)) for n in nodes)
        self._slots = slots or config.merge_slots or max(1, threads)
        plan_key = hashlib.sha256(f"{paths.repo}\0{paths.plan}".encode()).hexdigest()[:12]
        self.prefix, self.session = f"{plan_key}-", f"{plan_key}-{uuid.uuid4().hex[:12]}"
        self.lock = threading.Lock()
        self.published: dict[str, str] = {}  # commit -> its ref on the remote
        self.common = {
            "remote": remote, "plan": paths.plan, "session": self.session, "setup": m.setup,
            "copy": shipping.copied(paths.repo, m), "sandbox": config.sandbox, "log_cap": config.log_cap,
        }  # fmt: skip
        try:  # what killed ceremonies left on the nodes
            self.client.run(ceremony_node.sweep, self.prefix, self.session)
        except Exception as e:  # a node that cannot run boss's code (none, or another version)
            why = (str(e).strip().splitlines() or [""])[0][:200]
            msg = (
                f"--scheduler {scheduler}: a node cannot run boss's tasks ({type(e).__name__}: {why}); "
                "install the same boss on every node"
            )
            raise StateError(msg) from e
        left = remote_refs(paths.repo, remote, [f"refs/boss-ceremony/{paths.plan}/*"])
        self._delete(sorted(left))

    @property
    def slots(self) -> int:
        return self._slots

    @property
    def where(self) -> str:
        return f"the Dask cluster at {self.scheduler}"

    def run(
        self, request: testrun.Request, started: Callable[[testrun.Cancel], None]
    ) -> tuple[testrun.Ran, bytes, str]:
        ref, base_ref = self._publish(request.commit), self._publish(request.base)
        key = f"boss-merge-{self.paths.plan}-{uuid.uuid4().hex[:12]}"
        task = {
            **self.common, "ref": ref, "commit": request.commit, "base_ref": base_ref, "base": request.base,
            "command": request.command,
            "kind": request.kind, "worker": request.worker, "limit": request.limit,
            "network": request.network, "stop": f"{key}-stop",
        }  # fmt: skip
        begun = time.monotonic()
        future = self.client.submit(ceremony_node.run_test, task, key=key, pure=False)
        cancelled = threading.Event()

        def cancel() -> None:  # called under the Speculator's lock: the scheduler is told apart
            cancelled.set()
            threading.Thread(
                target=self._stop, args=(key, future), name="boss-slot-cancel", daemon=True
            ).start()

        started(cancel)
        try:
            result: dict[str, Any] = future.result()
        except Exception as e:
            took = time.monotonic() - begun
            if cancelled.is_set():
                return (
                    testrun.Ran(STOPPED, took),
                    b"[boss] stopped: the ceremony no longer needed this run\n",
                    "",
                )
            if type(e).__name__ == "KilledWorker":  # the test took its node down, every time
                why = (
                    f"[boss] the node running this test died each time Dask ran it ({e}); counted as failed\n"
                )
                return testrun.Ran(KILLED, took), why.encode(), ""
            why = (str(e).strip().splitlines() or [""])[0][:300]
            msg = f"the cluster could not run the test {request.name} ({type(e).__name__}: {why})"
            raise StateError(msg) from e
        finally:
            self._clear(key)
        node = str(result.get("node", ""))[:120]
        if result.get("unconfined"):  # said with every run: the report's sandbox line is the Boss's
            node += f" (sandbox {str(result['unconfined'])[:200]})"
        if "error" in result:
            msg = f"node {node}: {str(result['error'])[:400]}"
            raise StateError(msg)
        failures = result.get("failures")
        try:
            ran = testrun.Ran(
                int(result["exit_code"]), float(result["elapsed"]),
                [str(f) for f in failures] if isinstance(failures, list) else None, bool(result["timed_out"]),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as e:
            msg = (
                f"node {node}: a reply to the test {request.name} boss cannot read ({type(e).__name__}: {e})"
            )
            raise StateError(msg) from e
        return ran, bytes(result.get("log") or b""), node

    def _stop(self, key: str, future: Any) -> None:
        """Tell the run's node to stop it, and the scheduler to forget it."""
        from distributed import Event

        with contextlib.suppress(Exception):  # the scheduler gone: the run has no one to tell
            Event(f"{key}-stop", client=self.client).set()  # type: ignore[no-untyped-call]
            self.client.cancel([future])

    def _clear(self, key: str) -> None:
        """The run's stop event gone from the scheduler (it keeps a set one otherwise)."""
        from distributed import Event

        with contextlib.suppress(Exception):
            Event(f"{key}-stop", client=self.client).clear()  # type: ignore[no-untyped-call]

    def _delete(self, refs: list[str]) -> None:
        """Delete refs of the plan's ceremonies from the remote (one push; nothing when none)."""
        if refs:
            remote_git(
                self.paths.repo, "push", "--quiet", "--", self.remote, *(f":{r}" for r in refs), check=False
            )

    def _publish(self, commit: str) -> str:
        """The commit on the shared remote, under a ref of this plan's ceremony (pushed once)."""
        with self.lock:
            ref = self.published.get(commit)
            if ref is None:
                ref = f"refs/boss-ceremony/{self.paths.plan}/{commit}"
                res = remote_git(
                    self.paths.repo, "push", "--quiet", "--", self.remote, f"{commit}:{ref}", check=False
                )
                if res.returncode != 0:
                    why = (res.stderr.strip().splitlines() or ["git push failed"])[-1]
                    msg = (
                        f"the shared remote {self.remote}: cannot publish the candidate {commit[:10]} ({why})"
                    )
                    raise StateError(msg)
                self.published[commit] = ref
            return ref

    def close(self) -> None:
        with self.lock:
            refs, self.published = sorted(self.published.values()), {}
        with contextlib.suppress(Exception):  # a remote or scheduler gone: the next ceremony sweeps
            if refs:
                remote_git(
                    self.paths.repo,
                    "push",
                    "--quiet",
                    "--",
                    self.remote,
                    *(f":{r}" for r in refs),
                    check=False,
                )
            self.client.run(ceremony_node.sweep, self.prefix, "")
        self.client.close()
