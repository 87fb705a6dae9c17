"""CloudTrail → CEF: adversarial values round-trip through an independent CEF reader; the
severity table; fields mapped to their CEF keys."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline import __version__
from pipeline.forward.cef import cef_line, severity

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from syslog_receivers import parse_cef

NASTY = "a|b\\c=d\ne\rf ünï 日本 \\n =\\= |"


def a_record(**over: object) -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventVersion": "1.08", "eventTime": "2024-03-01T12:34:56Z", "eventID": "id-1",
        "eventSource": "s3.amazonaws.com", "eventName": "GetObject", "awsRegion": "eu-west-1",
        "sourceIPAddress": "203.0.113.9", "userAgent": "aws-cli/2", "eventType": "AwsApiCall",
        "recipientAccountId": "123456789012", "eventCategory": "Management",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/bob",
                         "principalId": "AIDA1", "userName": "bob"},
    }
    record.update(over)
    return record


def test_adversarial_extension_values_parse_back() -> None:
    record = a_record(eventName=NASTY, userAgent=NASTY, errorCode=NASTY, errorMessage=NASTY,
                      awsRegion=NASTY, eventID=NASTY,
                      userIdentity={"type": NASTY, "arn": NASTY, "principalId": NASTY})
    header, ext = parse_cef(cef_line(record))
    assert header[:3] == ["trailpipe", "trailpipe", __version__]
    for key in ("act", "requestClientApplication", "outcome", "msg", "cs3", "externalId",
                "suser", "suid", "cs4"):
        assert ext[key] == NASTY, key
    # A header cannot hold a line break: it becomes a space (act carries the exact name).
    flat = NASTY.replace("\n", " ").replace("\r", " ")
    assert header[3] == f"s3.amazonaws.com:{flat}" and header[4] == flat
    assert header[5] == "6"  # errorCode set


def test_fields_map_to_cef_keys() -> None:
    header, ext = parse_cef(cef_line(a_record()))
    assert header[3:] == ["s3.amazonaws.com:GetObject", "GetObject", "3"]
    assert ext == {
        "rt": "1709296496000", "externalId": "id-1", "act": "GetObject",
        "cs1Label": "eventSource", "cs1": "s3.amazonaws.com",
        "cs2Label": "recipientAccountId", "cs2": "123456789012",
        "cs3Label": "awsRegion", "cs3": "eu-west-1",
        "cs4Label": "userIdentityType", "cs4": "IAMUser",
        "cs5Label": "eventType", "cs5": "AwsApiCall", "cat": "Management",
        "suser": "arn:aws:iam::123456789012:user/bob", "suid": "AIDA1",
        "src": "203.0.113.9", "requestClientApplication": "aws-cli/2", "outcome": "success"}


def test_absent_fields_and_their_labels_are_left_out() -> None:
    record = {"eventID": "x", "sourceIPAddress": "ec2.amazonaws.com", "eventTime": "bad",
              "userIdentity": {"userName": "alice"}}
    header, ext = parse_cef(cef_line(record))
    assert header[3:] == [":", "", "3"]
    assert ext == {"externalId": "x", "suser": "alice", "shost": "ec2.amazonaws.com",
                   "outcome": "success"}


@pytest.mark.parametrize(("over", "expected"), [
    ({}, 3),
    ({"errorCode": "AccessDenied"}, 6),
    ({"userIdentity": {"type": "Root"}}, 8),
    ({"eventName": "ConsoleLogin", "responseElements": {"ConsoleLogin": "Failure"}}, 8),
    ({"eventName": "ConsoleLogin", "errorMessage": "Failed authentication"}, 8),
    ({"eventName": "ConsoleLogin", "responseElements": {"ConsoleLogin": "Success"}}, 3),
    ({"userIdentity": "not an object", "responseElements": None}, 3),
])
def test_severity_table(over: dict[str, Any], expected: int) -> None:
    assert severity(a_record(**over)) == expected
