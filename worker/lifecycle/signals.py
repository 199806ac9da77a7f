"""How a worker process takes Ctrl-C and SIGTERM: the first stops the worker, any later one is ignored."""

from __future__ import annotations

import signal
from types import FrameType

from boss.core.proc import HELD_SIGNALS


class _StopSignals:
    """Ctrl-C and SIGTERM (run_workers.sh's Ctrl-C handling) stop a worker, once.

    The first raises KeyboardInterrupt: the worker stops its agent's group and records FAILED
    "interrupted". Any later one is ignored: a terminal's Ctrl-C and the pool's SIGTERM reach a
    worker within a millisecond, and a second KeyboardInterrupt could land anywhere in the
    stopping (even before a `try`) and leave the agent's group running or the status untrue.
    """

    stopping = False

    @classmethod
    def handle(cls, signum: int, frame: FrameType | None) -> None:  # noqa: ARG003
        if cls.stopping:
            return
        cls.stopping = True
        raise KeyboardInterrupt


def install_stop_signals() -> None:
    """Ctrl-C and SIGTERM stop this worker process once (see _StopSignals); main thread only."""
    _StopSignals.stopping = False
    for sig in HELD_SIGNALS:
        signal.signal(sig, _StopSignals.handle)
