"""A network ACL entry allowing inbound traffic from anywhere (0.0.0.0/0 or ::/0)."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded
from pipeline.rules.pack.native._resources import WORLD_CIDRS, named, request


def detect(event: CloudTrailEvent) -> bool:
    cidr = named(event, "cidrBlock", "ipv6CidrBlock")
    return (succeeded(event) and cidr in WORLD_CIDRS and request(event, "egress") is False
            and str(request(event, "ruleAction", default="")).lower() == "allow")


def _ports(event: CloudTrailEvent) -> str:
    low = request(event, "portRange", "from")
    high = request(event, "portRange", "to")
    return "all ports" if low is None else f"ports {low}-{high}"


def title(event: CloudTrailEvent) -> str:
    return (f"Network ACL {named(event, 'networkAclId')} allows inbound traffic from anywhere "
            f"({_ports(event)})")


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "networkAclId": named(event, "networkAclId"),
            "ports": _ports(event), "ruleNumber": str(request(event, "ruleNumber", default=""))}
