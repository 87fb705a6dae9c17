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
from pipeline.model import KafkaRecord, TopicPartitionKey

log = get_logger("consumers.mirror")

SOURCETYPE = ("sourcetype", b"aws:cloudtrail")
"""Splunk's sourcetype for CloudTrail records (Splunk Connect for Kafka can pass it on)."""

Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class MirrorTopics:
    events_json: str
    alerts_json: str | None  # None: alerts are not mirrored


def _as_bytes(column: pa.ChunkedArray) -> list[Any]:
    """A column as a list of bytes (strings and integers via their text), nulls kept."""
    if not pa.types.is_string(column.type) and not pa.types.is_binary(column.type):
        column = pc.cast(column, pa.string())
    values: list[Any] = pc.cast(column, pa.binary()).to_pylist()
    return values


def source_headers(table: pa.Table) -> list[list[tuple[str, bytes]]]:
    """Per row: the source coordinate headers."""
    return [[("x-source-topic", t), ("x-source-partition", p), ("x-source-offset", o)]
            for t, p, o in zip(_as_bytes(table["_topic"]), _as_bytes(table["_partition"]),
                               _as_bytes(table["_offset"]), strict=True)]


def event_headers(table: pa.Table) -> list[Headers]:
    """Per row of an events table: ``eventID``, ``eventTime`` (each only when present as a
    string), ``sourcetype`` and the source coordinates."""
    out: list[Headers] = []
    for eid, etime, coords in zip(_as_bytes(table["eventID"]), _as_bytes(table["eventTime"]),
                                  source_headers(table), strict=True):
        head = [("eventID", eid)] if eid is not None else []
        if etime is not None:
            head.append(("eventTime", etime))
        out.append((*head, SOURCETYPE, *coords))
    return out


class MirrorProcessor:
    """See the module docstring. ``views`` is None when views are not served."""

    def __init__(self, topics: MirrorTopics, views: LiveViews | None) -> None:
        self._topics = topics
        self._live = views
        self._views: tuple[LiveView, ...] | None = None if views is not None else ()
        self.mirrored = 0
        self.alerts = 0
        self.per_view: Counter[str] = Counter()

    def process_batch(self, table: pa.Table) -> list[KafkaRecord]:
        if ALERT_JSON in table.column_names:
            return self._alerts(table)
        views = self._current_views()
        texts = cloudtrail_json(table)
        keys: list[bytes | None] = table["_key"].to_pylist()
        headers = event_headers(table)
        topic = self._topics.events_json
        out = [KafkaRecord(topic, text, key, head)
               for text, key, head in zip(texts, keys, headers, strict=True)]
        selected: list[tuple[str, int]] = []
        for live in views:
            rows = live.encoder.select(table, texts)
            out += [KafkaRecord(live.view.topic, text, keys[row], headers[row])
                    for row, text in rows]
            selected.append((live.name, len(rows)))
        self.mirrored += len(texts)
        for name, count in selected:
            self.per_view[name] += count
        return out

    def _alerts(self, table: pa.Table) -> list[KafkaRecord]:
        topic = self._topics.alerts_json
        if topic is None:
            raise ValueError("an alerts batch, but alerts are not mirrored")
        texts: list[bytes] = table[ALERT_JSON].to_pylist()
        keys: list[bytes | None] = table["_key"].to_pylist()
        out = [KafkaRecord(topic, text, key, tuple(coords))
               for text, key, coords in zip(texts, keys, source_headers(table), strict=True)]
        self.alerts += len(out)
        return out

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
