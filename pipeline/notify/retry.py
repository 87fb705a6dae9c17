"""Retrying one delivery: exponential backoff with full jitter inside a route's budget,
``Retry-After`` honoured, a gone destination (HTTP 410) reported, and a rate limiter.

Clock, sleep and randomness are passed in, so the policy is tested without waiting.
"""

from __future__ import annotations

import email.utils
import random
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.notify.config import Retry

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class DeliveryFailed(Exception):
    """One attempt failed. ``retryable`` False: another attempt cannot help (a 4xx other
    than 408/429); ``retry_after_s``: the destination asked to wait that long."""

    def __init__(self, message: str, *, retryable: bool = True,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retryable, self.retry_after_s = retryable, retry_after_s


class RouteGone(Exception):
    """The destination says it is gone for good (HTTP 410): the route must be disabled."""


def backoff_s(retry: Retry, attempt: int, rng: random.Random) -> float:
    """Full jitter: uniform in ``[0, min(max, initial * 2**(attempt-1)))`` seconds, for the
    ``attempt``-th retry (1-based)."""
    cap_ms = min(retry.max_backoff_ms, retry.initial_backoff_ms * 2 ** min(attempt - 1, 30))
    return rng.uniform(0, cap_ms / 1000)


def parse_retry_after(value: str | None, now_s: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date);
    None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now_s)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one delivery ended: ``error`` None when delivered; ``retries`` made."""

    retries: int
    error: str | None = None


def deliver(send: Callable[[], None], retry: Retry, *, deadline_s: float, clock: Clock,
            sleep: Sleep, rng: random.Random) -> Outcome:
    """Call ``send`` until it returns, retrying :class:`DeliveryFailed` with backoff while
    the next attempt can start before ``deadline_s`` (a monotonic time). A ``Retry-After``
    is waited in full, or the delivery gives up when it reaches past the deadline.
    :class:`RouteGone` propagates."""
    retries = 0
    while True:
        try:
            send()
            return Outcome(retries)
        except DeliveryFailed as exc:
            if not exc.retryable:
                return Outcome(retries, f"not retryable: {exc}")
            wait_s = backoff_s(retry, retries + 1, rng)
            if exc.retry_after_s is not None:
                wait_s = max(wait_s, exc.retry_after_s)
            if clock() + wait_s >= deadline_s:
                return Outcome(retries, f"retry budget spent after {retries + 1} attempts: "
                                        f"{exc}")
            sleep(wait_s)
            retries += 1


class RateLimiter:
    """At most ``per_s`` calls per second, evenly spaced: :meth:`acquire` sleeps until the
    next slot (Slack's incoming webhooks allow about one message per second)."""

    def __init__(self, per_s: float, *, clock: Clock, sleep: Sleep) -> None:
        self._interval_s = 1.0 / per_s
        self._clock, self._sleep = clock, sleep
        self._next_s: float | None = None

    def acquire(self) -> None:
        now = self._clock()
        if self._next_s is not None and now < self._next_s:
            self._sleep(self._next_s - now)
            now = self._next_s
        self._next_s = now + self._interval_s
