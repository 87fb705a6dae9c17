"""The alerts side of the mirror: a batch decoder turning Alert records into their JSON.

Alerts are few (an alerter emits one per rule match window), so each value is decoded on its
own with :func:`~pipeline.events.records.decode_record` and dumped with orjson; the table has
one column, :data:`ALERT_JSON` (binary). A value that is not an Alert is reported as the
value's decode error (the Runner dead-letters it).
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import pyarrow as pa

from pipeline.events.records import decode_record
from pipeline.model import DecodedBatch
from pipeline.rules.alert import ALERT

ALERT_JSON = "alert_json"
"""The column holding each alert as JSON (the Alert record's own field names)."""


def alert_json(value: bytes | None) -> bytes:
    """The JSON of one Alert record (RecordDecodeError when ``value`` is not one)."""
    return orjson.dumps(decode_record(ALERT, value))


def decode_alerts(values: Sequence[bytes | None]) -> DecodedBatch:
    """A :class:`~pipeline.model.BatchDecoder` for the alerts topic (see the module
    docstring)."""
    texts: list[bytes] = []
    rows: list[int] = []
    errors: list[tuple[int, Exception]] = []
    for index, value in enumerate(values):
        try:
            texts.append(alert_json(value))
        except ValueError as exc:  # RecordDecodeError: poison, dead-lettered
            errors.append((index, exc))
        else:
            rows.append(index)
    table = pa.table({ALERT_JSON: pa.array(texts, pa.binary())})
    return DecodedBatch(table, rows, errors)
