"""Security Hub findings or insights changed by hand: updated, suppressed, or an insight
deleted. Someone may be hiding what Security Hub found."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded


def detect(event: CloudTrailEvent) -> bool:
    if event.get("eventSource") != "securityhub.amazonaws.com" or not succeeded(event):
        return False
    if event.get("eventName") == "BatchUpdateFindings":
        # Routine triage sets NOTIFIED/RESOLVED; suppression is what hides a finding.
        status = event.deep_get("requestParameters", "Workflow", "Status", default="")
        return str(status).upper() == "SUPPRESSED"
    return True


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
