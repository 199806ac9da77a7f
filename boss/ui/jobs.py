"""`boss merge` and `boss retry` started from the page: the real commands as child processes,
their output kept in memory for the page to follow (the command's own files are the record)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

MAX_LINES = 5000  # of one job's output kept for the page; the command's own files keep the rest


@dataclass
class Job:
    """One command run from the page."""

    number: int
    argv: list[str]
    title: str
    started: float
    proc: subprocess.Popen[bytes]
    lines: list[str] = field(default_factory=list)
    code: int | None = None
    cut: int = 0  # lines dropped from the front

    @property
    def running(self) -> bool:
        return self.code is None

    @property
    def version(self) -> tuple[int, int, int | None]:
        return (self.number, len(self.lines) + self.cut, self.code)


class Jobs:
    """Every job this UI started, numbered from 1."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.all: list[Job] = []
        self.lock = threading.Lock()

    def start(self, title: str, *args: str) -> Job:
        """Run `boss ARGS...` in the repository; its output is read by a thread. `-P`: the
        repository (the cwd) is not put on sys.path, so a `boss.py` or `boss/` in it does not
        run instead of the installed boss."""
        argv = [sys.executable, "-P", "-m", "boss", *args]
        env = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            argv, cwd=self.repo, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
        with self.lock:
            job = Job(len(self.all) + 1, ["boss", *args], title, time.time(), proc)
            self.all.append(job)
        threading.Thread(
            target=self._read, args=(job,), name=f"boss-ui-job-{job.number}", daemon=True
        ).start()
        return job

    def _read(self, job: Job) -> None:
        assert job.proc.stdout is not None  # noqa: S101 - Popen with stdout=PIPE
        for raw in job.proc.stdout:
            with self.lock:
                job.lines.append(raw.decode("utf-8", errors="replace").rstrip("\n"))
                if len(job.lines) > MAX_LINES:
                    del job.lines[0]
                    job.cut += 1
        job.code = job.proc.wait()

    def get(self, number: int) -> Job | None:
        with self.lock:
            return self.all[number - 1] if 0 < number <= len(self.all) else None

    def running(self, *args: str) -> Job | None:
        """The running job of exactly this command, if any (one merge at a time from here)."""
        with self.lock:
            return next((j for j in self.all if j.running and j.argv[1:] == list(args)), None)

    def version(self) -> tuple[tuple[int, int, int | None], ...]:
        with self.lock:
            return tuple(j.version for j in self.all)

    def stop_all(self, wait: float = 15.0) -> None:
        """SIGTERM every running job (each stops as on Ctrl-C: a merge resumes on its next
        run, a retry records that it was interrupted), then wait for them."""
        for j in list(self.all):
            if j.running:
                with contextlib.suppress(OSError):
                    os.killpg(j.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + wait
        for j in list(self.all):
            try:
                j.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    os.killpg(j.proc.pid, signal.SIGKILL)
                j.proc.wait()
