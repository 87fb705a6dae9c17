"""The event model: CloudTrail record <-> ApiCallEvent Avro datum <-> Kafka message bytes.

- :mod:`~pipeline.events.mapping`: ``to_avro`` / ``from_avro`` (lossless), eventTime policy;
- :mod:`~pipeline.events.wire`: Avro single-object encoding, headers;
- :mod:`~pipeline.events.partition`: ``"<account>|<region>"`` keys, Kafka's murmur2 partitioner;
- :mod:`~pipeline.events.schemas`: the ``schemas/*.avsc`` registry, by fingerprint.
"""

from pipeline.events.errors import (
    BadMagicError,
    CorruptBodyError,
    EventError,
    InvalidDatum,
    InvalidRecord,
    TruncatedBodyError,
    UnknownSchemaError,
    WireFormatError,
)
from pipeline.events.mapping import (
    IngestMeta,
    effective_time_ms,
    from_avro,
    ingest_of,
    parse_event_time,
    to_avro,
)
from pipeline.events.partition import (
    event_key,
    make_key,
    murmur2,
    partition_for,
    partition_for_account,
)
from pipeline.events.schemas import (
    API_CALL_EVENT,
    SchemaEntry,
    SchemaRegistry,
    default_registry,
)
from pipeline.events.wire import CONTENT_TYPE, decode, encode, headers_for, writer_of

__all__ = [
    "API_CALL_EVENT",
    "CONTENT_TYPE",
    "BadMagicError",
    "CorruptBodyError",
    "EventError",
    "IngestMeta",
    "InvalidDatum",
    "InvalidRecord",
    "SchemaEntry",
    "SchemaRegistry",
    "TruncatedBodyError",
    "UnknownSchemaError",
    "WireFormatError",
    "decode",
    "default_registry",
    "effective_time_ms",
    "encode",
    "event_key",
    "from_avro",
    "headers_for",
    "ingest_of",
    "make_key",
    "murmur2",
    "parse_event_time",
    "partition_for",
    "partition_for_account",
    "to_avro",
    "writer_of",
]
