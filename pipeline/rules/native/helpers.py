"""Small helpers the pack's native rules share. Every function takes the
:class:`~pipeline.rules.native.event.CloudTrailEvent` a rule gets (or a plain value) and
never raises on a missing field."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from pipeline.rules.native.event import CloudTrailEvent

ADMIN_POLICY_NAMES = frozenset({"administratoraccess", "iamfullaccess"})
"""AWS managed policies that grant (or let one grant oneself) everything."""


def identity_type(event: CloudTrailEvent) -> str:
    """``userIdentity.type`` (``Root``, ``IAMUser``, ``AssumedRole``, ``AWSService``, ...)."""
    return str(event.deep_get("userIdentity", "type", default=""))


def is_root(event: CloudTrailEvent) -> bool:
    """The call was made with the account's root credentials."""
    return identity_type(event) == "Root"


def is_aws_service(event: CloudTrailEvent) -> bool:
    """An AWS service made the call for itself or on someone's behalf (``invokedBy``). The
    console (``signin.amazonaws.com``) acts for a person, so it does not count."""
    if identity_type(event) == "AWSService":
        return True
    invoked_by = str(event.deep_get("userIdentity", "invokedBy", default=""))
    if invoked_by == "signin.amazonaws.com":
        return False
    return invoked_by.endswith(".amazonaws.com") or invoked_by == "AWS Internal"


def principal(event: CloudTrailEvent) -> str:
    """The caller's ARN, else its principal id, else ``""``."""
    ident = event.deep_get("userIdentity", default={})
    return str(ident.get("arn") or ident.get("principalId") or "") if ident else ""


def actor_name(event: CloudTrailEvent) -> str:
    """A short name for the caller: the user name, the role behind a session, or the last
    part of the ARN."""
    name = (event.deep_get("userIdentity", "userName")
            or event.deep_get("userIdentity", "sessionContext", "sessionIssuer", "userName"))
    if name:
        return str(name)
    arn = principal(event)
    return arn.rsplit("/", 1)[-1] if "/" in arn else arn


def caller_names(event: CloudTrailEvent) -> frozenset[str]:
    """The names the caller goes by: its IAM user name and the last part of its ARN (the
    session name of a role session). Used to tell "to itself" from "to someone else"."""
    names = {str(event.deep_get("userIdentity", "userName", default=""))}
    arn = principal(event)
    if "/" in arn:
        names.add(arn.rsplit("/", 1)[-1])
    return frozenset(n for n in names if n)


def account(event: CloudTrailEvent) -> str:
    """The account the event belongs to (``recipientAccountId``, else the caller's)."""
    return str(event.get("recipientAccountId") or event.deep_get("userIdentity", "accountId")
               or "")


def error_code(event: CloudTrailEvent) -> str:
    """``errorCode``, or ``""`` when the call succeeded."""
    return str(event.get("errorCode") or "")


def succeeded(event: CloudTrailEvent) -> bool:
    """No ``errorCode``, and for a sign-in event (``ConsoleLogin``, ``PasswordUpdated``,
    ...) no ``Failure`` under its own name in ``responseElements``."""
    if error_code(event):
        return False
    name = str(event.get("eventName") or "")
    return bool(event.deep_get("responseElements", name) != "Failure")


def mfa_used(event: CloudTrailEvent) -> bool:
    """MFA was used: at sign-in (``additionalEventData.MFAUsed``) or for the session."""
    if str(event.deep_get("additionalEventData", "MFAUsed", default="")).lower() == "yes":
        return True
    attrs = event.deep_get("userIdentity", "sessionContext", "attributes", default={})
    return str(attrs.get("mfaAuthenticated", "")).lower() == "true" if attrs else False


def parse_document(value: Any) -> Any:
    """A policy document as given in ``requestParameters``: an object, JSON text, or
    URL-encoded JSON text. Unparseable text comes back as ``None``."""
    if isinstance(value, Mapping):
        return value
    if not isinstance(value, str) or not value:
        return None
    for text in (value, unquote(value)):
        try:
            return json.loads(text)
        except ValueError:
            continue
    return None


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def document_grants_all(document: Any) -> bool:
    """The document has an ``Allow`` statement for every action on every resource."""
    doc = parse_document(document)
    if not isinstance(doc, Mapping):
        return False
    for stmt in _listed(doc.get("Statement") or []):
        if not isinstance(stmt, Mapping) or stmt.get("Effect") != "Allow":
            continue
        if "*" in _listed(stmt.get("Action")) and "*" in _listed(stmt.get("Resource", "*")):
            return True
    return False


def is_admin_policy(arn_or_document: Any) -> bool:
    """A managed policy ARN whose name is an admin policy, or a document granting ``*`` on
    ``*``."""
    if isinstance(arn_or_document, str) and arn_or_document.startswith("arn:"):
        return arn_or_document.rsplit("/", 1)[-1].casefold() in ADMIN_POLICY_NAMES
    return document_grants_all(arn_or_document)


def document_principals(document: Any) -> list[str]:
    """Every ``Principal`` value (``"*"``, ARNs, service names) in a resource policy's
    ``Allow`` statements."""
    doc = parse_document(document)
    found: list[str] = []
    if not isinstance(doc, Mapping):
        return found
    for stmt in _listed(doc.get("Statement") or []):
        if not isinstance(stmt, Mapping) or stmt.get("Effect") != "Allow":
            continue
        who = stmt.get("Principal")
        if isinstance(who, Mapping):
            for value in who.values():
                found.extend(str(v) for v in _listed(value))
        elif who is not None:
            found.append(str(who))
    return found


def aws_context(event: CloudTrailEvent) -> dict[str, str]:
    """The usual alert context: what was called, where, by whom, from where."""
    return {
        "eventName": str(event.get("eventName") or ""),
        "eventSource": str(event.get("eventSource") or ""),
        "awsRegion": str(event.get("awsRegion") or ""),
        "account": account(event),
        "principal": principal(event),
        "sourceIPAddress": str(event.get("sourceIPAddress") or ""),
        "userAgent": str(event.get("userAgent") or ""),
        "errorCode": error_code(event),
    }
