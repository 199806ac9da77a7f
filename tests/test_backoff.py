"""The wait after a rate-limited agent run, and when the worker gives up (worker.lifecycle.backoff).

The whole flow with a real CLI (the run not counted, the wait, the rerun) is
tests/contract/test_worker_rate_limit.py; here the arithmetic, on a fake clock.
"""

from __future__ import annotations

import random

import pytest

from worker.agents.ratelimit import OVERLOADED, RATE_LIMITED, RateLimit
from worker.lifecycle import backoff
from worker.lifecycle.backoff import CAP, JITTER, LimitNotCleared, Streak, base_wait, wait_for

NO_DELAY = RateLimit(RATE_LIMITED, "exceeded retry limit, last status: 429 Too Many Requests", None, 429, 5)


def limit(retry_after: float | None) -> RateLimit:
    return RateLimit(RATE_LIMITED, "Please try again in 1s.", retry_after, 429)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_without_a_delay_from_the_provider_the_wait_doubles_from_the_base_up_to_the_cap():
    waits = [wait_for(NO_DELAY, n, base=30) for n in range(7)]
    assert waits == [30, 60, 120, 240, 480, CAP, CAP]
    assert wait_for(NO_DELAY, 10_000, base=30) == CAP  # no overflow on a long streak


def test_the_providers_delay_is_honoured_when_it_is_longer_even_past_the_cap():
    assert wait_for(limit(1), 0, base=30) == 30  # our own wait is longer: the CLI already waited 1s
    assert wait_for(limit(45), 0, base=30) == 45
    assert wait_for(limit(45), 1, base=30) == 60
    assert wait_for(limit(3600), 5, base=30) == 3600  # never shorter than the provider asks


def test_jitter_only_lengthens_the_wait_and_by_at_most_its_fraction():
    streak = Streak(timeout=0, base=10, clock=Clock(), rng=random.Random(7))
    waits = [streak.next_wait(limit(20)) for _ in range(50)]
    for n, w in enumerate(waits):
        own = max(20, min(CAP, 10 * 2**n))
        assert own <= w <= own * (1 + JITTER), (n, w)
    firsts = {Streak(0, 10, Clock(), random.Random(seed)).next_wait(NO_DELAY) for seed in range(8)}
    assert len(firsts) == 8  # workers limited together do not come back together


def test_a_limit_that_lasts_past_rate_limit_timeout_gives_up_naming_the_limit():
    clock = Clock()
    streak = Streak(timeout=100, base=30, clock=clock, rng=random.Random(1))
    first = streak.next_wait(NO_DELAY)
    assert 30 <= first <= 30 * (1 + JITTER)
    clock.now += first + 5  # the rerun took 5 s and was limited again
    second = streak.next_wait(NO_DELAY)
    left = 100 - (first + 5)
    assert second == pytest.approx(left)  # the wait stops at the deadline: one more try there
    clock.now += second + 5
    with pytest.raises(LimitNotCleared) as e:
        streak.next_wait(NO_DELAY)
    reason = str(e.value)
    assert reason.startswith("the provider's 429 rate limit did not clear within rate_limit_timeout (100s): ")
    assert "3 agent run(s) in 105s ended on it" in reason
    assert NO_DELAY.message in reason and "the code is not at fault" in reason


def test_a_delay_asked_for_past_the_deadline_gives_up_at_once():
    streak = Streak(timeout=60, base=5, clock=Clock())
    with pytest.raises(LimitNotCleared, match=r"overload did not clear .* \(it asks to wait 3600s\)"):
        streak.next_wait(RateLimit(OVERLOADED, "Overloaded", 3600, 529))


def test_timeout_zero_waits_as_long_as_it_takes():
    clock = Clock()
    streak = Streak(timeout=0, base=5, clock=clock)
    for _ in range(40):
        clock.now += 10_000
        assert streak.next_wait(limit(7200)) >= 7200


def test_the_base_wait_comes_from_the_environment_when_it_is_sane(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(backoff.BASE_ENV, raising=False)
    assert base_wait() == backoff.BASE
    for given, expected in (("2", 2.0), ("0.5", 0.5), ("0", backoff.BASE), ("-3", backoff.BASE),
                            ("soon", backoff.BASE), (str(CAP + 1), backoff.BASE)):  # fmt: skip
        monkeypatch.setenv(backoff.BASE_ENV, given)
        assert base_wait() == expected, given
