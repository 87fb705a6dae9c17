"""Hits on the internal repartition topic: JSON values, keyed by ``target \\x1f key``, so every
hit of one window (one rule's dedup key, or one correlation's group) lands in one partition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

import orjson
import pyarrow as pa

from pipeline.model import DecodedBatch, KafkaRecord
from pipeline.rules.model import Hit

_SCHEMA = pa.schema([("value", pa.binary())])


_FIELDS = tuple(f.name for f in fields(Hit))


def hit_record(hit: Hit, topic: str) -> KafkaRecord:
    key = f"{hit.target}\x1f{hit.key}".encode()
    value = orjson.dumps({name: getattr(hit, name) for name in _FIELDS}, default=dict)
    return KafkaRecord(topic, value, key)


def parse_hit(value: bytes) -> Hit:
    """The Hit in ``value``; ValueError/TypeError when it is not one."""
    fields = orjson.loads(value)
    if not isinstance(fields, dict):
        raise ValueError("a hit is a JSON object")
    fields["more_ids"] = tuple(fields.get("more_ids") or ())
    return Hit(**fields)


class RawDecoder:
    """A BatchDecoder for JSON topics (hits, health): one ``value`` column of the raw bytes,
    parsed by the processor, which owns the per-record logic; a null value is a decode
    error."""

    def __call__(self, values: Sequence[bytes | None]) -> DecodedBatch:
        rows = [i for i, v in enumerate(values) if v is not None]
        errors = [(i, ValueError("no value")) for i, v in enumerate(values) if v is None]
        table = pa.Table.from_arrays([pa.array([values[i] for i in rows], pa.binary())],
                                     schema=_SCHEMA)
        return DecodedBatch(table=table, rows=rows, errors=errors)
