"""The Quix Streams side of the ``archive`` benchmark: run ONLY in the bench's own virtualenv
(``var/bench-venvs/quix``, see :mod:`bench.archive_bench`), never imported by the project.

What a Quix Streams user writes to land a topic of Avro events in S3 as Parquet: an
``Application`` consuming the topic from the earliest offset, a value deserializer for our wire
format (Avro single-object encoding: ``C3 01`` + 8-byte fingerprint + body, decoded with
fastavro, as Quix's own ``AvroDeserializer`` does for schemaless bodies), and the community
``S3FileSink`` with ``ParquetFormat``. The sink writes one object per topic partition per
checkpoint (``commit_interval``), then Quix commits the offsets.

Usage (argv): BOOTSTRAP TOPIC GROUP SCHEMA_PATH FINGERPRINT_HEX S3_ENDPOINT BUCKET DIRECTORY
COMPRESSION COMMIT_INTERVAL_S STATE_DIR. Runs until SIGTERM/SIGINT (Quix stops gracefully).
"""

from __future__ import annotations

import io
import json
import sys
from typing import Any

from fastavro import parse_schema, schemaless_reader
from quixstreams import Application
from quixstreams.models import Deserializer, SerializationContext
from quixstreams.models.serializers.exceptions import SerializationError
from quixstreams.sinks.community.file.formats import ParquetFormat
from quixstreams.sinks.community.file.s3 import S3FileSink

HEADER = 10  # C3 01 + 8-byte CRC-64-AVRO fingerprint


class SingleObjectAvro(Deserializer):
    """Avro single-object encoding with one known writer schema → dict."""

    def __init__(self, schema: dict[str, Any], fingerprint: bytes) -> None:
        super().__init__()
        self._schema = parse_schema(schema)
        self._prefix = b"\xc3\x01" + fingerprint

    def __call__(self, value: bytes, ctx: SerializationContext) -> Any:
        if value[:HEADER] != self._prefix:
            raise SerializationError("not single-object Avro of the expected writer schema")
        body = io.BytesIO(value)
        body.seek(HEADER)
        return schemaless_reader(body, self._schema)


def main(argv: list[str]) -> None:
    (bootstrap, topic_name, group, schema_path, fingerprint_hex, endpoint, bucket, directory,
     compression, commit_interval_s, state_dir) = argv
    with open(schema_path, encoding="utf-8") as fh:
        schema = json.load(fh)
    app = Application(broker_address=bootstrap, consumer_group=group,
                      auto_offset_reset="earliest", commit_interval=float(commit_interval_s),
                      auto_create_topics=False, state_dir=state_dir, loglevel="WARNING")
    topic = app.topic(topic_name, value_deserializer=SingleObjectAvro(
        schema, bytes.fromhex(fingerprint_hex)))
    sink = S3FileSink(bucket=bucket, directory=directory, endpoint_url=endpoint,
                      region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing",
                      format=ParquetFormat(compression=compression))  # type: ignore[arg-type]
    app.dataframe(topic).sink(sink)
    app.run()


if __name__ == "__main__":
    main(sys.argv[1:])
