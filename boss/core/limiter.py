"""How many agent runs of one plan may talk to one provider at once, adapted as it answers.

One file per provider, `.boss/plans/<plan>/limits/<provider>.json`, read and rewritten under
its lock (`<provider>.lock`, boss.core.lock) by every worker of the plan:

    {"version": 1, "provider": "codex", "cap": 4, "max": 8, "epoch": 1,
     "holders": [{"worker": "W3", "pid": 4242, "start": 91234, "epoch": 1, "since": "...Z"}],
     "history": [{"at": "...Z", "worker": "W5", "from": 8, "cap": 4, "why": "429 rate limit"}]}

A worker takes a slot before each agent run (`take`: None while `cap` slots are held) and gives
it back after (`give_back`). A run that ended on the provider's limit halves the cap (never
below 1); one that ended without a limit adds one (never above `max`, run_workers.sh's -j). The
runs limited by one overload are one event, as TCP halves once per lost window: only a run that
took its slot since the last halving (`epoch`) halves the cap again or grows it; older runs
tell of a concurrency that is gone. Every change is kept in `history` (the last HISTORY).

Crash-safe: the kernel drops the lock of a dead process, and a holder whose process is gone (its
pid dead, or reused by a process that started later) is dropped by the next reader. A file that
does not parse was not written by a worker (writes are atomic): it is rebuilt at cap = max,
and `take` says so in one line naming the file. The cap is kept from run to run (clamped to the
new -j): a rerun after a storm of limits starts where the last run left off.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boss.core import proctree
from boss.core.lock import locked
from boss.core.proc import pid_alive
from boss.core.status import now_iso
from boss.core.yamlio import write_atomic

VERSION = 1
HISTORY = 200  # cap changes kept in the file
LOCK_TIMEOUT = 30.0
_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]+")


def file_name(provider: str) -> str:
    """A provider key as a file name: `claude@127.0.0.1_8080` (at most 100 characters)."""
    name = _UNSAFE.sub("_", provider).strip("._") or "provider"
    return name[:100]


@dataclass(frozen=True)
class Taken:
    """A slot held: what it was taken under."""

    provider: str
    worker: str
    pid: int
    epoch: int
    running: int  # slots held, this one included
    cap: int
    max: int
    note: str = ""  # a line to show once: the file was rebuilt


@dataclass(frozen=True)
class Full:
    """No slot free now."""

    running: int
    cap: int
    max: int
    note: str = ""  # a line to show once: the file was rebuilt


@dataclass(frozen=True)
class Change:
    """What giving a slot back did to the cap."""

    before: int
    after: int
    max: int
    why: str


class Limits:
    """The limits file of one provider of one plan."""

    def __init__(self, folder: Path, provider: str) -> None:
        self.provider = provider
        self.path = folder / f"{file_name(provider)}.json"
        self.lock = folder / f"{file_name(provider)}.lock"
        self._read = ""  # the file's text as last read (under the lock)

    def take(self, worker: str, jobs: int, pid: int | None = None) -> Taken | Full:
        """A slot for worker's process (pid, default this one) when fewer than the cap are held."""
        pid = pid or os.getpid()
        with self._held():
            data, note = self._load(jobs)
            if data["max"] != jobs:  # this run's -j (the cap learnt before is kept, within it)
                data["max"] = jobs
                if data["cap"] > jobs:
                    self._change(data, worker, jobs, f"-j is {jobs}")
            holders = [h for h in data["holders"] if h["worker"] != worker]  # its own stale one
            if len(holders) >= data["cap"]:
                data["holders"] = holders
                self._save(data)
                return Full(len(holders), data["cap"], data["max"], note)
            holders.append({"worker": worker, "pid": pid, "start": _started(pid), "epoch": data["epoch"],
                            "since": now_iso()})  # fmt: skip
            data["holders"] = holders
            self._save(data)
            return Taken(
                self.provider, worker, pid, data["epoch"], len(holders), data["cap"], data["max"], note
            )

    def give_back(self, slot: Taken, limited: str | None, counts: bool = True) -> Change | None:
        """Give the slot back: `limited` (the limit's name) halves the cap, a run without one
        (`counts`: it ran to its end) adds one; the change, None when the cap stayed."""
        with self._held():
            data, _ = self._load(slot.max)
            data["holders"] = [
                h for h in data["holders"] if not (h["worker"] == slot.worker and h["pid"] == slot.pid)
            ]
            before, change = data["cap"], None
            if slot.epoch == data["epoch"]:
                if limited is not None and before > 1:
                    data["epoch"] += 1
                    change = self._change(data, slot.worker, max(1, before // 2), limited)
                elif limited is not None:
                    data["epoch"] += 1  # at the floor: later limits of this overload are old news too
                elif counts and before < data["max"]:
                    change = self._change(data, slot.worker, before + 1, "a run ended without a limit")
            self._save(data)
            return change

    def read(self) -> dict[str, Any] | None:
        """The file as it is (None: none, or not readable)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    @contextlib.contextmanager
    def _held(self) -> Iterator[None]:
        busy = f"{self.lock}: another worker holds the provider's limits file past {LOCK_TIMEOUT:g}s"
        with locked(self.lock, LOCK_TIMEOUT, busy):
            yield

    def _load(self, jobs: int) -> tuple[dict[str, Any], str]:
        """The file's data with dead holders dropped; a fresh one (and why) when none or unreadable."""
        fresh = {"version": VERSION, "provider": self.provider, "cap": jobs, "max": jobs, "epoch": 0,
                 "holders": [], "history": []}  # fmt: skip
        self._read = ""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return fresh, ""
        except OSError as e:
            return fresh, f"{self.path}: cannot read it ({e.strerror}); starting again at {jobs} at once"
        problem = _problem(text)
        if problem:
            return fresh, f"{self.path}: {problem}; a worker writes this file, so it was edited by hand: " \
                f"rebuilt, {jobs} agent run(s) at once to start with"  # fmt: skip
        self._read = text
        data = json.loads(text)
        data["holders"] = [h for h in data["holders"] if _alive(h)]
        return data, ""

    def _change(self, data: dict[str, Any], worker: str, cap: int, why: str) -> Change:
        change = Change(data["cap"], cap, data["max"], why)
        data["history"] = [*data["history"], {"at": now_iso(), "worker": worker, "from": data["cap"],
                                               "cap": cap, "why": why}][-HISTORY:]  # fmt: skip
        data["cap"] = cap
        return change

    def _save(self, data: dict[str, Any]) -> None:
        text = json.dumps(data, indent=1) + "\n"
        if text != self._read:  # a worker waiting for a slot looks often and mostly changes nothing
            write_atomic(self.path, text)


def _problem(text: str) -> str:
    """What is wrong with a limits file's text, '' when nothing."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return "not valid JSON"
    if not isinstance(data, dict):
        return "not a limits object"
    for key in ("cap", "max", "epoch"):
        value = data.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "epoch" else 1):
            return (
                f"field {key}: {value!r:.40} is not a whole number of at least {0 if key == 'epoch' else 1}"
            )
    for key in ("holders", "history"):
        if not isinstance(data.get(key), list):
            return f"field {key}: not a list"
    for h in data["holders"]:
        if not (isinstance(h, dict) and isinstance(h.get("worker"), str) and _whole(h.get("pid"))
                and _whole(h.get("start")) and _whole(h.get("epoch"))):  # fmt: skip
            return "field holders: an entry is not {worker, pid, start, epoch}"
    return ""


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


def _started(pid: int) -> int:
    """When process pid started (clock ticks since boot, boss.core.proctree); 0: unknown."""
    found = proctree.read(pid)
    return found.start if found is not None else 0


def _alive(holder: dict[str, Any]) -> bool:
    """The holder's process still runs (not a later process that was given its pid)."""
    pid, start = holder["pid"], holder["start"]
    if not pid_alive(pid):
        return False
    return not start or _started(pid) in (0, start)
