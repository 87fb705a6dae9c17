"""The event view native rules get: forgiving key lookups, JSON-text members, deep_get."""

from __future__ import annotations

import pytest

from pipeline.rules.native.event import CloudTrailEvent, deep_get

RECORD = {"eventName": "PutRolePolicy", "userIdentity": {"type": "IAMUser", "userName": "ana"},
          "requestParameters": '{"roleName": "app", "tags": [{"key": "k"}]}',
          "responseElements": None, "readOnly": False}


def test_keys_match_exactly_then_case_insensitively() -> None:
    event = CloudTrailEvent(RECORD)
    assert event["eventName"] == event["EVENTNAME"] == event.get("eventname") == "PutRolePolicy"
    assert "useridentity" in event
    assert "nope" not in event


def test_absent_keys_give_the_default_every_time() -> None:
    event = CloudTrailEvent(RECORD)
    assert event.get("errorCode") is None
    assert event.get("errorCode", "") == ""
    assert event.get("errorCode", 7) == 7
    with pytest.raises(KeyError):
        event["errorCode"]
    assert event.get("readOnly", True) is False


def test_nested_objects_and_json_text_are_views() -> None:
    event = CloudTrailEvent(RECORD)
    params = event["requestParameters"]
    assert isinstance(params, CloudTrailEvent)
    assert params["ROLENAME"] == "app"
    assert event["requestParameters"] is params  # converted once
    assert params["tags"][0]["KEY"] == "k"
    assert event.deep_get("userIdentity", "UserName") == "ana"
    assert event.deep_get("responseElements", "x", default="d") == "d"
    assert event.deep_get("eventName", "x") is None


def test_module_deep_get_takes_any_mapping() -> None:
    assert deep_get(RECORD, "requestParameters", "roleName") == "app"
    assert CloudTrailEvent(RECORD).raw() is RECORD
    assert len(CloudTrailEvent(RECORD)) == len(RECORD)
    assert list(CloudTrailEvent(RECORD)) == list(RECORD)
