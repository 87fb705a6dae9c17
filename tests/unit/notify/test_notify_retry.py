"""Backoff with full jitter, Retry-After, the budget, and the rate limiter (fake time)."""

from __future__ import annotations

import itertools
import random

import pytest

from pipeline.notify.config import Retry
from pipeline.notify.retry import (
    DeliveryFailed,
    RateLimiter,
    RouteGone,
    backoff_s,
    deliver,
    parse_retry_after,
)


class FakeTime:
    def __init__(self) -> None:
        self.now_s = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now_s += seconds


def failing(errors: list[Exception]):
    calls: list[int] = []

    def send() -> None:
        calls.append(1)
        if errors:
            raise errors.pop(0)
    return send, calls


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    retry = Retry(initial_backoff_ms=100, max_backoff_ms=1_000)
    rng = random.Random(7)
    for attempt, cap_s in ((1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (40, 1.0)):
        draws = [backoff_s(retry, attempt, rng) for _ in range(300)]
        assert all(0 <= d < cap_s for d in draws)
        assert max(draws) > cap_s * 0.9 and min(draws) < cap_s * 0.1  # spread over [0, cap)


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("7", 0) == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", 1445412480.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490.0) == 0.0
    assert parse_retry_after("soon", 0) is None and parse_retry_after(None, 0) is None


def test_retries_until_delivered_and_counts_them() -> None:
    t = FakeTime()
    send, calls = failing([DeliveryFailed("503"), DeliveryFailed("503")])
    outcome = deliver(send, Retry(), deadline_s=t.now_s + 30, clock=t.clock, sleep=t.sleep,
                      rng=random.Random(1))
    assert outcome.error is None and outcome.retries == 2 and len(calls) == 3
    assert len(t.slept) == 2


def test_retry_after_is_waited_in_full() -> None:
    t = FakeTime()
    send, calls = failing([DeliveryFailed("429", retry_after_s=5.0)])
    assert not calls
    outcome = deliver(send, Retry(max_backoff_ms=100), deadline_s=t.now_s + 30,
                      clock=t.clock, sleep=t.sleep, rng=random.Random(1))
    assert outcome.error is None and t.slept == [5.0] and len(calls) == 2


def test_a_retry_after_beyond_the_budget_gives_up_without_waiting() -> None:
    t = FakeTime()
    send, calls = failing([DeliveryFailed("429", retry_after_s=60.0)])
    outcome = deliver(send, Retry(), deadline_s=t.now_s + 30, clock=t.clock, sleep=t.sleep,
                      rng=random.Random(1))
    assert outcome.error is not None and "429" in outcome.error
    assert t.slept == [] and len(calls) == 1


def test_gives_up_when_the_budget_is_spent() -> None:
    t = FakeTime()
    send, calls = failing([DeliveryFailed("refused")] * 1000)
    outcome = deliver(send, Retry(initial_backoff_ms=500, max_backoff_ms=2_000),
                      deadline_s=t.now_s + 10, clock=t.clock, sleep=t.sleep,
                      rng=random.Random(3))
    assert outcome.error is not None and "retry budget spent" in outcome.error
    assert t.now_s <= 1010 and outcome.retries == len(calls) - 1 > 3


def test_not_retryable_stops_at_once_and_gone_propagates() -> None:
    t = FakeTime()
    send, calls = failing([DeliveryFailed("HTTP 400", retryable=False)])
    outcome = deliver(send, Retry(), deadline_s=t.now_s + 30, clock=t.clock, sleep=t.sleep,
                      rng=random.Random(1))
    assert outcome.error == "not retryable: HTTP 400" and len(calls) == 1
    send, calls = failing([RouteGone("HTTP 410 Gone")])
    with pytest.raises(RouteGone):
        deliver(send, Retry(), deadline_s=t.now_s + 30, clock=t.clock, sleep=t.sleep,
                rng=random.Random(1))


def test_rate_limiter_spaces_calls() -> None:
    t = FakeTime()
    limiter = RateLimiter(2.0, clock=t.clock, sleep=t.sleep)
    stamps = []
    for _ in range(5):
        limiter.acquire()
        stamps.append(t.now_s)
    assert [round(b - a, 6) for a, b in itertools.pairwise(stamps)] == [0.5] * 4
    t.now_s += 10  # idle: the next call does not wait
    before = len(t.slept)
    limiter.acquire()
    assert len(t.slept) == before
