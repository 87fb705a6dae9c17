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

ORDER = [("eventTimeMs", "ascending"), ("eventID", "ascending"), (PARTITION, "ascending"),
         (OFFSET, "ascending")]


def sorted_rows(table: pa.Table) -> pa.Table:
    """The rows of a matched table (event columns plus ``_partition``/``_offset``) in the
    module's order."""
    return table.sort_by(ORDER) if table.num_rows else table


def canonical_records(table: pa.Table) -> list[bytes]:
    """The rows of a matched table, sorted by the module's order, as canonical JSON texts."""
    return json_records(sorted_rows(table))


def json_records(ordered: pa.Table) -> list[bytes]:
    """The rows of an already sorted table as canonical JSON texts, in its order."""
    if ordered.num_rows == 0:
        return []
    return [canonical(text) for text in cloudtrail_json(ordered)]


def canonical(text: bytes) -> bytes:
    """One JSON text with sorted keys and no spaces. JSON orjson refuses (numbers beyond 64
    bits, NaN, lone surrogates, kept as ingested) goes through the standard library."""
    try:
        return orjson.dumps(orjson.loads(text), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        value = json.loads(text)
        return json.dumps(value, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode("utf-8", "surrogatepass")
