"""A trail stopped, deleted, or changed so that it records less (management events or
read/write events dropped by its event selectors)."""

from __future__ import annotations

from typing import Any

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded

_ALWAYS = frozenset({"StopLogging", "DeleteTrail"})


def _selector_drops_events(selector: Any) -> bool:
    # Classic selectors: management events off, or only one of read/write kept.
    if selector.get("includeManagementEvents") is False:
        return True
    return str(selector.get("readWriteType", "All")) != "All"


def detect(event: CloudTrailEvent) -> bool:
    if not succeeded(event):
        return False
    name = event.get("eventName")
    if name in _ALWAYS:
        return True
    selectors = event.deep_get("requestParameters", "eventSelectors", default=[])
    return isinstance(selectors, list) and any(_selector_drops_events(s) for s in selectors)


def title(event: CloudTrailEvent) -> str:
    trail = event.deep_get("requestParameters", "name") or event.deep_get(
        "requestParameters", "trailName", default="?")
    return f"CloudTrail {event.get('eventName')} on {trail}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
