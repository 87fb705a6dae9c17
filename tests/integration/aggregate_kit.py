"""Helpers for the aggregator's integration tests: its topics and config, the daemon in- or
out-of-process, the committed aggregates read back, and the brute-force recount they must equal.
"""

from __future__ import annotations

import subprocess
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kit import read_all, start_daemon

from pipeline.aggregates.cells import aggregate_key
from pipeline.aggregates.table import AGGREGATE
from pipeline.config import load_config
from pipeline.daemon import Context, build_registered
from pipeline.events.mapping import parse_event_time
from pipeline.events.partition import event_key, make_key, partition_for
from pipeline.events.records import decode_record

WINDOWS_MS = {"1m": 60_000, "1h": 3_600_000}
DIMS = ("account", "region", "event_source", "event_name", "outcome", "identity_type")


def aggregator_topics(make_topic: Callable[..., str], partitions: int = 3) -> dict[str, str]:
    """Fresh topics for every role the aggregator touches (by ``[topics]`` key)."""
    return {"events": make_topic("events", partitions),
            "aggregates": make_topic("aggregates", 2, **{"cleanup.policy": "compact"}),
            "aggregator_state": make_topic("aggstate", partitions,
                                           **{"cleanup.policy": "compact"}),
            "insights": make_topic("insights", 1), "health": make_topic("health", 1),
            "dlq": make_topic("dlq", 1)}


def overrides(bootstrap: str, topics: dict[str, str], unique: str, lake: str,
              health: dict[str, Any] | None = None, **aggregator: Any) -> dict[str, Any]:
    return {"kafka.bootstrap": bootstrap, "storage.lake": lake,
            **{f"health.{k}": v for k, v in (health or {}).items()},
            **{f"topics.{role}": name for role, name in topics.items()},
            "aggregator.group": f"aggregator-{unique}",
            "aggregator.transactional_id": f"agg-tx-{unique}",
            **{f"aggregator.{k}": v for k, v in aggregator.items()}}


def run_aggregator(bootstrap: str, topics: dict[str, str], unique: str, lake: str, *,
                   idle_exit_s: float = 6.0, **aggregator: Any) -> dict[str, Any]:
    """Run the aggregator in this process until idle; its summary."""
    cfg = load_config(env={}, overrides=overrides(bootstrap, topics, unique, lake, **aggregator))
    daemon = build_registered("aggregator", Context(cfg, bootstrap))
    assert daemon.startup_problems() == []
    stats = daemon.run(idle_exit_s=idle_exit_s)
    return daemon.summary(stats)


def start_aggregator(bootstrap: str, topics: dict[str, str], unique: str, lake: str, *,
                     idle_exit_s: float | None = None, health: dict[str, Any] | None = None,
                     **aggregator: Any) -> subprocess.Popen[str]:
    """The aggregator as a real process (so it can be SIGKILLed)."""
    return start_daemon("aggregator",
                        overrides(bootstrap, topics, unique, lake, health, **aggregator),
                        idle_exit_s=idle_exit_s)


def committed_aggregates(bootstrap: str, topic: str) -> list[tuple[str, dict[str, Any]]]:
    """(key, datum) of every aggregate a read_committed reader sees, in topic order."""
    return [((m.key() or b"").decode(), decode_record(AGGREGATE, m.value()))
            for m in read_all(bootstrap, topic, timeout_s=60)]


@dataclass(slots=True)
class Tally:
    count: int = 0
    principals: Counter[str] = field(default_factory=Counter)
    source_ips: Counter[str] = field(default_factory=Counter)


Key = tuple[str, int, tuple[str, ...]]


def recount(records: Iterable[dict[str, Any]]) -> dict[Key, Tally]:
    """The brute-force truth: every window and key of ``records`` (all with an eventTime), one
    record at a time, by the definitions of :mod:`pipeline.aggregates.columns` (re-stated
    here, not imported)."""
    out: dict[Key, Tally] = defaultdict(Tally)
    for r in records:
        ident = r.get("userIdentity") or {}
        time_ms = parse_event_time(r)[0]
        assert time_ms is not None
        dims = (r.get("recipientAccountId") or ident.get("accountId") or "",
                r.get("awsRegion") or "", r.get("eventSource") or "", r.get("eventName") or "",
                r.get("errorCode") or "OK", ident.get("type") or "")
        principal = ident.get("arn") or ident.get("invokedBy") or ident.get("principalId")
        for size, size_ms in WINDOWS_MS.items():
            tally = out[(size, time_ms - time_ms % size_ms, dims)]
            tally.count += 1
            if principal is not None:
                tally.principals[principal] += 1
            if r.get("sourceIPAddress") is not None:
                tally.source_ips[r["sourceIPAddress"]] += 1
    return dict(out)


def closed_windows(truth: dict[Key, Tally], records: Iterable[dict[str, Any]], grace_ms: int,
                   partitions: int) -> dict[Key, Tally]:
    """The windows of ``truth`` the aggregator must have emitted: those whose end the
    watermark of their partition (max eventTime there - grace) reached."""
    max_ms: dict[int, int] = {}
    for r in records:
        p = partition_for(event_key(r), partitions)
        max_ms[p] = max(max_ms.get(p, 0), parse_event_time(r)[0] or 0)
    return {k: v for k, v in truth.items()
            if k[1] + WINDOWS_MS[k[0]] <= max_ms[partition_for(make_key(*k[2][:2]), partitions)]
            - grace_ms}


def merged(records: list[tuple[str, dict[str, Any]]]) -> tuple[dict[Key, Tally], Counter[str]]:
    """Latest per Kafka key, then a window's base and corrections summed; also how often each
    key was written (a base key written twice is a window emitted twice)."""
    writes: Counter[str] = Counter(key for key, _ in records)
    latest = dict(records)
    out: dict[Key, Tally] = defaultdict(Tally)
    for key, d in latest.items():
        assert aggregate_key(d) == key
        tally = out[(d["window_size"], d["window_start_ms"], tuple(d[k] for k in DIMS))]
        tally.count += d["count"]
        tally.principals.update({p["value"]: p["count"] for p in d["principals"]})
        tally.source_ips.update({p["value"]: p["count"] for p in d["source_ips"]})
    return dict(out), writes
