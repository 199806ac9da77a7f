"""File locks: a sidecar lock file held with flock(2), for read-modify-write and appends.

We use fcntl directly rather than the filelock package: importing filelock costs ~26 ms
(it pulls in asyncio), paid by every worker, every state-log append and every guard call.
The kernel releases a flock when its process dies, so a crash never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from boss.core.errors import StateError


class LockBusy(StateError):
    """Another process holds the lock past the timeout."""


@contextmanager
def locked(path: Path, timeout: float, busy_message: str, *, shared: bool = False) -> Iterator[None]:
    """Hold a lock on path for the block; LockBusy(busy_message) after timeout seconds.

    Exclusive by default; `shared` holders exclude only exclusive ones (readers and a writer).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockBusy(busy_message) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
