"""One worker run's record keeping: its status file (with a heartbeat) and its state-log lines."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

from boss.core import git, handwork, notify, statelog
from boss.core import status as st
from boss.core.paths import PlanPaths
from boss.core.proc import HELD_SIGNALS

HEARTBEAT_SECONDS = 5.0


class Recorder:
    """Writes a worker's status atomically and appends its events to the plan's state log.

    The heartbeat thread and the run share one lock, so status writes never race.
    """

    def __init__(self, paths: PlanPaths, worker_id: str, current: st.Status) -> None:
        self.paths = paths
        self.worker_id = worker_id
        self.status = current
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def update(self, **changes: Any) -> st.Status:
        """Change fields of the status and write it."""
        with self._lock:
            self.status = self.status.evolve(**changes)
            st.write(self.paths.status(self.worker_id), self.status)
            return self.status

    def event(
        self,
        iteration_id: str,
        action: str,
        result: str,
        artifacts: Path | str = "",
        **changes: Any,
    ) -> None:
        """Append a state-log line; remember it as the last event, with changes, in one write."""
        art = self.paths.rel(artifacts) if isinstance(artifacts, Path) else artifacts
        # The status first: a reader that sees the line (an `end`, say) finds the status it tells.
        now = st.now_iso()
        status = self.update(last_event=f"{action}: {result}", heartbeat=now, **changes)
        statelog.append(self.paths.log, statelog.Event(now, status.state, iteration_id, action, result, art))

    def end(self, state: str, reason: str, action: str = "end") -> str:
        """Record the run's end state with its reason (an `end` event, or `action`); return the state."""
        result = f"{state}: {reason}" if reason else state
        if self.status.start_commit and self.status.branch:
            # This run made the branch: whatever it leaves there (its agent's commits included)
            # is the run's, not a person's.
            head = git.rev(self.paths.repo, f"refs/heads/{self.status.branch}")
            if head:
                handwork.record_head(self.paths, self.worker_id, head)
        self.event(
            self.worker_id,
            action,
            result,
            state=state,
            reason=reason,
            finished_at=st.now_iso(),
            waiting_until="",
        )
        notify.emit(self.paths.repo, notify.WORKER_ENDED, self.paths.plan, worker=self.worker_id,
                    state=state, reason=reason)  # fmt: skip
        return state

    def start_heartbeat(self) -> None:
        """Refresh the heartbeat every few seconds until stop_heartbeat()."""

        def beat() -> None:
            # Signals are for the main thread: delivered here, they would slip past its
            # signals_held() while it stops an agent.
            signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
            while not self._stop.wait(HEARTBEAT_SECONDS):
                self.update(heartbeat=st.now_iso())

        self._thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
        self._thread.start()

    def stop_heartbeat(self) -> None:
        """Stop the heartbeat thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
