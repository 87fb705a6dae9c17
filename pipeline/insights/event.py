"""CloudTrail Insights events in AWS's own shape, and a validator of that shape.

An event is a plain JSON object as AWS writes it to a trail (see the Insights examples in
``../shared/corpus/cloudtrail/awsdocs-cloudtrail-user-guide``)::

    {"eventVersion": "1.07", "eventTime": "2024-05-01T12:34:00Z", "awsRegion": ...,
     "eventID": ..., "eventType": "AwsCloudTrailInsight", "recipientAccountId": ...,
     "sharedEventID": ..., "eventCategory": "Insight",
     "insightDetails": {"state": "Start"|"End", "eventSource": ..., "eventName": ...,
        "insightType": "ApiCallRateInsight"|"ApiErrorRateInsight",
        "insightContext": {
            "statistics": {"baseline": {"average": x}, "insight": {"average": y},
                           "insightDuration": minutes, "baselineDuration": minutes},
            "attributions": [{"attribute": "userIdentityArn"|"userAgent"|"errorCode",
                              "insight": [{"value": v, "average": a}, ... up to 5],
                              "baseline": [... up to 5]}, ...]}}}

Ids are deterministic (a re-run after a crash writes the same events): ``sharedEventID`` is a
UUIDv5 of the key, insight type and start minute; ``eventID`` one of that and the state.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

CALL_RATE = "ApiCallRateInsight"
ERROR_RATE = "ApiErrorRateInsight"
START, END = "Start", "End"
EVENT_TYPE = "AwsCloudTrailInsight"
EVENT_VERSION = "1.07"
ATTRIBUTES = ("userIdentityArn", "userAgent", "errorCode")
_NAMESPACE = uuid.UUID("6f1c8a52-5d0e-4c1b-9a39-3f3e6c1d7a10")
"""UUIDv5 namespace of trailpipe Insights ids (a fixed random UUID)."""

InsightKey = tuple[str, str, str, str]
"""account, region, eventSource, eventName."""


class Statistics(NamedTuple):
    baseline_average: float
    insight_average: float
    insight_duration_min: int
    baseline_duration_min: int


class Attribution(NamedTuple):
    attribute: str
    insight: list[tuple[str, float]]
    baseline: list[tuple[str, float]]


def shared_event_id(key: InsightKey, insight_type: str, start_ms: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join((*key, insight_type, str(start_ms)))))


def insight_event(key: InsightKey, insight_type: str, state: str, event_time_ms: int,
                  start_ms: int, stats: Statistics, attributions: Sequence[Attribution]
                  ) -> dict[str, Any]:
    """One Start or End event. Attributes with no value on either side are left out."""
    account, region, source, name = key
    shared = shared_event_id(key, insight_type, start_ms)
    context: dict[str, Any] = {"statistics": {
        "baseline": {"average": stats.baseline_average},
        "insight": {"average": stats.insight_average},
        "insightDuration": stats.insight_duration_min,
        "baselineDuration": stats.baseline_duration_min}}
    blocks = [{"attribute": a.attribute, "insight": _values(a.insight),
               "baseline": _values(a.baseline)}
              for a in attributions if a.insight or a.baseline]
    if blocks:
        context["attributions"] = blocks
    return {
        "eventVersion": EVENT_VERSION,
        "eventTime": datetime.fromtimestamp(event_time_ms // 1000, UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"),
        "awsRegion": region,
        "eventID": str(uuid.uuid5(_NAMESPACE, shared + state)),
        "eventType": EVENT_TYPE,
        "recipientAccountId": account,
        "sharedEventID": shared,
        "insightDetails": {"state": state, "eventSource": source, "eventName": name,
                           "insightType": insight_type, "insightContext": context},
        "eventCategory": "Insight",
    }


def _values(values: list[tuple[str, float]]) -> list[dict[str, Any]]:
    return [{"value": value, "average": average} for value, average in values]


_TOP_LEVEL = {"eventVersion", "eventTime", "awsRegion", "eventID", "eventType",
              "recipientAccountId", "sharedEventID", "insightDetails", "eventCategory"}
_REQUIRED = _TOP_LEVEL - {"recipientAccountId"}
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", re.ASCII)


def validate_insight(record: Any) -> list[str]:
    """Problems of ``record`` against the documented CloudTrail Insights event shape (for
    trails); empty when it conforms. Never raises."""
    if not isinstance(record, dict):
        return ["record is not a JSON object"]
    problems = [f"missing {k}" for k in sorted(_REQUIRED - record.keys())]
    problems += [f"unexpected top-level key {k}" for k in sorted(record.keys() - _TOP_LEVEL)]
    for k in sorted((_TOP_LEVEL - {"insightDetails"}) & record.keys()):
        if not isinstance(record[k], str) or not record[k]:
            problems.append(f"{k} is not a non-empty string")
    if not _TIME.fullmatch(str(record.get("eventTime", ""))):
        problems.append("eventTime is not YYYY-MM-DDTHH:MM:SSZ")
    if record.get("eventType") != EVENT_TYPE:
        problems.append(f"eventType is not {EVENT_TYPE}")
    if record.get("eventCategory", "Insight") != "Insight":
        problems.append("eventCategory is not Insight")
    details = record.get("insightDetails")
    if not isinstance(details, dict):
        return [*problems, "insightDetails is not an object"]
    return problems + _details_problems(details)


def _details_problems(details: dict[str, Any]) -> list[str]:
    problems = []
    if details.get("state") not in (START, END):
        problems.append("insightDetails.state is not Start or End")
    if details.get("insightType") not in (CALL_RATE, ERROR_RATE):
        problems.append("insightDetails.insightType is not ApiCallRateInsight or "
                        "ApiErrorRateInsight")
    for k in ("eventSource", "eventName"):
        if not isinstance(details.get(k), str) or not details[k]:
            problems.append(f"insightDetails.{k} is not a non-empty string")
    context = details.get("insightContext")
    if not isinstance(context, dict):
        return [*problems, "insightDetails.insightContext is not an object"]
    return problems + _statistics_problems(context.get("statistics")) + \
        _attribution_problems(context.get("attributions", []))


def _statistics_problems(stats: Any) -> list[str]:
    where = "insightContext.statistics"
    if not isinstance(stats, dict):
        return [f"{where} is not an object"]
    problems = []
    for k in ("baseline", "insight"):
        side = stats.get(k)
        if not isinstance(side, dict) or not _number(side.get("average")):
            problems.append(f"{where}.{k}.average is not a number")
    for k in ("insightDuration", "baselineDuration"):
        if k in stats and (type(stats[k]) is not int or stats[k] < 0):
            problems.append(f"{where}.{k} is not a whole number of minutes")
    return problems


def _attribution_problems(blocks: Any) -> list[str]:
    where = "insightContext.attributions"
    if not isinstance(blocks, list):
        return [f"{where} is not an array"]
    problems = []
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or block.get("attribute") not in ATTRIBUTES:
            problems.append(f"{where}[{i}].attribute is not one of {', '.join(ATTRIBUTES)}")
            continue
        for side in ("insight", "baseline"):
            problems += _values_problems(block.get(side), f"{where}[{i}].{side}")
    return problems


def _values_problems(values: Any, where: str) -> list[str]:
    if not isinstance(values, list) or len(values) > 5:
        return [f"{where} is not an array of at most 5 values"]
    averages = []
    for j, item in enumerate(values):
        if (not isinstance(item, dict) or not isinstance(item.get("value"), str)
                or not _number(item.get("average"))):
            return [f"{where}[{j}] is not {{value: string, average: number}}"]
        averages.append(item["average"])
    if averages != sorted(averages, reverse=True):
        return [f"{where} is not sorted by average, descending"]
    return []


def _number(value: Any) -> bool:
    return type(value) in (int, float) and value >= 0
