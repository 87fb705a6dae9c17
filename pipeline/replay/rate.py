"""``trailpipe replay --rate N``: at most N records per second, on average, to any output.

Contract. :class:`RateLimiter` is a token bucket holding at most one second of tokens
(``per_s``), full at the start: ``wait(n)`` takes ``n`` tokens, sleeping first for as long as
the bucket is short (a request larger than the bucket borrows, and the next calls repay the
debt). So over any T seconds at most ``per_s * (T + 1)`` records pass. The clock and the sleep
are parameters, so the limiter is tested with a fake clock.

:func:`paced` cuts a sequence into chunks of about a tenth of a second of records and waits
for each before yielding it: the writer (stdout, a file, a producer) just writes what it gets.
:func:`paced_each` does the same for a stream it yields item by item (records produced into
a topic one at a time), waiting once per chunk, not per record.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")
CHUNKS_PER_S = 10
"""Chunks per second of records that :func:`paced` yields (so it sleeps about every 100 ms)."""


class RateLimiter:
    """At most ``per_s`` records per second on average, bursts of at most one second's worth."""

    def __init__(self, per_s: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not per_s > 0:
            raise ValueError(f"--rate must be a positive number of records per second, "
                             f"got {per_s}")
        self.per_s = per_s
        self._clock = clock
        self._sleep = sleep
        self._tokens = per_s  # may go negative: a debt the elapsed time repays
        self._last_s = clock()

    def wait(self, n: int) -> None:
        """Take ``n`` tokens, sleeping until the bucket has them (then they may be used)."""
        now_s = self._clock()
        self._tokens = min(self.per_s, self._tokens + (now_s - self._last_s) * self.per_s)
        self._last_s = now_s
        self._tokens -= n
        if self._tokens < 0:
            self._sleep(-self._tokens / self.per_s)


def chunk_size(limiter: RateLimiter | None, default: int = 10_000) -> int:
    """Records per chunk: a tenth of a second's worth at ``limiter``'s rate (at least 1), or
    ``default`` without a limiter."""
    if limiter is None:
        return default
    return max(1, int(limiter.per_s / CHUNKS_PER_S))


def paced(items: Sequence[T], limiter: RateLimiter | None) -> Iterator[Sequence[T]]:
    """``items`` in consecutive chunks (:func:`chunk_size`), each yielded once ``limiter``
    allows its records; without a limiter, at once."""
    size = chunk_size(limiter)
    for start in range(0, len(items), size):
        chunk = items[start:start + size]
        if limiter is not None:
            limiter.wait(len(chunk))
        yield chunk


def paced_each(items: Iterable[T], limiter: RateLimiter | None) -> Iterator[T]:
    """``items`` one by one; before the first of every chunk (:func:`chunk_size`) it waits
    for the whole chunk's records. Without a limiter, ``items`` unchanged."""
    if limiter is None:
        yield from items
        return
    size = chunk_size(limiter)
    for i, item in enumerate(items):
        if i % size == 0:
            limiter.wait(size)
        yield item
