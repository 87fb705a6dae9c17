"""``trailpipe siem``: the subscriptions registry, and subscribe/list/rotate/revoke against a
real SASL cluster (principals, exactly three ACL bindings, credential files)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from pipeline.kafka import producer_config
from pipeline.siem.model import Subscription, View, ViewFilter, view_topic
from pipeline.siem.registry import delete_subscription, load_subscriptions, put_subscription

if TYPE_CHECKING:  # imported at run time, pytest would try to collect it as a test class
    from conftest import TestCluster

pytestmark = pytest.mark.integration


def _sub(name: str, topics: list[str], created_ms: int = 1) -> Subscription:
    return Subscription(name=name, topics=topics, auth="scram", created_ms=created_ms)


def test_registry_keeps_latest_and_honours_tombstones(
        kafka: TestCluster, make_topic: Callable[..., str], unique: str) -> None:
    topic = make_topic("subs", partitions=2, **{"cleanup.policy": "compact"})
    base = kafka.client_config()
    prod = producer_config(base, {})
    assert load_subscriptions(base, topic) == {}
    view = View(filter=ViewFilter(accounts=["111122223333"]), topic=view_topic(f"b{unique}"))
    first, second = _sub(f"a{unique}", ["audit.events.json.v1"]), _sub(f"b{unique}", ["x"])
    put_subscription(prod, topic, first)
    put_subscription(prod, topic, second)
    updated = second.model_copy(update={"topics": ["y", "z"], "view": view})
    put_subscription(prod, topic, updated)
    assert load_subscriptions(base, topic) == {first.name: first, second.name: updated}
    delete_subscription(prod, topic, first.name)
    assert load_subscriptions(base, topic) == {second.name: updated}


def test_registry_skips_unparsable_records(
        kafka: TestCluster, make_topic: Callable[..., str], unique: str) -> None:
    from kit import produce

    topic = make_topic("subs", partitions=1, **{"cleanup.policy": "compact"})
    good = _sub(f"g{unique}", ["t"])
    put_subscription(producer_config(kafka.client_config(), {}), topic, good)
    produce(kafka.bootstrap, topic, [b"{not json", b'{"name": "x"}'], key=b"bad")
    assert load_subscriptions(kafka.client_config(), topic) == {good.name: good}


def test_registry_missing_topic_is_an_error(kafka: TestCluster, unique: str) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        load_subscriptions(kafka.client_config(), f"no.such.{unique}")
