"""The engine on synthetic traffic: spikes give exactly one Start and one End with the right
key and attribution; steady Poisson traffic for days gives none."""

from __future__ import annotations

import random

import pytest
from insight_traffic import BACKGROUND, KEY, MIN_MS, T0_MS, Caller, minute, poisson, run

from pipeline.insights import (
    CALL_RATE,
    ERROR_RATE,
    InsightEngine,
    InsightsConfig,
    MinuteStats,
    validate_insight,
)

CFG = InsightsConfig(baseline_ms=24 * 60 * MIN_MS, learn_ms=120 * MIN_MS)
ATTACKER = Caller("arn:aws:sts::111122223333:assumed-role/ops/mallory", "python-requests/2.31",
                  error_code="AccessDenied")
OTHER = ("111122223333", "eu-west-1", "ec2.amazonaws.com", "RunInstances")


def background(rng: random.Random, mean: float, n: int) -> list[MinuteStats | None]:
    return [minute(rng, poisson(rng, mean), BACKGROUND) for _ in range(n)]


def details(event: dict) -> dict:
    return event["insightDetails"]


def top(event: dict, attribute: str) -> str:
    block = next(a for a in details(event)["insightContext"]["attributions"]
                 if a["attribute"] == attribute)
    return block["insight"][0]["value"]


def test_rate_spike_gives_one_start_and_one_end() -> None:
    rng = random.Random(7)
    traffic = {KEY: background(rng, 4.0, 600), OTHER: background(rng, 4.0, 600)}
    spike = range(300, 306)
    for i in spike:
        base = traffic[KEY][i]
        extra = minute(rng, 150, (ATTACKER,))
        traffic[KEY][i] = MinuteStats(
            base.calls + extra.calls, base.errors, {**base.arns, **extra.arns},
            {**base.user_agents, **extra.user_agents},
            {"null": base.error_codes.get("null", 0) + 150} | {
                k: v for k, v in base.error_codes.items() if k != "null"})
    events = run(InsightEngine(CFG), range(600), traffic)

    assert [details(e)["state"] for e in events] == ["Start", "End"]
    start, end = events
    for e in events:
        assert validate_insight(e) == []
        assert (e["recipientAccountId"], e["awsRegion"], details(e)["eventName"]) == (
            KEY[0], KEY[1], KEY[3])
        assert details(e)["insightType"] == CALL_RATE
        assert top(e, "userIdentityArn") == ATTACKER.arn
        assert top(e, "userAgent") == ATTACKER.user_agent
    assert start["sharedEventID"] == end["sharedEventID"]
    assert start["eventID"] != end["eventID"]
    assert start["eventTime"] == _iso(T0_MS + spike.start * MIN_MS)
    assert end["eventTime"] == _iso(T0_MS + spike.stop * MIN_MS)
    stats = details(end)["insightContext"]["statistics"]
    assert stats["insightDuration"] == len(spike)
    expected = sum(traffic[KEY][i].calls for i in spike) / len(spike)
    assert stats["insight"]["average"] == pytest.approx(expected)
    assert 3.0 < stats["baseline"]["average"] < 5.0
    assert stats["baselineDuration"] == 300


def test_error_spike_gives_an_error_rate_insight() -> None:
    rng = random.Random(11)
    traffic = {KEY: background(rng, 20.0, 400)}
    spike = range(200, 204)
    for i in spike:  # the usual volume, but half of it from a principal denied every time
        base = minute(rng, 10, BACKGROUND)
        bad = minute(rng, 10, (Caller(ATTACKER.arn, ATTACKER.user_agent, 1.0, 1.0,
                                      "AccessDenied"),))
        traffic[KEY][i] = MinuteStats(
            20, base.errors + 10, {**base.arns, **bad.arns},
            {**base.user_agents, **bad.user_agents},
            {**base.error_codes, "AccessDenied": 10}, {**base.error_arns, **bad.error_arns},
            {**base.error_user_agents, **bad.error_user_agents})
    events = run(InsightEngine(CFG), range(400), traffic)

    assert [(details(e)["insightType"], details(e)["state"]) for e in events] == [
        (ERROR_RATE, "Start"), (ERROR_RATE, "End")]
    for e in events:
        assert validate_insight(e) == []
        assert top(e, "userIdentityArn") == ATTACKER.arn
        assert top(e, "errorCode") == "AccessDenied"
    assert details(events[1])["insightContext"]["statistics"]["insightDuration"] == len(spike)


def test_steady_poisson_traffic_for_days_gives_none() -> None:
    """Three days at means from 1 call an hour to 200 a minute (6 keys, ~25k key-minutes)."""
    rng = random.Random(3)
    means = (1 / 60, 0.3, 2.0, 8.0, 40.0, 200.0)
    days = 3 * 24 * 60
    traffic = {(KEY[0], KEY[1], KEY[2], f"Call{i}"): background(rng, mean, days)
               for i, mean in enumerate(means)}
    engine = InsightEngine(CFG)
    assert run(engine, range(days), traffic) == []
    assert engine.stats()["insights_started"] == 0


def test_no_insight_while_learning() -> None:
    rng = random.Random(5)
    traffic = {KEY: background(rng, 2.0, 200)}
    traffic[KEY][60] = minute(rng, 500, (ATTACKER,))  # before learn_ms (120 minutes)
    assert run(InsightEngine(CFG), range(200), traffic) == []


def test_a_long_spike_stays_one_insight_and_is_not_learned() -> None:
    """A spike longer than the whole baseline neither ends nor becomes the new normal."""
    cfg = InsightsConfig(baseline_ms=70 * MIN_MS, learn_ms=60 * MIN_MS)
    rng = random.Random(9)
    traffic = {KEY: background(rng, 3.0, 500)}
    for i in range(100, 300):
        traffic[KEY][i] = minute(rng, 100, BACKGROUND)
    events = run(InsightEngine(cfg), range(500), traffic)
    assert [details(e)["state"] for e in events] == ["Start", "End"]
    assert events[1]["eventTime"] == _iso(T0_MS + 300 * MIN_MS)
    assert details(events[1])["insightContext"]["statistics"]["insightDuration"] == 200


def test_an_idle_key_learns_zero_minutes() -> None:
    """Calls, then nothing for longer than the baseline: the baseline is all zeros, so a burst
    fires, and its baselineDuration counts the idle minutes."""
    rng = random.Random(1)
    cfg = InsightsConfig(baseline_ms=70 * MIN_MS, learn_ms=30 * MIN_MS)
    traffic: dict = {KEY: [None] * 400}
    for i in range(40):
        traffic[KEY][i] = minute(rng, 30, BACKGROUND)
    traffic[KEY][390] = minute(rng, 12, (ATTACKER,))
    events = run(InsightEngine(cfg), range(400), traffic)
    assert [details(e)["state"] for e in events] == ["Start", "End"]
    stats = details(events[0])["insightContext"]["statistics"]
    assert stats["baseline"]["average"] == 0
    assert stats["baselineDuration"] >= 70


def test_ending_needs_consecutive_normal_minutes() -> None:
    """Anomalous, normal, anomalous, then normal: one insight over the whole span."""
    rng = random.Random(2)
    traffic = {KEY: background(rng, 2.0, 300)}
    for i in (200, 201, 203, 204):
        traffic[KEY][i] = minute(rng, 80, (ATTACKER,))
    events = run(InsightEngine(CFG), range(300), traffic)
    assert [details(e)["state"] for e in events] == ["Start", "End"]
    assert events[1]["eventTime"] == _iso(T0_MS + 205 * MIN_MS)
    assert details(events[1])["insightContext"]["statistics"]["insightDuration"] == 5


def test_max_keys_forgets_the_least_recently_active() -> None:
    engine = InsightEngine(InsightsConfig(max_keys=3))
    one = MinuteStats(1, 0, {"a": 1}, {"u": 1}, {"null": 1})
    for i in range(5):
        engine.close_minute(T0_MS + i * MIN_MS, {(*KEY[:3], f"Call{i}"): one})
    assert engine.stats()["keys"] == 3
    assert engine.stats()["keys_evicted"] == 2
    deleted = [k for k, v in engine.changes().items() if v is None]
    assert any("Call0" in k for k in deleted) and not any("Call4" in k for k in deleted)


def test_minutes_must_ascend_and_be_whole() -> None:
    engine = InsightEngine(CFG)
    engine.close_minute(T0_MS, {})
    with pytest.raises(ValueError):
        engine.close_minute(T0_MS, {})
    with pytest.raises(ValueError):
        engine.close_minute(T0_MS + MIN_MS + 1, {})


def test_disabled_engine_emits_nothing() -> None:
    engine = InsightEngine(InsightsConfig(enabled=False, baseline_ms=7 * MIN_MS, learn_ms=0))
    burst = MinuteStats(1000, 0, {"a": 1000}, {"u": 1000}, {"null": 1000})
    assert [engine.close_minute(T0_MS + i * MIN_MS, {KEY: burst} if i == 20 else {})
            for i in range(30)] == [[]] * 30


def _iso(ms: int) -> str:
    from datetime import UTC, datetime
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
