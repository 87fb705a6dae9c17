"""What a subscription grants: topic roles to names, the record for a request, and exactly
its ACL bindings (no WRITE, no CLUSTER, no prefixed topic grant)."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import (
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)
from pydantic import ValidationError

from pipeline.config import TopicsConfig
from pipeline.siem.model import Subscription, View, ViewFilter, ViewRedact, view_topic
from pipeline.siem.plan import (
    PlanError,
    SubscribeRequest,
    acl_bindings,
    build_subscription,
    check_name,
    describe_view,
    parse_roles,
    topic_name,
)

TOPICS = TopicsConfig(events="ev.avro", alerts="al.avro", events_json="ev.json",
                      alerts_json="al.json")


def test_topic_roles_map_to_the_configured_topic_of_each_format() -> None:
    assert [topic_name(TOPICS, r, "json") for r in ("events", "alerts")] == ["ev.json", "al.json"]
    assert [topic_name(TOPICS, r, "avro") for r in ("events", "alerts")] == ["ev.avro", "al.avro"]


def test_roles_parse_in_order_without_duplicates() -> None:
    assert parse_roles("alerts, events,alerts") == ("alerts", "events")
    for bad in ("", "events,audit", " , "):
        with pytest.raises(PlanError, match="roles are events, alerts"):
            parse_roles(bad)


@pytest.mark.parametrize("name", ["Splunk", "a.b", "-x", "", "x" * 64, "a b"])
def test_names_that_cannot_be_a_principal_group_prefix_and_topic_part_are_refused(
        name: str) -> None:
    with pytest.raises(PlanError):
        check_name(name)


def test_exactly_three_bindings_for_two_topics() -> None:
    bindings = acl_bindings("splunk", ["ev.json", "al.json"])
    assert len(bindings) == 3
    assert {(b.restype, b.name, b.resource_pattern_type) for b in bindings} == {
        (ResourceType.TOPIC, "ev.json", ResourcePatternType.LITERAL),
        (ResourceType.TOPIC, "al.json", ResourcePatternType.LITERAL),
        (ResourceType.GROUP, "splunk.", ResourcePatternType.PREFIXED),
    }
    assert {(b.principal, b.host, b.operation, b.permission_type) for b in bindings} == {
        ("User:splunk", "*", AclOperation.READ, AclPermissionType.ALLOW)}


def test_plain_subscription_grants_the_role_topics() -> None:
    req = SubscribeRequest("elastic", ("events", "alerts"), "mtls", "avro")
    sub = build_subscription(req, TOPICS, existing=None, now_ms=5)
    assert (sub.topics, sub.auth, sub.format, sub.view, sub.created_ms) == (
        ["ev.avro", "al.avro"], "mtls", "avro", None, 5)


def test_a_view_replaces_the_events_grant_and_keeps_its_key_and_creation_time() -> None:
    keys = iter(["aa" * 32, "bb" * 32])
    req = SubscribeRequest("wazuh", ("events", "alerts"), filter=ViewFilter(regions=["eu-west-1"]),
                           redact=ViewRedact(remove=["requestParameters.password"],
                                             hash_source_ip=True))
    first = build_subscription(req, TOPICS, existing=None, now_ms=1, new_key=lambda: next(keys))
    assert first.topics == [view_topic("wazuh"), "al.json"]
    assert first.view is not None and first.view.hash_key_hex == "aa" * 32
    again = build_subscription(req, TOPICS, existing=first, now_ms=99,
                               new_key=lambda: next(keys))
    assert again == first
    assert "eu-west-1" in describe_view(first) and "aa" * 32 not in describe_view(first)


def test_no_hashing_key_without_hash_source_ip() -> None:
    req = SubscribeRequest("g", ("events",), filter=ViewFilter(errors=True))
    sub = build_subscription(req, TOPICS, existing=None, now_ms=1)
    assert sub.view is not None and sub.view.hash_key_hex is None


def test_a_view_needs_json() -> None:
    req = SubscribeRequest("g", ("events",), format="avro", filter=ViewFilter(read_only=False))
    with pytest.raises(PlanError, match="--format json"):
        build_subscription(req, TOPICS, existing=None, now_ms=1)


def test_dropping_the_view_options_returns_to_the_plain_topic() -> None:
    viewed = build_subscription(SubscribeRequest("g", ("events",), filter=ViewFilter(
        accounts=["1"])), TOPICS, existing=None, now_ms=1)
    plain = build_subscription(SubscribeRequest("g", ("events",)), TOPICS, existing=viewed,
                               now_ms=2)
    assert plain == Subscription(name="g", topics=["ev.json"], auth="scram", created_ms=1)


@pytest.mark.parametrize("key", ["", "zz" * 32, "AB" * 32, "ab" * 15, "abc"])
def test_a_view_hashing_key_must_be_lower_case_hex_of_at_least_128_bits(key: str) -> None:
    with pytest.raises(ValidationError):
        View(topic=view_topic("s"), redact=ViewRedact(hash_source_ip=True), hash_key_hex=key)
    assert View(topic=view_topic("s"), redact=ViewRedact(hash_source_ip=True),
                hash_key_hex="ab" * 16).hash_key_hex == "ab" * 16
