"""Calls refused for lack of permission, grouped per principal: a burst of them is someone
probing what stolen credentials can do. Refusals of calls AWS services make on a
principal's behalf, and of the console's own background calls, are left out."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, error_code, is_aws_service, principal

_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
                     "Client.UnauthorizedOperation", "UnauthorizedAccess"})


def detect(event: CloudTrailEvent) -> bool:
    if error_code(event) not in _DENIED or is_aws_service(event):
        return False
    # A service acting for the principal shows up as its host name instead of an IP.
    if str(event.get("sourceIPAddress") or "").endswith(".amazonaws.com"):
        return False
    return not str(event.get("userAgent") or "").startswith("aws-internal")


def title(event: CloudTrailEvent) -> str:
    return f"Many access-denied calls by {principal(event)}"


def dedup(event: CloudTrailEvent) -> str:
    # Anonymous callers (no identity) are told apart by address instead.
    return principal(event) or str(event.get("sourceIPAddress") or "")


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "errorMessage": str(event.get("errorMessage") or "")[:300]}
