"""Canonical replay records: matched rows sorted, each as canonical JSON.

Contract. Records are sorted by (``eventTimeMs``, ``eventID``), ties (and null eventIDs, last)
broken by Kafka (partition, offset), so the order depends only on the records read. Each record
is its CloudTrail JSON (:func:`pipeline.mirror.json.cloudtrail_json`) re-dumped canonically:
keys sorted at every level, no spaces, UTF-8. So the same records give the same bytes.
"""

from __future__ import annotations

import json

import orjson
import pyarrow as pa

from pipeline.mirror.json import cloudtrail_json
from pipeline.replay.hot import OFFSET, PARTITION


def canonical_records(table: pa.Table) -> list[bytes]:
    """The rows of a matched table (event columns plus ``_partition``/``_offset``), sorted by
    the module's order, as canonical JSON texts."""
    if table.num_rows == 0:
        return []
    order = [("eventTimeMs", "ascending"), ("eventID", "ascending"),
             (PARTITION, "ascending"), (OFFSET, "ascending")]
    return [canonical(text) for text in cloudtrail_json(table.sort_by(order))]


def canonical(text: bytes) -> bytes:
    """One JSON text with sorted keys and no spaces. JSON orjson refuses (numbers beyond 64
    bits, NaN, lone surrogates, kept as ingested) goes through the standard library."""
    try:
        return orjson.dumps(orjson.loads(text), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        value = json.loads(text)
        return json.dumps(value, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode("utf-8", "surrogatepass")
