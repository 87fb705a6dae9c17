"""Helpers the pack's resource rules share (S3, EC2, KMS, RDS, Lambda, SSM, Secrets
Manager, VPC, WAF). Like :mod:`pipeline.rules.native.helpers`, every function takes the
:class:`~pipeline.rules.native.event.CloudTrailEvent` a rule gets (or a plain value) and
never raises on a missing field."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import identity_type, parse_document

WORLD_CIDRS = frozenset({"0.0.0.0/0", "::/0"})
"""CIDRs that mean "anyone on the internet"."""

# Condition keys that pin a wildcard principal to the caller's own network, organisation,
# account or resources: with one of them a "Principal: *" statement is not public.
_RESTRICTING_KEYS = frozenset({
    "aws:sourceip", "aws:sourcevpc", "aws:sourcevpce", "aws:principalorgid",
    "aws:principalorgpaths", "aws:principalaccount", "aws:principalarn", "aws:sourceaccount",
    "aws:sourcearn", "aws:sourceowner", "aws:sourceorgid", "aws:sourceorgpaths",
    "aws:userid", "aws:username", "kms:calleraccount", "kms:viaservice"})

_ACCOUNT_ID = re.compile(r"^\d{12}$")
_INSTANCE_SESSION = re.compile(r"^i-[0-9a-f]{8,17}$")


def request(event: CloudTrailEvent, *keys: str, default: Any = None) -> Any:
    """``requestParameters.<keys...>``."""
    return event.deep_get("requestParameters", *keys, default=default)


def response(event: CloudTrailEvent, *keys: str, default: Any = None) -> Any:
    """``responseElements.<keys...>``."""
    return event.deep_get("responseElements", *keys, default=default)


def from_service(event: CloudTrailEvent, service: str) -> bool:
    """``eventSource`` is ``<service>.amazonaws.com``."""
    return str(event.get("eventSource") or "") == f"{service}.amazonaws.com"


def listed(value: Any) -> list[Any]:
    """CloudTrail's list shapes as a list: ``{"items": [...]}``, a list, one value, or
    nothing (``[]``)."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        inner = value.get("items")
        return inner if isinstance(inner, list) else ([] if "items" in value else [value])
    return value if isinstance(value, list) else [value]


def is_public_ip(value: Any) -> bool:
    """An IP address routable on the internet (not private, loopback, documentation or
    link-local, and not a service name such as ``ec2.amazonaws.com``)."""
    try:
        return ipaddress.ip_address(str(value)).is_global
    except ValueError:
        return False


def is_account_id(value: Any) -> bool:
    """A 12-digit AWS account id."""
    return bool(_ACCOUNT_ID.match(str(value)))


def arn_account(arn: Any) -> str:
    """The account field of an ARN (``""`` when absent)."""
    parts = str(arn).split(":")
    return parts[4] if len(parts) > 5 and parts[0] == "arn" else ""


def owner_account(event: CloudTrailEvent) -> str:
    """The account the event happened in (``recipientAccountId``, else the caller's)."""
    return str(event.get("recipientAccountId") or event.deep_get("userIdentity", "accountId")
               or "")


def human_caller(event: CloudTrailEvent) -> bool:
    """A person rather than automation: an IAM user, a federated user, root, or a role
    session issued by IAM Identity Center (``AWSReservedSSO_*``)."""
    kind = identity_type(event)
    if kind in ("IAMUser", "FederatedUser", "Root"):
        return True
    issuer = str(event.deep_get("userIdentity", "sessionContext", "sessionIssuer", "userName",
                                default=""))
    arn = str(event.deep_get("userIdentity", "arn", default=""))
    return kind == "AssumedRole" and ("AWSReservedSSO_" in issuer or "/AWSReservedSSO_" in arn)


def instance_session(event: CloudTrailEvent) -> bool:
    """The caller is a role session named after an EC2 instance id, i.e. credentials an
    instance got from its metadata service."""
    arn = str(event.deep_get("userIdentity", "arn", default=""))
    return ":assumed-role/" in arn and bool(_INSTANCE_SESSION.match(arn.rsplit("/", 1)[-1]))


def _statement_is_public(stmt: Any) -> bool:
    if not isinstance(stmt, Mapping) or stmt.get("Effect") != "Allow":
        return False
    who = stmt.get("Principal")
    values = listed(who.get("AWS")) if isinstance(who, Mapping) else [who]
    if "*" not in values:
        return False
    conditions = stmt.get("Condition")
    if not isinstance(conditions, Mapping):
        return True
    keys = {str(k).lower() for block in conditions.values() if isinstance(block, Mapping)
            for k in block}
    return not keys & _RESTRICTING_KEYS


def policy_is_public(document: Any) -> bool:
    """A resource policy (object, JSON text or URL-encoded JSON text) with an ``Allow`` for
    any principal (``*``) that no network, organisation or account condition narrows."""
    doc = parse_document(document)
    if not isinstance(doc, Mapping):
        return False
    statements = doc.get("Statement")
    return any(_statement_is_public(s) for s in listed(statements))


def named(event: CloudTrailEvent, *fields: str) -> str:
    """The first of ``requestParameters.<field>`` that is a non-empty string, else ``"?"``:
    the resource a call acts on, for titles and dedup keys."""
    for field in fields:
        value = request(event, field)
        if isinstance(value, str) and value:
            return value
    return "?"
