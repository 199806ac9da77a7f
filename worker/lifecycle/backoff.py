"""A run that ended on its provider's rate limit or overload costs time, not an iteration.

Every agent CLI retries a 429 or 529 by itself first; when it gives up (or is stopped while it
waits), its profile's `rate_limit()` reads it and worker.lifecycle.attempt raises RateLimited.
run_clear then records the limit (state-log action `rate-limit`, with the CLI's words and the
wait), shows the wait in the status (`waiting_until`, and the last event), waits, and runs the
same iteration again: its counter does not move, the worktree keeps what the cut-short run
changed, and each run keeps its own folder (`s1i2`, `s1i2-r1`, ...).

The wait: the provider's delay when the output names it, else BASE doubling per limit of the
streak, capped at CAP, the larger of the two, times a jitter of up to JITTER (workers limited
together do not come back together). A streak ends at a run that is not limited. A streak that
lasts longer than `rate_limit_timeout` (from its first limit; 0: no limit) ends the worker
(LimitNotCleared): FAILED with the limit's words, no blocker report (the code is not at fault).
A stop signal during the wait ends the worker at once (worker.lifecycle.signals raises
KeyboardInterrupt in the sleep). Each run holds a slot of its provider (worker.lifecycle.slots):
a limited run halves how many run at once, a run without a limit adds one.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from boss.core.errors import BossError
from boss.core.proc import Outcome
from worker.agents.ratelimit import RateLimit, describe
from worker.lifecycle.attempt import RateLimited, run_agent
from worker.lifecycle.blocker import counted
from worker.lifecycle.session import Run
from worker.lifecycle.slots import ProviderSlots

BASE = 30.0  # seconds: the first wait when the provider names none (BOSS_RATE_LIMIT_BACKOFF)
CAP = 600.0  # the longest wait of our own; a longer delay the provider asks for is still honoured
JITTER = 0.25  # each wait is lengthened by up to this fraction
BASE_ENV = "BOSS_RATE_LIMIT_BACKOFF"
RERUN_NOTE = (
    "\n\n(Your previous run of this iteration was cut short by the model provider's rate limit: "
    "the worktree keeps what it changed. Go on from there.)\n"
)


class LimitNotCleared(BossError):
    """The provider's rate limit or overload lasted longer than rate_limit_timeout."""


def base_wait() -> float:
    """The first wait of a streak when the provider names no delay: BOSS_RATE_LIMIT_BACKOFF or BASE."""
    try:
        value = float(os.environ.get(BASE_ENV, "") or BASE)
    except ValueError:
        value = BASE
    return value if 0 < value <= CAP else BASE


def wait_for(limit: RateLimit, n: int, base: float = BASE, cap: float = CAP, jitter: float = 1.0) -> float:
    """Seconds to wait after the n-th limit of a streak (0-based): the provider's delay, or
    base * 2**n capped at cap, whichever is longer, times jitter (1 to 1 + JITTER)."""
    own = min(cap, base * 2.0 ** min(n, 32))
    return round(max(limit.retry_after or 0.0, own) * jitter, 3)


@dataclass
class Streak:
    """Rate-limited runs in a row, and when the first of them ended (a monotonic clock)."""

    timeout: float  # rate_limit_timeout; 0: no limit
    base: float = BASE
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)
    count: int = 0
    first: float = 0.0

    def pause(self, seconds: float) -> None:
        """Leave seconds out of the streak's time (the worker waited for a slot, not for the limit)."""
        if self.count:
            self.first += seconds

    def next_wait(self, limit: RateLimit) -> float:
        """How long to wait before the next run; LimitNotCleared when the streak is over its time."""
        now = self.clock()
        if self.count == 0:
            self.first = now
        wait = wait_for(limit, self.count, self.base, jitter=self.rng.uniform(1.0, 1.0 + JITTER))
        self.count += 1
        if not self.timeout:
            return wait
        left = self.first + self.timeout - now
        if left <= 0 or (limit.retry_after or 0) > left:
            raise LimitNotCleared(gave_up(limit, self.count, now - self.first, self.timeout))
        return min(wait, left)


def gave_up(limit: RateLimit, runs: int, lasted: float, timeout: float) -> str:
    """The reason a worker ends with when its provider's limit did not clear."""
    asks = f" (it asks to wait {limit.retry_after:g}s)" if limit.retry_after else ""
    return (
        f"the provider's {describe(limit)} did not clear within rate_limit_timeout ({timeout:g}s): "
        f"{runs} agent run(s) in {lasted:.0f}s ended on it{asks}; last: {limit.message}; "
        "nothing was committed and the code is not at fault: run the worker again later"
    )


def run_clear(run: Run, prompt: str, strategy: int, adir: Path) -> tuple[Outcome, Path]:
    """run_agent, run again after a wait as long as it ends on a rate limit; the outcome of the
    run that did not, and its folder (adir, or adir-rN for the Nth rerun)."""
    streak = Streak(run.settings.rate_limit_timeout, base_wait())
    slots = ProviderSlots(run)
    where, text = adir, prompt
    iid = f"{run.w.id}.s{strategy}.i{run.iteration}"
    while True:
        with slots.held(iid) as held:
            streak.pause(slots.waited)  # waiting for a slot is no part of the limit's time
            try:
                return run_agent(run, text, strategy, where), where
            except RateLimited as e:
                limit = held.limit = e.limit
        wait = streak.next_wait(limit)
        until = datetime.now(UTC) + timedelta(seconds=wait)
        at = until.strftime("%Y-%m-%dT%H:%M:%SZ")
        retried = f" after {counted(limit.retries, 'retry')} of its own" if limit.retries else ""
        result = (
            f"waiting {wait:.0f}s for the provider's {describe(limit)} (until {at}), then iteration "
            f"{run.iteration} runs again; the {run.profile.name} run ended on it{retried}: {limit.message}"
        )
        run.rec.event(iid, "rate-limit", result, where / "agent.log", waiting_until=at)
        time.sleep(wait)  # a stop signal raises KeyboardInterrupt here (worker.lifecycle.signals)
        where = adir.with_name(f"{adir.name}-r{streak.count}")
        text = prompt + RERUN_NOTE
        run.rec.update(waiting_until="", last_event=f"rate-limit: waited {wait:.0f}s; running iteration "
                       f"{run.iteration} again ({where.name})")  # fmt: skip
