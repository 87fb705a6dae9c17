"""The helpers pack rules share."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pipeline.rules.native import helpers as h
from pipeline.rules.native.event import CloudTrailEvent

ALLOW_ALL = '{"Statement":[{"Effect":"Allow","Action":["*"],"Resource":"*"}]}'


def ev(**fields: Any) -> CloudTrailEvent:
    return CloudTrailEvent(fields)


def test_admin_policy_by_arn_or_document() -> None:
    assert h.is_admin_policy("arn:aws:iam::aws:policy/AdministratorAccess")
    assert h.is_admin_policy("arn:aws:iam::aws:policy/IAMFullAccess")
    assert not h.is_admin_policy("arn:aws:iam::aws:policy/ReadOnlyAccess")
    assert h.is_admin_policy(ALLOW_ALL)
    assert h.is_admin_policy(quote(ALLOW_ALL))  # IAM sends some documents URL-encoded
    assert h.is_admin_policy({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}})
    assert not h.is_admin_policy(ALLOW_ALL.replace("Allow", "Deny"))
    assert not h.is_admin_policy('{"Statement":[{"Effect":"Allow","Action":"*","Resource":"x"}]}')
    assert not h.is_admin_policy("not json")
    assert not h.is_admin_policy(None)


def test_document_principals() -> None:
    doc = ('{"Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::1:root","*"],'
           '"Service":"ec2.amazonaws.com"}},{"Effect":"Deny","Principal":"*"}]}')
    assert sorted(h.document_principals(doc)) == ["*", "arn:aws:iam::1:root", "ec2.amazonaws.com"]
    assert h.document_principals('{"Statement":[{"Effect":"Allow","Principal":"*"}]}') == ["*"]
    assert h.document_principals(None) == []


def test_identity_helpers() -> None:
    user = ev(userIdentity={"type": "IAMUser", "userName": "ana",
                            "arn": "arn:aws:iam::1:user/team/ana"}, recipientAccountId="2")
    assert (h.identity_type(user), h.principal(user), h.actor_name(user)) == (
        "IAMUser", "arn:aws:iam::1:user/team/ana", "ana")
    assert h.caller_names(user) == {"ana"}
    assert h.account(user) == "2"
    session = ev(userIdentity={"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/ci/run",
                               "sessionContext": {"sessionIssuer": {"userName": "ci"}}})
    assert h.actor_name(session) == "ci"
    assert h.caller_names(session) == {"run"}
    assert h.is_root(ev(userIdentity={"type": "Root"}))
    assert h.principal(ev()) == "" and h.caller_names(ev()) == frozenset()


def test_service_calls() -> None:
    assert h.is_aws_service(ev(userIdentity={"type": "AWSService"}))
    assert h.is_aws_service(ev(userIdentity={"type": "IAMUser",
                                             "invokedBy": "cloudformation.amazonaws.com"}))
    assert h.is_aws_service(ev(userIdentity={"type": "IAMUser", "invokedBy": "AWS Internal"}))
    assert not h.is_aws_service(ev(userIdentity={"type": "IAMUser",
                                                 "invokedBy": "signin.amazonaws.com"}))
    assert not h.is_aws_service(ev(userIdentity={"type": "IAMUser"}))


def test_success_and_mfa() -> None:
    assert h.succeeded(ev(eventName="DeleteTrail"))
    assert not h.succeeded(ev(eventName="DeleteTrail", errorCode="AccessDenied"))
    assert not h.succeeded(ev(eventName="ConsoleLogin",
                              responseElements={"ConsoleLogin": "Failure"}))
    assert not h.succeeded(ev(eventName="PasswordUpdated",
                              responseElements={"PasswordUpdated": "Failure"}))
    assert h.succeeded(ev(eventName="ConsoleLogin", responseElements={"ConsoleLogin": "Success"}))
    assert h.mfa_used(ev(additionalEventData={"MFAUsed": "Yes"}))
    attributes = {"mfaAuthenticated": "true"}
    assert h.mfa_used(ev(userIdentity={"sessionContext": {"attributes": attributes}}))
    assert not h.mfa_used(ev(additionalEventData={"MFAUsed": "No"}))
    assert h.error_code(ev()) == ""


def test_aws_context() -> None:
    context = h.aws_context(ev(eventName="X", sourceIPAddress="198.51.100.7"))
    assert context["eventName"] == "X" and context["sourceIPAddress"] == "198.51.100.7"
    assert all(isinstance(v, str) for v in context.values())
