"""Pairing CloudTrail Insights events (pipeline.aggregates.insights) on AWS's own examples."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from pipeline.aggregates.insights import pair_insights
from pipeline.events.mapping import IngestMeta, to_avro

INGEST = IngestMeta(0, "test", "test")
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
DOCS = CORPUS / "cloudtrail" / "awsdocs-cloudtrail-user-guide" / "records.jsonl"


def _aws_examples() -> list[dict[str, Any]]:
    records = [json.loads(line) for line in DOCS.read_text().splitlines() if line]
    return [r for r in records if r.get("eventType") == "AwsCloudTrailInsight"]


def _datum(record: dict[str, Any]) -> dict[str, Any]:
    return to_avro(record, ingest=INGEST)


def test_start_and_end_pair_by_shared_event_id() -> None:
    records = _aws_examples()
    ids = {r["sharedEventID"] for r in records}
    insights = {i.shared_event_id: i for i in pair_insights(_datum(r) for r in records)}
    assert set(insights) == ids
    for record in records:
        insight = insights[record["sharedEventID"]]
        details = record["insightDetails"]
        time_ms = _datum(record)["eventTimeMs"]
        assert (insight.start_ms if details["state"] == "Start" else insight.end_ms) == time_ms
        assert (insight.account, insight.region) == (record["recipientAccountId"],
                                                     record["awsRegion"])
        assert (insight.event_source, insight.event_name, insight.insight_type) == (
            details["eventSource"], details["eventName"], details["insightType"])
    ended = [r for r in records if r["insightDetails"]["state"] == "End"]
    assert {i.shared_event_id for i in insights.values() if i.end_ms is not None} == \
        {r["sharedEventID"] for r in ended}


def test_the_end_event_gives_the_final_figures_and_top_attribution() -> None:
    [start] = [r for r in _aws_examples() if r["insightDetails"].get("insightContext", {})
               .get("attributions") and r["insightDetails"]["state"] == "Start"][:1]
    start = copy.deepcopy(start)
    start["sharedEventID"] = "pair-1"
    end = copy.deepcopy(start)
    end["insightDetails"]["state"] = "End"
    end["eventTime"] = "2020-07-21T21:30:00Z"
    context = end["insightDetails"]["insightContext"]
    context["statistics"]["insight"]["average"] = 0.9
    principals = context["attributions"][0]
    assert principals["attribute"] == "userIdentityArn"
    principals["insight"] = [{"value": "arn:low", "average": 0.1},
                             {"value": "arn:zz-high", "average": 0.5},
                             {"value": "arn:aa-high", "average": 0.5}]
    [insight] = pair_insights([_datum(end), _datum(start)])
    assert insight.insight_average == 0.9
    assert insight.baseline_average == context["statistics"]["baseline"]["average"]
    assert insight.top_principal == "arn:aa-high"  # highest average, ties by value
    assert (insight.start_ms, insight.end_ms) == (_datum(start)["eventTimeMs"],
                                                  _datum(end)["eventTimeMs"])
    assert insight.end_ms is not None
    assert insight.overlaps(insight.end_ms - 1, None)
    assert not insight.overlaps(insight.end_ms, None)
    assert not insight.overlaps(None, insight.start_ms)


def test_an_open_insight_runs_on_and_other_events_are_ignored() -> None:
    record = copy.deepcopy(_aws_examples()[0])
    record["sharedEventID"] = "open-1"
    record["insightDetails"]["state"] = "Start"
    other = {"eventVersion": "1.08", "eventTime": "2020-07-21T20:00:00Z",
             "eventSource": "s3.amazonaws.com", "eventName": "GetObject",
             "awsRegion": "us-east-1", "eventID": "x", "eventType": "AwsApiCall",
             "sharedEventID": "open-1"}
    [insight] = pair_insights([_datum(record), _datum(other)])
    assert insight.end_ms is None and insight.start_ms is not None
    assert insight.overlaps(insight.start_ms + 10**9, None)
