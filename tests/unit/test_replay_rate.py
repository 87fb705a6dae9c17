"""--rate: a token bucket of one second's records, checked on a fake clock."""

from __future__ import annotations

import pytest

from pipeline.replay.rate import RateLimiter, chunk_size, paced, paced_each


class FakeClock:
    """A clock that only moves when the limiter sleeps (or the test advances it)."""

    def __init__(self) -> None:
        self.now_s = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now_s += seconds


def limiter(per_s: float) -> tuple[RateLimiter, FakeClock]:
    clock = FakeClock()
    return RateLimiter(per_s, clock=clock, sleep=clock.sleep), clock


def test_a_full_bucket_passes_one_second_of_records_without_sleeping() -> None:
    rl, clock = limiter(100)
    for _ in range(10):
        rl.wait(10)
    assert clock.sleeps == []
    rl.wait(1)
    assert clock.sleeps == [pytest.approx(0.01)]


def test_the_long_run_rate_is_the_configured_one() -> None:
    rl, clock = limiter(250)
    start_s = clock.now_s
    for _ in range(1000):
        rl.wait(5)
    # 5,000 records at 250/s: the first 250 from the full bucket, the rest 19 s of sleeping.
    assert clock.now_s - start_s == pytest.approx((5000 - 250) / 250)


def test_idle_time_refills_at_most_one_second_of_records() -> None:
    rl, clock = limiter(100)
    rl.wait(100)
    clock.now_s += 3600  # an hour idle: the bucket holds 100, not 360,000
    rl.wait(100)
    assert clock.sleeps == []
    rl.wait(50)
    assert clock.sleeps == [pytest.approx(0.5)]


def test_a_request_larger_than_the_bucket_is_repaid_by_the_next_ones() -> None:
    rl, clock = limiter(10)
    rl.wait(30)  # 10 in the bucket, 20 borrowed: 2 s
    assert clock.sleeps == [pytest.approx(2.0)]
    rl.wait(10)  # the debt is repaid by the sleep; this one waits its own 1 s
    assert clock.sleeps == [pytest.approx(2.0), pytest.approx(1.0)]


@pytest.mark.parametrize("per_s", [0, -5, float("nan")])
def test_a_rate_that_is_not_positive_is_refused(per_s: float) -> None:
    with pytest.raises(ValueError, match="--rate"):
        RateLimiter(per_s)


def test_paced_yields_every_item_once_in_order_in_tenth_of_a_second_chunks() -> None:
    rl, clock = limiter(200)
    items = list(range(1234))
    chunks = list(paced(items, rl))
    assert [x for c in chunks for x in c] == items
    assert {len(c) for c in chunks[:-1]} == {chunk_size(rl)} == {20}
    assert clock.now_s - 1000.0 == pytest.approx((1234 - 200) / 200)


def test_paced_without_a_limiter_does_not_wait() -> None:
    items = [b"x"] * 25_000
    assert [len(c) for c in paced(items, None)] == [10_000, 10_000, 5_000]
    assert list(paced([], None)) == []


def test_paced_each_yields_a_stream_unchanged_waiting_once_per_chunk() -> None:
    rl, clock = limiter(50)  # chunks of 5
    seen = []
    for item in paced_each(iter(range(120)), rl):
        seen.append((item, clock.now_s))
    assert [item for item, _ in seen] == list(range(120))
    assert len(clock.sleeps) == (120 - 50) // 5
    # Items of one chunk pass at one instant; the 11th chunk (items 50..54) waited 0.1 s.
    assert [t for item, t in seen if 50 <= item < 55] == [pytest.approx(1000.1)] * 5
    assert clock.now_s - 1000.0 == pytest.approx((120 - 50) / 50)
    assert list(paced_each(iter("abc"), None)) == ["a", "b", "c"]
