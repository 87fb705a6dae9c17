"""The Quix Streams side of the ``aggregate`` benchmark: run ONLY in the bench's own virtualenv
(``var/bench-venvs/quix``, see :mod:`bench.archive_setup`), never imported by the project.

What a Quix Streams user writes for a 1-minute tumbling count by (account, region,
eventSource, eventName, outcome, identity type) of a topic of Avro events keyed by
account|region: the events decoded as :mod:`bench.quix_app` decodes them (single-object Avro,
fastavro), event time from ``eventTimeMs`` (a ``timestamp_extractor``), the value reduced to
the count key, ``group_by`` that key (Quix windows count per message key, and re-keying a
multi-partition topic goes through a repartition topic), ``tumbling_window(60 s, grace)``,
``.count()``, ``.final()``, results to a topic (JSON). Late messages (beyond grace) are
counted, not logged. Defaults otherwise: at-least-once, RocksDB state with changelog topics,
and windows closed per key (``closing_strategy="key"``): a key's window closes when a later
message of that key arrives. Closing by the partition's event time (as the aggregator's
per-partition watermark does) drops about half the events as late here, because each
repartition partition interleaves six source partitions read minutes of event time apart;
per key the order holds (a key's messages all come from one source partition).

Usage (argv): BOOTSTRAP TOPIC GROUP SCHEMA_PATH FINGERPRINT_HEX OUTPUT_TOPIC GRACE_MS
COMMIT_INTERVAL_S STATE_DIR. Runs until SIGTERM/SIGINT, then prints ``{"late_dropped": n}``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

# Run as a script, so its own directory (bench/) is on sys.path and the repo root is not.
from aggregate_keys import aggregate_key, event_time_ms
from quix_app import SingleObjectAvro
from quixstreams import Application

WINDOW_MS = 60_000


def main(argv: list[str]) -> None:
    (bootstrap, topic_name, group, schema_path, fingerprint_hex, output, grace_ms,
     commit_interval_s, state_dir) = argv
    with open(schema_path, encoding="utf-8") as fh:
        schema = json.load(fh)
    late = 0

    def on_late(*_: Any) -> bool:
        nonlocal late
        late += 1
        return False  # counted; no log line per late message

    app = Application(broker_address=bootstrap, consumer_group=group,
                      auto_offset_reset="earliest", commit_interval=float(commit_interval_s),
                      state_dir=state_dir, loglevel="WARNING")
    events = app.topic(topic_name, value_deserializer=SingleObjectAvro(
        schema, bytes.fromhex(fingerprint_hex)),
        timestamp_extractor=lambda value, _headers, ts, _type: event_time_ms(value, ts))
    results = app.topic(output, key_serializer="json", value_serializer="json")
    sdf = app.dataframe(events).apply(aggregate_key)
    sdf = sdf.group_by(lambda key: key, name="aggregate-key")
    sdf = (sdf.tumbling_window(WINDOW_MS, grace_ms=int(grace_ms), on_late=on_late)
           .count().final())
    sdf.to_topic(results)
    app.run()
    print(json.dumps({"late_dropped": late}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
