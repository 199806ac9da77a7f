"""A slot of its provider for each agent run: how many run at once adapts (boss.core.limiter).

run_workers.sh passes its -j as BOSS_JOBS: at most that many agent runs of the plan talk to one
provider (the CLI, and the host its environment points it at) at once, and fewer after a limit.
Before each agent run the worker takes a slot; while none is free it waits, in its status
(`waiting_for`, and the last event "waiting for a slot of provider codex (2 running, cap 2 of
8)"): that wait costs no iteration and does not count toward rate_limit_timeout, and a stop
signal ends it at once. After the run it gives the slot back: a run that ended on the provider's
limit halves the cap, any other that ran to its end adds one. Each change is a `concurrency`
event in the state log (and in the limits file's history).

A worker started without BOSS_JOBS (`worker run`, `boss do`) joins the cap of a pool running
its plan when there is one (the limits file), at that file's -j; otherwise it takes no slot.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from boss.core.limiter import Change, Full, Limits, Taken
from worker.agents.ratelimit import RateLimit, describe, provider_key
from worker.lifecycle.session import Run

JOBS_ENV = "BOSS_JOBS"
POLL = 0.25  # seconds between looks at a full cap (a little more, at random)


def jobs_from_env() -> int | None:
    """BOSS_JOBS as a whole number of at least 1; None when unset or not one."""
    text = os.environ.get(JOBS_ENV, "").strip()
    return int(text) if text.isdigit() and int(text) >= 1 else None


@dataclass
class Held:
    """The slot of one agent run, and how the run ended (set `limit` when it ended on one)."""

    slot: Taken | None
    limit: RateLimit | None = None


class ProviderSlots:
    """The slots of one worker run's provider."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.provider = provider_key(run.profile.name, os.environ)
        self.limits = Limits(run.paths.root / "limits", self.provider)
        self.waited = 0.0  # seconds the last take waited for a slot

    def jobs(self) -> int | None:
        """This run's -j; a lone worker's: the file's, when a pool made one."""
        own = jobs_from_env()
        if own is not None:
            return own
        found = self.limits.read()
        value = found.get("max") if found else None
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None

    @contextmanager
    def held(self, iid: str) -> Iterator[Held]:
        """A slot around one agent run; given back when it ends, on an exception too."""
        held = Held(self.take(iid))
        try:
            yield held
        except BaseException:
            if held.slot is not None:
                self.limits.give_back(held.slot, None, counts=False)
            raise
        if held.slot is not None:
            name = describe(held.limit) if held.limit else None
            change = self.limits.give_back(held.slot, name)
            if change is not None:
                self.record(iid, change)

    def take(self, iid: str) -> Taken | None:
        """A slot, once one is free (None: this worker takes none); self.waited: how long it waited."""
        self.waited = 0.0
        jobs = self.jobs()
        if jobs is None:
            return None
        started, shown = time.monotonic(), None
        try:
            while True:
                got = self.limits.take(self.run.w.id, jobs)
                if got.note and shown is None:
                    print(f"Warning: {got.note}", file=sys.stderr, flush=True)
                if isinstance(got, Taken):
                    break
                shown = self.show(iid, got, shown)
                # A stop signal raises KeyboardInterrupt in the sleep.
                time.sleep(POLL * random.uniform(1.0, 1.5))  # noqa: S311
        except BaseException:
            if shown is not None:
                self.run.rec.update(waiting_for="")
            raise
        self.waited = time.monotonic() - started
        if shown is not None:
            numbers = f"{got.running} running, cap {got.cap} of {got.max}"
            said = f"waited {self.waited:.0f}s for a slot of provider {self.provider} ({numbers})"
            self.run.rec.event(iid, "slot-wait", said, waiting_for="")
        return got

    def show(self, iid: str, full: Full, shown: tuple[int, int, int] | None) -> tuple[int, int, int]:
        """Say in the status that the worker waits for a slot (again when the numbers change)."""
        now = (full.running, full.cap, full.max)
        if now != shown:
            numbers = f"{full.running} running, cap {full.cap} of {full.max}"
            what = f"waiting for a slot of provider {self.provider} ({numbers})"
            if shown is None:
                self.run.rec.event(iid, "slot-wait", what, waiting_for=self.provider)
            else:
                self.run.rec.update(last_event=f"slot-wait: {what}", waiting_for=self.provider)
        return now

    def record(self, iid: str, change: Change) -> None:
        """A `concurrency` event: the provider's cap went down or up, and why."""
        way = "halved" if change.after < change.before else "grew"
        said = (
            f"provider {self.provider}: cap {way} from {change.before} to {change.after} agent run(s) at once"
        )
        self.run.rec.event(iid, "concurrency", f"{said} (of {change.max}): {change.why}")
