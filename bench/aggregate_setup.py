"""Set-up for the ``aggregate`` scenario: constants, the aggregator's topics and config file,
and the two sides' 1-minute counts read back for comparison. The events are the alert bench's
(:func:`bench.alert_setup.fill`)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from contextlib import suppress
from pathlib import Path

import pyarrow.compute as pc
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from bench.aggregate_keys import SEPARATOR
from bench.alert_setup import PARTITIONS
from bench.common import BenchError
from pipeline.aggregates.config import AggregatorConfig
from pipeline.aggregates.source import read_to_end, topic_rows
from pipeline.config import load_config
from pipeline.topics import ensure_topics, topic_specs

GRACE_MS = AggregatorConfig().grace_ms
COMMIT_INTERVAL_MS = AggregatorConfig().commit_interval_ms
"""Both sides commit (outputs, state, offsets) this often: the same bound on result latency."""
ROLES = ("events", "aggregates", "insights", "health", "dlq", "aggregator_state")
RUN_DIR = Path("var") / "bench-aggregate"
WATCH_EVERY_S = 0.1
STOP_GRACE_S = 30.0
Counts = dict[tuple[str, int], int]
"""1-minute count per (``aggregate_key``, window start ms)."""


def aggregate_topics(tag: str) -> dict[str, str]:
    """Fresh topic names for every ``[topics]`` role the aggregator touches, and ``quix_out``
    for the Quix app's results."""
    return {role: f"bench.aggregate.{role}.{tag}" for role in (*ROLES, "quix_out")}


def write_config(path: Path, bootstrap: str, topics: Mapping[str, str], group: str,
                 lake_dir: Path) -> None:
    """The aggregator's TOML config: these topics (partitions as the bench's), its own group
    and transactional id, a local lake, the defaults otherwise, JSON logs at warning."""
    lines = ["[kafka]", f'bootstrap = "{bootstrap}"', "", "[topics]",
             *(f'{role} = "{topics[role]}"' for role in ROLES), f"partitions = {PARTITIONS}",
             "", "[aggregator]", f'group = "{group}"', f'transactional_id = "{group}"',
             "", "[storage]", f'lake = "file://{lake_dir}"', "",
             "[log]", 'level = "warning"', 'format = "json"', ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def create_topics(bootstrap: str, config: Path, topics: Mapping[str, str],
                  timeout_s: float = 30) -> None:
    """The aggregator's topics as ``trailpipe topics create`` makes them (compacted state and
    aggregates), and the Quix results topic; waits until every partition has a leader."""
    cfg = load_config(config, env={})
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    mine = {topics[role] for role in ROLES}
    ensure_topics(admin, [s for s in topic_specs(cfg.topics) if s.name in mine], timeout_s)
    for fut in admin.create_topics([NewTopic(topics["quix_out"], PARTITIONS, -1)],
                                   operation_timeout=timeout_s).values():
        fut.result(timeout=timeout_s)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        listed = admin.list_topics(timeout=timeout_s).topics
        if all(name in listed and listed[name].partitions
               and all(p.leader >= 0 for p in listed[name].partitions.values())
               for name in topics.values()):
            return
        time.sleep(0.2)
    raise BenchError(f"the aggregate topics have no leader everywhere after {timeout_s}s")


def delete_topics(bootstrap: str, topics: Iterable[str], groups: Iterable[str]) -> None:
    """Best effort: drop the scenario's topics, the Quix app's internal topics (named after
    its group) and the consumer groups."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    groups = list(groups)
    internal = [name for name in admin.list_topics(timeout=30).topics
                if any(f"__{g}--" in name for g in groups)]
    futures = dict(admin.delete_topics([*topics, *internal], operation_timeout=30))
    futures.update(admin.delete_consumer_groups(groups, request_timeout=30))
    for fut in futures.values():
        with suppress(KafkaException):
            fut.result(timeout=30)


def quix_internal_topics(bootstrap: str, group: str, kind: str = "repartition") -> list[str]:
    """The topics Quix made for ``group``: ``repartition__<group>--...`` (or ``changelog``)."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    return sorted(name for name in admin.list_topics(timeout=30).topics
                  if name.startswith(f"{kind}__{group}--"))


def aggregator_counts(bootstrap: str, topic: str) -> Counts:
    """The aggregator's 1-minute base counts (latest per key; corrections left out)."""
    table = topic_rows({"bootstrap.servers": bootstrap}, topic)
    rows = table.filter(pc.equal(table["window_size"], "1m")).to_pylist()
    return {(SEPARATOR.join((r["account"], r["region"], r["event_source"], r["event_name"],
                             r["outcome"], r["identity_type"])), r["window_start_ms"]): r["count"]
            for r in rows if not r["correction"]}


def quix_counts(bootstrap: str, topic: str) -> Counts:
    """The Quix app's final 1-minute counts (JSON key and ``{"start", "end", "value"}``)."""
    out: Counts = {}
    for msg in read_to_end({"bootstrap.servers": bootstrap}, topic):
        value = json.loads(msg.value() or b"null")
        out[(json.loads(msg.key() or b'""'), int(value["start"]))] = int(value["value"])
    return out


def write_disagreements(path: Path, ours: Counts, theirs: Counts, most: int = 1_000) -> None:
    """Up to ``most`` windows both emitted with different counts, as JSON lines (key, start,
    aggregator, quix), for a look after the run."""
    rows = [{"key": k[0], "start_ms": k[1], "aggregator": ours[k], "quix": theirs[k]}
            for k in sorted(ours.keys() & theirs.keys()) if ours[k] != theirs[k]][:most]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def compare(ours: Counts, theirs: Counts) -> dict[str, int]:
    """How many 1-minute windows each side emitted, how many both did, and of those how many
    disagree on the count."""
    both = ours.keys() & theirs.keys()
    return {"windows_1m": len(ours), "quix_windows_1m": len(theirs),
            "windows_compared": len(both),
            "windows_disagreeing": sum(1 for k in both if ours[k] != theirs[k])}
