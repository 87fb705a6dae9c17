"""The Insights event shape: AWS's own examples validate, ours do too, broken ones do not, and an
event survives the ApiCallEvent Avro round trip unchanged."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from insight_traffic import KEY, T0_MS

from pipeline.events import wire
from pipeline.events.mapping import IngestMeta, from_avro, to_avro
from pipeline.insights import CALL_RATE, ERROR_RATE, insight_event, validate_insight
from pipeline.insights.event import Attribution, Statistics

CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpus" / "cloudtrail"


def aws_examples() -> list[dict[str, Any]]:
    records = []
    for path in sorted(CORPUS.glob("*/records.jsonl")):
        for line in path.read_text().splitlines():
            if "AwsCloudTrailInsight" in line:
                records.append(json.loads(line))
    return records


def ours(state: str = "Start", kind: str = CALL_RATE) -> dict[str, Any]:
    stats = Statistics(4.25, 180.0, 1, 10080)
    attributions = [
        Attribution("userIdentityArn", [("arn:aws:iam::111122223333:user/a", 150.0),
                                        ("arn:aws:iam::111122223333:user/b", 30.0)],
                    [("arn:aws:iam::111122223333:user/b", 4.25)]),
        Attribution("userAgent", [("aws-cli/2.15", 180.0)], [("aws-cli/2.15", 4.25)]),
        Attribution("errorCode", [], [])]
    return insight_event(KEY, kind, state, T0_MS, T0_MS, stats, attributions)


def test_the_aws_examples_validate() -> None:
    examples = aws_examples()
    assert len(examples) == 6
    for record in examples:
        assert validate_insight(record) == []


@pytest.mark.parametrize("kind", [CALL_RATE, ERROR_RATE])
def test_our_events_validate_and_follow_the_aws_layout(kind: str) -> None:
    event = ours(kind=kind)
    assert validate_insight(event) == []
    aws = aws_examples()[0]
    assert event.keys() == aws.keys()
    assert event["insightDetails"].keys() == aws["insightDetails"].keys()
    assert [a["attribute"] for a in event["insightDetails"]["insightContext"]["attributions"]] \
        == ["userIdentityArn", "userAgent"]  # an attribute with no values is left out


def test_ids_are_deterministic_and_shared_between_start_and_end() -> None:
    start, end = ours("Start"), ours("End")
    assert start == ours("Start")
    assert start["sharedEventID"] == end["sharedEventID"]
    assert start["eventID"] != end["eventID"]
    assert ours(kind=ERROR_RATE)["sharedEventID"] != start["sharedEventID"]


def broken(path: str, value: Any) -> dict[str, Any]:
    event = copy.deepcopy(ours())
    *parents, last = path.split(".")
    target = event
    for p in parents:
        target = target[int(p)] if isinstance(target, list) else target[p]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return event


@pytest.mark.parametrize(("path", "value", "problem"), [
    ("eventID", KeyError, "missing eventID"),
    ("eventType", "AwsApiCall", "eventType"),
    ("eventTime", "2024-01-01 00:00:00", "eventTime"),
    ("userIdentity", {}, "unexpected top-level key userIdentity"),
    ("insightDetails.state", "Open", "state"),
    ("insightDetails.insightType", "ApiRateInsight", "insightType"),
    ("insightDetails.insightContext.statistics.baseline", {}, "baseline.average"),
    ("insightDetails.insightContext.statistics.insightDuration", 1.5, "insightDuration"),
    ("insightDetails.insightContext.attributions.0.attribute", "sourceIp", "attribute"),
    ("insightDetails.insightContext.attributions.0.insight",
     [{"value": "x", "average": 1.0}, {"value": "y", "average": 2.0}], "sorted"),
    ("insightDetails.insightContext.attributions.1.baseline",
     [{"value": "x", "average": 1.0}] * 6, "at most 5"),
])
def test_broken_events_are_reported(path: str, value: Any, problem: str) -> None:
    problems = validate_insight(broken(path, value))
    assert any(problem in p for p in problems), problems


def test_non_objects_are_reported() -> None:
    assert validate_insight([]) == ["record is not a JSON object"]
    assert "insightDetails is not an object" in validate_insight(broken("insightDetails", "x"))


@pytest.mark.parametrize("event", [ours("Start"), ours("End", ERROR_RATE), *aws_examples()])
def test_avro_round_trip_is_lossless(event: dict[str, Any]) -> None:
    ingest = IngestMeta(ingest_time_ms=T0_MS, source="aggregator", producer_id="insights-test")
    datum = wire.decode(wire.encode(to_avro(event, ingest=ingest)))
    assert from_avro(datum) == event
