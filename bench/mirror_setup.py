"""Set-up for the ``mirror`` scenario: the mirror's topics and config file, and the one view
the second drain serves. The events are the alert bench's (:func:`bench.alert_setup.fill`)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from confluent_kafka.admin import AdminClient

from bench.alert_setup import ACCOUNTS, EVENT_TIME_RATE, PARTITIONS, SCENARIO_EVERY, START_MS
from bench.alert_setup import generator as events_generator
from pipeline.config import TopicsConfig
from pipeline.siem.model import Subscription, View, ViewFilter, ViewRedact
from pipeline.siem.registry import put_subscription
from pipeline.topics import ensure_topics, topic_specs

ROLES = ("events", "events_json", "alerts", "alerts_json", "dlq", "siem_subscriptions")
RUN_DIR = Path("var") / "bench-mirror"
VIEW_ACCOUNT_SHARE = f"1/{ACCOUNTS}"
"""The view selects one generated account of this many."""


def mirror_topics(tag: str) -> dict[str, str]:
    """Fresh topic names for every ``[topics]`` role the mirror touches, and ``view``."""
    return {role: f"bench.mirror.{role}.{tag}" for role in (*ROLES, "view")}


def _topics_config(topics: Mapping[str, str]) -> TopicsConfig:
    return TopicsConfig.model_validate({**{role: topics[role] for role in ROLES},
                                        "partitions": PARTITIONS})


def write_config(path: Path, bootstrap: str, topics: Mapping[str, str], group: str) -> None:
    """The mirror's TOML config: these topics, its own group and transactional id, the
    defaults otherwise, JSON logs at warning."""
    lines = ["[kafka]", f'bootstrap = "{bootstrap}"', "", "[topics]",
             *(f'{role} = "{topics[role]}"' for role in ROLES), "", "[mirror]",
             f'group = "{group}"', f'transactional_id = "{group}"', "",
             "[log]", 'level = "warning"', 'format = "json"', ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def create_topics(bootstrap: str, topics: Mapping[str, str], timeout_s: float = 30) -> None:
    """The mirror's topics as ``trailpipe topics create`` makes them (the subscriptions topic
    compacted) and the view's, with PARTITIONS partitions (the producers wait for leaders)."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    mine = {topics[role] for role in ROLES}
    specs = [s for s in topic_specs(_topics_config(topics)) if s.name in mine]
    json_spec = next(s for s in specs if s.name == topics["events_json"])
    ensure_topics(admin, [*specs, replace(json_spec, name=topics["view"])], timeout_s)


def put_view(bootstrap: str, topics: Mapping[str, str], name: str) -> str:
    """Register a subscription whose view holds one generated account's records without
    ``requestParameters``; returns the account."""
    account = events_generator(start_ms=START_MS, accounts=ACCOUNTS,
                               events_per_s=EVENT_TIME_RATE,
                               scenario_every=SCENARIO_EVERY).account_ids[0]
    view = View(filter=ViewFilter(accounts=[account]),
                redact=ViewRedact(remove=["requestParameters"]), topic=topics["view"])
    sub = Subscription(name=name, topics=[view.topic], auth="mtls", view=view,
                       created_ms=int(time.time() * 1000))
    put_subscription({"bootstrap.servers": bootstrap, "log_level": 3},
                     topics["siem_subscriptions"], sub)
    return account

