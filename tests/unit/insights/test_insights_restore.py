"""The changelog: an engine restored from ``changes()`` after a crash goes on exactly as an
uninterrupted one (baselines not relearned, an open insight kept), and entries round-trip."""

from __future__ import annotations

import random

import orjson
import pytest
from insight_traffic import BACKGROUND, KEY, MIN_MS, Caller, minute, poisson, run

from pipeline.insights import InsightEngine, InsightsConfig, InsightStateError, MinuteStats
from pipeline.insights.codec import bucket_key, decode_bucket, encode_bucket, meta_key, parse_key

CFG = InsightsConfig(baseline_ms=70 * MIN_MS, learn_ms=60 * MIN_MS)
SPIKER = Caller("arn:aws:iam::111122223333:user/burst", "boto3/1.34", 1.0, 0.6, "Throttling")


def traffic(seed: int, n: int) -> dict:
    """Three keys of background traffic; one spikes (calls and errors) in minutes 150-159."""
    rng = random.Random(seed)
    keys = [KEY, (*KEY[:3], "TerminateInstances"), ("444455556666", "eu-west-1", *KEY[2:])]
    out = {k: [minute(rng, poisson(rng, mean), BACKGROUND) for _ in range(n)]
           for k, mean in zip(keys, (5.0, 0.5, 30.0), strict=True)}
    for i in range(150, 160):
        out[KEY][i] = minute(rng, 90, (SPIKER,))
    return out


def apply(log: dict[str, bytes | None], changes: dict[str, bytes | None]) -> None:
    """What a compacted topic keeps: the latest value per key, tombstones removing it."""
    for key, value in changes.items():
        if value is None:
            log.pop(key, None)
        else:
            log[key] = value


@pytest.mark.parametrize("crash_at", [100, 152, 158, 165, 260])
def test_restored_engine_goes_on_as_an_uninterrupted_one(crash_at: int) -> None:
    data = traffic(4, 400)
    expected = run(InsightEngine(CFG), range(400), data)
    assert len(expected) >= 2  # the spike gives insights, so the comparison means something

    first, log = InsightEngine(CFG), {}
    events = []
    for stop in range(0, crash_at, 7):  # changes() after every few minutes, as commits do
        events += run(first, range(stop, min(stop + 7, crash_at)), data)
        apply(log, first.changes())
    second = InsightEngine(CFG)
    for key, value in reversed(log.items()):  # any order
        second.restore(key, value)
    assert second.stats()["keys"] == first.stats()["keys"]
    assert second.stats()["open_insights"] == first.stats()["open_insights"]
    events += run(second, range(crash_at, 400), data)
    assert events == expected


def test_restore_applies_tombstones() -> None:
    engine = InsightEngine(CFG)
    one = MinuteStats(3, 0, {"a": 3}, {"u": 3}, {"null": 3})
    engine.close_minute(0, {KEY: one})
    log = engine.changes()
    other = InsightEngine(CFG)
    for key, value in log.items():
        other.restore(key, value)
    other.restore(meta_key(KEY), None)
    assert other.stats()["keys"] == 0


def test_bucket_round_trip_and_bad_entries() -> None:
    engine = InsightEngine(CFG)
    engine.close_minute(0, {KEY: minute(random.Random(1), 40, BACKGROUND)})
    changes = engine.changes()
    value = changes[bucket_key(KEY, 0)]
    assert value is not None
    assert encode_bucket(decode_bucket(value)) == value
    assert parse_key(bucket_key(KEY, 12)) == ("b", KEY, 12)
    assert parse_key(meta_key(KEY)) == ("m", KEY, 0)
    with pytest.raises(InsightStateError):
        parse_key("insight\x1fx\x1fa")
    with pytest.raises(InsightStateError):
        engine.restore(meta_key(KEY), orjson.dumps([99, 0]))
    with pytest.raises(InsightStateError):
        engine.restore(bucket_key(KEY, 0), b"{not json")
