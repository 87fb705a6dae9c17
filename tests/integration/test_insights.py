"""Self-hosted Insights end to end: generated traffic with an API-rate spike and an error-rate
spike through the real broker and the aggregator; the insights topic holds exactly one Start
and one End per spike, for the right key, with the right top attribution, in AWS's shape."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aggregate_kit import aggregator_topics, run_aggregator
from alert_kit import START_MS, produce_events
from kit import read_all

from pipeline.events.mapping import from_avro
from pipeline.events.wire import decode
from pipeline.insights.event import validate_insight
from pipeline.shapes_config import ApiRateSpikeConfig, ErrorRateSpikeConfig
from producers.generator.engine import Generator
from producers.generator.shapes import ApiRateSpike, ErrorRateSpike, shaped_records

pytestmark = pytest.mark.integration

MINUTE_MS = 60_000
INSIGHTS = {"insights.baseline_ms": 7 * 20 * MINUTE_MS, "insights.learn_ms": 60 * MINUTE_MS}
"""A 140-minute baseline in 20-minute buckets, learned for an hour (tests cannot wait 7 days)."""


def _top(event: dict[str, Any], attribute: str) -> str:
    attributions = event["insightDetails"]["insightContext"]["attributions"]
    found = next(a for a in attributions if a["attribute"] == attribute)
    return str(found["insight"][0]["value"])


def test_each_spike_makes_one_start_and_one_end_and_steady_keys_none(
        kafka: Any, make_topic: Any, unique: str, tmp_path: Path) -> None:
    gen = Generator(5, 5, 3, start_ms=START_MS, events_per_second=10.0)
    rate = ApiRateSpike(ApiRateSpikeConfig(start_after_ms=90 * MINUTE_MS,
                                           duration_ms=8 * MINUTE_MS, calls_per_min=60), gen)
    errors = ErrorRateSpike(ErrorRateSpikeConfig(start_after_ms=80 * MINUTE_MS,
                                                 duration_ms=6 * MINUTE_MS, calls_per_min=20),
                            gen)
    records = list(shaped_records(gen, [rate, errors], 10 * 60 * 125))  # 125 min
    topics = aggregator_topics(make_topic)
    produce_events(kafka.bootstrap, topics["events"], records)
    summary = run_aggregator(kafka.bootstrap, topics, unique, f"file://{tmp_path}/lake",
                             grace_ms=MINUTE_MS, **INSIGHTS)
    assert summary["events"] == len(records)
    events = [from_avro(decode(m.value()))
              for m in read_all(kafka.bootstrap, topics["insights"], timeout_s=30)]
    for event in events:
        assert validate_insight(event) == []
    found = Counter((e["recipientAccountId"], e["awsRegion"], e["insightDetails"]["eventName"],
                     e["insightDetails"]["insightType"], e["insightDetails"]["state"])
                    for e in events)
    expected = Counter()
    for truth, kind in ((rate.truth, "ApiCallRateInsight"), (errors.truth, "ApiErrorRateInsight")):
        for state in ("Start", "End"):
            expected[(truth.account, truth.region, truth.event_name, kind, state)] = 1
    assert found == expected  # and nothing for the steady keys
    by_kind = {e["insightDetails"]["insightType"]: e for e in events
               if e["insightDetails"]["state"] == "End"}
    assert _top(by_kind["ApiCallRateInsight"], "userIdentityArn") == rate.truth.principal_arn
    assert _top(by_kind["ApiErrorRateInsight"], "errorCode") == errors.truth.error_code
    for kind in by_kind:
        pair = [e for e in events if e["insightDetails"]["insightType"] == kind]
        assert len({e["sharedEventID"] for e in pair}) == 1
    start = next(e for e in events if e["insightDetails"]["state"] == "Start"
                 and e["insightDetails"]["insightType"] == "ApiCallRateInsight")
    spike_start = datetime.fromtimestamp(rate.truth.start_ms / 1000, UTC)
    assert start["eventTime"] == spike_start.strftime("%Y-%m-%dT%H:%M:%SZ")
