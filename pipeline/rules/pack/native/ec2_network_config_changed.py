"""A change to VPC networking: security groups, network ACLs, route tables, internet or
customer gateways, VPCs and peerings. An audit trail; the dangerous variants (opened to
the world) have their own rules."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import account, aws_context, succeeded
from pipeline.rules.pack.native._resources import from_service

# The component each call changes, by the word its name contains (first match wins).
_COMPONENTS = (("SecurityGroup", "security group"), ("NetworkAcl", "network ACL"),
               ("Route", "route table"), ("Gateway", "gateway"), ("Vpc", "VPC"))


def _component(event: CloudTrailEvent) -> str:
    name = str(event.get("eventName") or "")
    return next((label for word, label in _COMPONENTS if word in name), "network")


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event) and from_service(event, "ec2")


def title(event: CloudTrailEvent) -> str:
    return f"EC2 {_component(event)} changed ({event.get('eventName')})"


def dedup(event: CloudTrailEvent) -> str:
    who = event.deep_get("userIdentity", "arn", default="")
    return f"{account(event)}|{event.get('awsRegion')}|{who}|{_component(event)}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
