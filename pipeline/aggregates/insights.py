"""Pair CloudTrail Insights events (Start and End, sharing ``sharedEventID``) into one row per
insight, for ``trailpipe insights list``.

Input: ApiCallEvent datums from ``audit.insights.v1`` (``insightDetails`` is JSON text, as the
event model carries it). Other events, and insight events whose ``insightDetails`` is not a
JSON object, are skipped. The statistics and attributions of the End event are the insight's
final figures, so they win over the Start's; an insight with no End yet is open. The "top"
value of an attribution is the one with the highest insight average (ties: the smaller value).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

INSIGHT_EVENT_TYPE = "AwsCloudTrailInsight"


@dataclass(frozen=True, slots=True)
class Insight:
    """One insight; ``start_ms``/``end_ms`` are None when that event was not read."""

    shared_event_id: str
    account: str
    region: str
    event_source: str
    event_name: str
    insight_type: str
    start_ms: int | None
    end_ms: int | None
    baseline_average: float | None
    insight_average: float | None
    top_principal: str | None
    top_user_agent: str | None
    top_error_code: str | None

    def overlaps(self, from_ms: int | None, to_ms: int | None) -> bool:
        """Whether the insight's span meets ``[from_ms, to_ms)`` (an open one runs on)."""
        first = self.start_ms if self.start_ms is not None else self.end_ms
        last = self.end_ms
        return ((to_ms is None or first is None or first < to_ms)
                and (from_ms is None or last is None or last > from_ms))


def _details(datum: Mapping[str, Any]) -> dict[str, Any] | None:
    if datum.get("eventType") != INSIGHT_EVENT_TYPE or not datum.get("sharedEventID"):
        return None
    text = datum.get("insightDetails")
    try:
        details = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return details if isinstance(details, dict) else None


def _top(context: Mapping[str, Any], attribute: str) -> str | None:
    for item in context.get("attributions") or []:
        if isinstance(item, dict) and item.get("attribute") == attribute:
            values = [(float(v.get("average") or 0), str(v.get("value")))
                      for v in item.get("insight") or [] if isinstance(v, dict)]
            if values:
                return min(values, key=lambda v: (-v[0], v[1]))[1]
    return None


def _average(statistics: Mapping[str, Any], which: str) -> float | None:
    part = statistics.get(which)
    value = part.get("average") if isinstance(part, dict) else None
    return float(value) if isinstance(value, int | float) else None


def _insight(shared_id: str, events: Mapping[str, tuple[Mapping[str, Any], dict[str, Any]]]
             ) -> Insight:
    """The row for one ``sharedEventID``; ``events`` maps state (Start/End) to (datum,
    details) and holds at least one of them."""
    datum, details = events.get("End") or events["Start"]
    context = details.get("insightContext") or {}
    statistics = context.get("statistics") or {}
    start, end = events.get("Start"), events.get("End")
    return Insight(
        shared_event_id=shared_id, account=str(datum.get("recipientAccountId") or ""),
        region=str(datum.get("awsRegion") or ""),
        event_source=str(details.get("eventSource") or ""),
        event_name=str(details.get("eventName") or ""),
        insight_type=str(details.get("insightType") or ""),
        start_ms=start[0].get("eventTimeMs") if start else None,
        end_ms=end[0].get("eventTimeMs") if end else None,
        baseline_average=_average(statistics, "baseline"),
        insight_average=_average(statistics, "insight"),
        top_principal=_top(context, "userIdentityArn"),
        top_user_agent=_top(context, "userAgent"),
        top_error_code=_top(context, "errorCode"))


def pair_insights(datums: Iterable[Mapping[str, Any]]) -> list[Insight]:
    """One :class:`Insight` per ``sharedEventID`` among ``datums`` (the last event of each
    state wins: a redelivered copy is the same event), ordered by start time (unknown
    first), account, region, event name."""
    by_id: dict[str, dict[str, tuple[Mapping[str, Any], dict[str, Any]]]] = {}
    for datum in datums:
        details = _details(datum)
        if details is not None and details.get("state") in ("Start", "End"):
            by_id.setdefault(str(datum["sharedEventID"]), {})[details["state"]] = \
                (datum, details)
    rows = [_insight(shared_id, events) for shared_id, events in by_id.items()]
    return sorted(rows, key=lambda r: (r.start_ms if r.start_ms is not None else -1,
                                       r.account, r.region, r.event_name, r.shared_event_id))
