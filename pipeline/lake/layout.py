"""Where things live in the lake, and the delivery notice every written object gets.

Layout (Hive partitions by *event time*, UTC)::

    events/account=<id>/region=<r>/date=YYYY-MM-DD/hour=HH/
        <topic>+<partition>+<first offset, 19 digits>.parquet
    digests/YYYY/MM/DD/YYYY-MM-DDTHH.json      one per delivery-time period, chained and signed
    digests/YYYY/MM/DD/YYYY-MM-DDTHH-MM.json   (the key names the period's start; on the hour
                                               it has no minutes, as hourly lakes always had)
    _owners/<topic>/<partition>.json           the fencing token of the partition's current writer

Object keys are deterministic (topic, partition, first offset), so a retry after a crash
overwrites the same key instead of duplicating rows.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

EVENTS_DIR = "events"
DIGESTS_DIR = "digests"
OWNERS_DIR = "_owners"
UNKNOWN = "unknown"
HOUR_MS = 3_600_000


def part_value(value: str | None) -> str:
    """A Hive partition value as it appears in an object key (``account=<this>``)."""
    # Hive partition values must not contain '/' or '='; real account ids and regions don't.
    return quote(value, safe="") if value else UNKNOWN


def object_key(account: str | None, region: str | None, event_time_ms: int, topic: str,
               partition: int, first_offset: int) -> str:
    """The key of the Parquet object holding rows of one Hive partition from one Kafka
    partition, starting at ``first_offset``."""
    t = datetime.fromtimestamp(event_time_ms / 1000, tz=UTC)
    return (f"{EVENTS_DIR}/account={part_value(account)}/region={part_value(region)}/"
            f"date={t:%Y-%m-%d}/hour={t:%H}/{topic}+{partition}+{first_offset:019d}.parquet")


def digest_key(start_ms: int) -> str:
    """The key of the digest whose period starts at ``start_ms`` (a whole UTC minute): one
    key per start instant, whatever the period, so two digests can never claim one start."""
    t = datetime.fromtimestamp(start_ms / 1000, tz=UTC)
    minutes = f"-{t:%M}" if start_ms % HOUR_MS else ""
    return f"{DIGESTS_DIR}/{t:%Y/%m/%d}/{t:%Y-%m-%dT%H}{minutes}.json"


def owner_key(topic: str, partition: int) -> str:
    return f"{OWNERS_DIR}/{topic}/{partition}.json"


def hour_start(ms: int) -> int:
    return ms - ms % HOUR_MS


@dataclass(frozen=True, slots=True)
class Delivery:
    """The notice published on ``audit.deliveries.v1`` after an object is durable, as
    CloudTrail notifies on each log file. ``lake`` is the lake URL the key is relative to."""

    lake: str
    key: str
    sha256: str
    size_bytes: int
    records: int
    topic: str
    partition: int
    first_offset: int
    last_offset: int
    oldest_event_time_ms: int
    newest_event_time_ms: int
    delivered_at_ms: int

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> Delivery:
        doc: dict[str, Any] = json.loads(data)
        return cls(**doc)
