"""A run's output log: written capped from a pipe, read back bounded.

An agent or test that prints gigabytes must not fill the disk, nor the memory of the worker
that reads its log back. run_group gives the command a pipe, not the file: a thread copies
the pipe into the log up to `cap` bytes, keeping the head as it comes and the last bytes in a
small ring, and when the run ends it writes one `[boss] output capped ...` line and that tail.
The tail matters: a test's verdict and an agent's usage summary come last.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

MB = 1024 * 1024
# The default cap of one log on disk (log_cap_mb in .boss/config.yaml).
DEFAULT_CAP = 50 * MB
# How much of a capped run's end is kept (at most a quarter of the cap).
TAIL_MAX = 1 * MB
# What a reader reads of a log at most: its head and its tail, this much each.
READ_HEAD = 2 * MB
READ_TAIL = 4 * MB
CHUNK = 1 << 16
F_SETPIPE_SZ = 1031  # Linux: a bigger pipe means fewer wake-ups for a chatty command
PIPE_SIZE = 1 * MB


def capped_line(cap: int, dropped: int) -> bytes:
    """The line written into a capped log."""
    return f"[boss] output capped at {cap / MB:g} MB: {dropped} bytes dropped\n".encode()


class Pump:
    """Copies a pipe's read end into the log file, capped; seen counts every byte read.

    `follow` sees every chunk as it comes, once it is in the log (before the cap, all of it);
    when it returns True the pump is `halted` and writes a byte to `wake` (the run's watcher
    stops the command). An error in it is the follower's, not the log's: it is not called again.
    """

    def __init__(
        self, read_fd: int, log_fd: int, cap: int,
        follow: Callable[[bytes], bool] | None = None, wake: int = -1,
    ) -> None:  # fmt: skip
        self.follow, self.wake, self.halted = follow, wake, False
        self.read_fd, self.log_fd, self.cap = read_fd, log_fd, max(cap, 0)
        self.tail_keep = min(self.cap // 4, TAIL_MAX)
        self.head_room = self.cap - self.tail_keep
        self.written = self.seen = 0
        self.tail = bytearray()
        self.last_byte = b"\n"
        self._finish = threading.Event()
        self._deadline = 0.0
        self._thread = threading.Thread(target=self._run, name="boss-runlog", daemon=True)
        self._thread.start()

    def _write(self, data: bytes | bytearray) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.log_fd, view)
            view = view[n:]

    def _feed(self, data: bytes) -> None:
        self.seen += len(data)
        room = self.head_room - self.written
        if room > 0:
            head = data[:room]
            self._write(head)
            self.written += len(head)
            self.last_byte = head[-1:]
            data = data[room:]
        if data and self.tail_keep:
            self.tail += data
            if len(self.tail) > 2 * self.tail_keep:  # trimmed now and then, not at every chunk
                del self.tail[: -self.tail_keep]

    def _run(self) -> None:
        # The kernel may deliver a process signal to any thread that does not block it; the
        # main thread handles them (see boss.core.proc.signals_held).
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        poller = select.poll()
        poller.register(self.read_fd, select.POLLIN)
        while True:
            ready = poller.poll(100)
            if self._finish.is_set() and (not ready or time.monotonic() > self._deadline):
                return  # drained; a writer that outlived the run is not waited for
            if not ready:
                continue
            try:
                data = os.read(self.read_fd, CHUNK)
            except OSError:
                return
            if not data:
                return
            self._feed(data)
            if self.follow is not None and not self.halted:
                self._follow(data)

    def _follow(self, data: bytes) -> None:
        follow = self.follow
        if follow is None:  # pragma: no cover - called only with a follower
            return
        try:
            halt = follow(data)
        except Exception:
            self.follow = None
            return
        if halt:
            self.halted = True
            with contextlib.suppress(OSError):
                os.write(self.wake, b"!")

    def close(self, timeout: float = 2.0) -> None:
        """Read what is left (up to timeout seconds), write the capped line and the tail."""
        self._deadline = time.monotonic() + timeout
        self._finish.set()
        self._thread.join(timeout + 1.0)
        if self._thread.is_alive():  # pragma: no cover - a write to the log hung
            return  # its fd stays open: closed, its number could be reused under the thread
        with contextlib.suppress(OSError):
            os.close(self.read_fd)
        kept = self.tail[-self.tail_keep :] if self.tail_keep else b""
        dropped = self.seen - self.written - len(kept)
        if dropped > 0:
            self._write((b"" if self.last_byte == b"\n" else b"\n") + capped_line(self.cap, dropped))
            self._write(kept)
        elif kept:  # pragma: no cover - a tail is only kept past the head, so something dropped
            self._write(kept)
        self.tail = bytearray()


def pipe() -> tuple[int, int]:
    """A pipe for a run's output (read end, write end), made large where the kernel allows."""
    read_fd, write_fd = os.pipe()
    with contextlib.suppress(OSError):
        fcntl.fcntl(write_fd, F_SETPIPE_SZ, PIPE_SIZE)
    return read_fd, write_fd


def read(path: Path, head: int = READ_HEAD, tail: int = READ_TAIL) -> str:
    """A log's text, at most head + tail bytes of it: the middle of a longer one is cut out
    and marked. Missing or unreadable: an empty string."""
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size <= head + tail:
                data = f.read(head + tail)
            else:
                first = f.read(head)
                f.seek(size - tail)
                cut = f"\n[boss] {size - head - tail} bytes of this log not read\n".encode()
                data = first + cut + f.read(tail)
    except OSError:
        return ""
    return data.decode("utf-8", errors="replace")
