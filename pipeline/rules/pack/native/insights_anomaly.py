"""A CloudTrail Insights event opened: an API's call or error rate left its baseline (AWS's
Insights, or trailpipe's own on audit.insights.v1). Only the ``Start`` of an insight alerts;
its ``End`` closes it and is left alone."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent


def detect(event: CloudTrailEvent) -> bool:
    return bool(event.get("eventType") == "AwsCloudTrailInsight"
                and event.deep_get("insightDetails", "state") == "Start")


def title(event: CloudTrailEvent) -> str:
    details = event.deep_get("insightDetails", default={})
    kind = "error rate" if details.get("insightType") == "ApiErrorRateInsight" else "call rate"
    return (f"Unusual {kind} of {details.get('eventSource')} {details.get('eventName')} "
            f"in {event.get('recipientAccountId')} {event.get('awsRegion')}")


def dedup(event: CloudTrailEvent) -> str:
    details = event.deep_get("insightDetails", default={})
    return "|".join(str(x or "") for x in (
        event.get("recipientAccountId"), event.get("awsRegion"), details.get("eventSource"),
        details.get("eventName"), details.get("insightType")))


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    details = event.deep_get("insightDetails", default={})
    baseline = details.deep_get("insightContext", "statistics", "baseline", "average")
    observed = details.deep_get("insightContext", "statistics", "insight", "average")
    return {"insightType": str(details.get("insightType") or ""),
            "eventSource": str(details.get("eventSource") or ""),
            "eventName": str(details.get("eventName") or ""),
            "errorCode": str(details.get("errorCode") or ""),
            "baselineAverage": str(baseline), "insightAverage": str(observed),
            "sharedEventID": str(event.get("sharedEventID") or "")}
