"""The mirror's BatchProcessor: an events batch -> CloudTrail JSON records, and the SIEM views.

Per events table (one decoded poll of the events topic), in one pass:

* every row becomes one record on ``events_json``: the value is the row's CloudTrail record as
  CloudTrail's own JSON (:func:`~pipeline.mirror.json.cloudtrail_json`, the lossless inverse
  of the ingest mapping), the key is the source record's key (``<accountId>|<region>``, so the
  murmur2 partitioner puts it in the same partition when the partition counts match), and the
  headers are ``eventID`` and ``eventTime`` (when the record has them as strings),
  ``sourcetype=aws:cloudtrail`` and the source coordinates (``x-source-topic``,
  ``x-source-partition``, ``x-source-offset``, as dead letters name them);
* every live view selects from the same table and texts (filter, then redaction) and its rows
  go to the view's topic with the same key and headers.

An alerts table (from :func:`~consumers.mirror.alerts.decode_alerts`) becomes one record per
alert on ``alerts_json``, keyed as the source (the alert id), with the source coordinates.

A row the JSON encoder or a view rejects raises, and the Runner bisects the batch down to it
and dead-letters it; nothing here changes before a batch has succeeded (the counters are
updated last). The set of views changes only in :meth:`MirrorProcessor.tick`, between batches.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from consumers.mirror.alerts import ALERT_JSON
from consumers.mirror.live_views import LiveView, LiveViews
from pipeline.logs import get_logger
from pipeline.mirror.json import cloudtrail_json
from pipeline.model import KafkaBatch, TopicPartitionKey

log = get_logger("consumers.mirror")

SOURCETYPE: tuple[str, bytes] = ("sourcetype", b"aws:cloudtrail")
"""Splunk's sourcetype for CloudTrail records (Splunk Connect for Kafka can pass it on)."""

Header = tuple[str, bytes]
Headers = list[Header]
"""One record's headers (a list: the Kafka client takes no tuples)."""


@dataclass(frozen=True, slots=True)
class MirrorTopics:
    events_json: str
    alerts_json: str | None  # None: alerts are not mirrored


def _as_bytes(column: pa.ChunkedArray) -> list[Any]:
    """A string column as a list of bytes, nulls kept (converted in Arrow, not per row)."""
    values: list[Any] = pc.cast(column, pa.binary()).to_pylist()
    return values


def _coordinates(table: pa.Table) -> tuple[list[Header], list[Header], list[Header]]:
    """Per row: the ``x-source-topic``, ``x-source-partition`` and ``x-source-offset`` pairs
    (the topic and partition pairs are shared by the rows of a partition)."""
    topics, partitions = table["_topic"].to_pylist(), table["_partition"].to_pylist()
    topic_pair = {t: ("x-source-topic", t.encode()) for t in set(topics)}
    partition_pair = {p: ("x-source-partition", str(p).encode()) for p in set(partitions)}
    offsets = _as_bytes(pc.cast(table["_offset"], pa.string()))
    return ([topic_pair[t] for t in topics], [partition_pair[p] for p in partitions],
            [("x-source-offset", o) for o in offsets])


def source_headers(table: pa.Table) -> list[Headers]:
    """Per row: the source coordinate headers."""
    return [list(pairs) for pairs in zip(*_coordinates(table), strict=True)]


def event_headers(table: pa.Table) -> list[Headers]:
    """Per row of an events table: ``eventID``, ``eventTime`` (each only when present as a
    string), ``sourcetype`` and the source coordinates."""
    eids, times = _as_bytes(table["eventID"]), _as_bytes(table["eventTime"])
    rows = zip(eids, times, *_coordinates(table), strict=True)
    if table["eventID"].null_count or table["eventTime"].null_count:
        return [[*_present("eventID", eid), *_present("eventTime", etime), SOURCETYPE, *coords]
                for eid, etime, *coords in rows]
    return [[("eventID", eid), ("eventTime", etime), SOURCETYPE, topic, partition, offset]
            for eid, etime, topic, partition, offset in rows]


def _present(name: str, value: bytes | None) -> tuple[Header, ...]:
    return () if value is None else ((name, value),)


class MirrorProcessor:
    """See the module docstring. ``views`` is None when views are not served."""

    def __init__(self, topics: MirrorTopics, views: LiveViews | None) -> None:
        self._topics = topics
        self._live = views
        self._views: tuple[LiveView, ...] | None = None if views is not None else ()
        self.mirrored = 0
        self.alerts = 0
        self.per_view: Counter[str] = Counter()

    def process_batch(self, table: pa.Table) -> list[KafkaBatch]:
        if ALERT_JSON in table.column_names:
            return self._alerts(table)
        views = self._current_views()
        texts = cloudtrail_json(table)
        keys: list[bytes | None] = table["_key"].to_pylist()
        headers = event_headers(table)
        out = [KafkaBatch(self._topics.events_json, texts, keys, headers)]
        for live in views:
            rows = live.encoder.select(table, texts)
            out.append(KafkaBatch(live.view.topic, [text for _, text in rows],
                                  [keys[row] for row, _ in rows],
                                  [headers[row] for row, _ in rows]))
        self.mirrored += len(texts)
        for live, batch in zip(views, out[1:], strict=True):
            self.per_view[live.name] += len(batch)
        return out

    def _alerts(self, table: pa.Table) -> list[KafkaBatch]:
        topic = self._topics.alerts_json
        if topic is None:
            raise ValueError("an alerts batch, but alerts are not mirrored")
        texts: list[bytes] = table[ALERT_JSON].to_pylist()
        self.alerts += len(texts)
        return [KafkaBatch(topic, texts, table["_key"].to_pylist(), source_headers(table))]

    def _current_views(self) -> tuple[LiveView, ...]:
        if self._views is None:  # the first batch: views registered before the start count
            assert self._live is not None
            self._views = self._live.first()
            log.info("views_served", views=[v.name for v in self._views])
        return self._views

    def tick(self, now_ms: int) -> Iterable[Any]:
        """Swap in a new set of views, if the registry thread published one."""
        if self._live is not None and self._views is not None:
            new = self._live.take()
            if new is not None:
                self._views = new
                log.info("views_served", views=[v.name for v in new])
        return ()

    def pending_low_offsets(self) -> Mapping[TopicPartitionKey, int]:
        return {}

    def drop(self, partitions: Collection[TopicPartitionKey]) -> None:
        return None

    def stats(self) -> dict[str, Any]:
        """Records produced (a batch re-read after an aborted transaction counts again)."""
        return {"mirrored": self.mirrored, "alerts_mirrored": self.alerts,
                "views": {name: self.per_view[name] for name in sorted(self.per_view)}}
