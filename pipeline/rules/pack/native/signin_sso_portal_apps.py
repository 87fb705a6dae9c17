"""The SSO portal listed a user's applications: what a user sees after approving a sign-in
in the browser (including one requested by ``aws sso login`` on someone else's machine)."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import succeeded


def detect(event: CloudTrailEvent) -> bool:
    return event.get("eventSource") == "sso.amazonaws.com" and succeeded(event)


def dedup(event: CloudTrailEvent) -> str:
    return str(event.deep_get("userIdentity", "principalId") or event.get("sourceIPAddress"))
