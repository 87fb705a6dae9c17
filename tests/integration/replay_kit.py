"""Helpers for the acceptance tests of ``trailpipe replay`` against third-party clients: the CLI
as a process, kcat (the Debian package, librdkafka 2.0.2) reading raw values that our own Avro
decoder then reads, Kafka's ``kafka-consumer-groups`` from the dev cluster's jars, and a file
lake built from the topic's records exactly as the archiver builds its objects."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from siem_clients import require
from siem_java import java_argv

from pipeline.events import wire
from pipeline.events.mapping import IngestMeta, parse_event_time, to_avro
from pipeline.events.partition import event_key

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "cloudtrail"
INGEST = IngestMeta(1_764_000_000_000, "test", "replay-acceptance", "records.jsonl")
CONSUMER_GROUPS = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
KEEP = {"retention.ms": "-1"}
"""Topic config for records timestamped in the past: with the default 7-day retention the
broker's periodic retention check (every 5 min) deletes them in the middle of a test."""
Row = tuple[dict[str, Any], int]
"""A CloudTrail record and the Kafka timestamp (epoch ms) it is produced with."""


def timed_corpus() -> list[dict[str, Any]]:
    """The corpus records that have a usable eventTime, in file order."""
    return [r for path in sorted(CORPUS.glob("*/records.jsonl"))
            for line in path.read_text().splitlines() if line.strip()
            for r in [json.loads(line)] if parse_event_time(r)[0] is not None]


def event_ms(record: dict[str, Any]) -> int:
    ms = parse_event_time(record)[0]
    assert ms is not None, record
    return ms


def iso_z(ms: int) -> str:
    """CloudTrail's time format, with milliseconds."""
    moment = datetime.fromtimestamp(ms // 1000, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def produce_rows(client_conf: dict[str, Any], topic: str, rows: list[Row]) -> None:
    """Each record keyed account|region with murmur2 (as our producers), in list order, with
    its given Kafka timestamp; every delivery waited for."""
    producer = Producer({**client_conf, "enable.idempotence": True,
                         "partitioner": "murmur2_random", "linger.ms": 5})
    for record, timestamp_ms in rows:
        producer.produce(topic, wire.encode(to_avro(record, ingest=INGEST)),
                         key=event_key(record), timestamp=timestamp_ms)
    assert producer.flush(30) == 0


@contextlib.contextmanager
def topic_for_module(client_conf: dict[str, Any], prefix: str, partitions: int
                     ) -> Iterator[str]:
    """A uniquely named topic for one test module, deleted afterwards. Kept forever
    (:data:`KEEP`): the records carry their event times as Kafka timestamps."""
    admin = AdminClient(client_conf)
    name = f"test.{prefix}.{uuid.uuid4().hex[:10]}"
    admin.create_topics([NewTopic(name, partitions, 1, config=KEEP)])[name].result(timeout=30)
    try:
        yield name
    finally:
        with contextlib.suppress(Exception):  # cleanup must not hide the test's result
            admin.delete_topics([name], operation_timeout=30)[name].result(timeout=30)


def trailpipe(*args: str, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[bytes]:
    """``trailpipe ARGS`` as a process (JSON logs on stderr)."""
    return subprocess.run([sys.executable, "-m", "pipeline.cli.app", *args],
                          capture_output=True, timeout=120, check=False,
                          env={**os.environ, "TRAILPIPE_LOG__FORMAT": "json", **(env or {})})


def summary_of(result: subprocess.CompletedProcess[bytes]) -> dict[str, Any]:
    """The JSON summary ``trailpipe replay`` prints last on stderr."""
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    doc: dict[str, Any] = json.loads(result.stderr.decode().strip().splitlines()[-1])
    return doc


def event_ids(jsonl: bytes) -> list[str]:
    """The eventIDs of JSON lines, sorted (a record without one counts as "")."""
    return sorted(str(json.loads(line).get("eventID") or "") for line in jsonl.splitlines())


@dataclass(frozen=True)
class KcatRecord:
    partition: int
    offset: int
    timestamp_ms: int
    value: bytes

    def datum(self) -> dict[str, Any]:
        """The value read by our Avro decoder (single-object encoding)."""
        return wire.decode(self.value)


def kcat(bootstrap: str, topic: str, *offsets: str) -> list[KcatRecord]:
    """``kcat -C -e`` with the given ``-o`` arguments (``s@MS``, ``e@MS``, ``beginning``):
    every record it prints, values kept as raw bytes. Each record is printed as a header line
    ``partition offset timestamp length`` followed by exactly ``length`` value bytes."""
    argv = [require("kcat", "kcat"), "-C", "-q", "-e", "-b", bootstrap, "-t", topic,
            "-f", "%p %o %T %S\n%s"]
    for where in offsets:
        argv += ["-o", where]
    run = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr.decode()
    records: list[KcatRecord] = []
    data, at = run.stdout, 0
    while at < len(data):
        end = data.index(b"\n", at)
        partition, offset, timestamp_ms, length = (int(x) for x in data[at:end].split())
        records.append(KcatRecord(partition, offset, timestamp_ms,
                                  data[end + 1:end + 1 + length]))
        at = end + 1 + length
    return records


def consumer_groups(bootstrap: str, *args: str) -> list[str]:
    """``kafka-consumer-groups --bootstrap-server B ARGS`` (Kafka's own tool, from the dev
    cluster's jars): its stdout lines."""
    run = subprocess.run(java_argv(CONSUMER_GROUPS, ["--bootstrap-server", bootstrap, *args]),
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    return run.stdout.splitlines()


def describe_group(bootstrap: str, group: str) -> list[tuple[str, ...]]:
    """``kafka-consumer-groups --describe --group G``: its rows (group, topic, partition,
    current offset, log-end offset, lag, consumer id, host, client id), sorted."""
    lines = consumer_groups(bootstrap, "--describe", "--group", group)
    rows = sorted(tuple(line.split()) for line in lines if line.split()[:1] == [group])
    assert rows, f"kafka-consumer-groups printed no offsets of {group}: {lines}"
    return rows


def file_lake(records: list[KcatRecord], topic: str, root: Path) -> str:
    """A file lake (URL) of ``records``: objects built and keyed as the archiver builds them,
    with each record's real partition, offset and Kafka timestamp."""
    from consumers.archiver.objects import build_objects
    from pipeline.lake.columns import to_table
    from pipeline.lake.config import ArchiverConfig

    by_partition: dict[int, list[KcatRecord]] = defaultdict(list)
    for record in records:
        by_partition[record.partition].append(record)
    for partition, part in by_partition.items():
        table = to_table([r.datum() for r in part], partition=partition,
                         offsets=[r.offset for r in part],
                         timestamps_ms=[r.timestamp_ms for r in part])
        for obj in build_objects(table, topic=topic, partition=partition, cfg=ArchiverConfig()):
            path = root / obj.key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(obj.data)
    return f"file://{root}"


def lake_event_ids(lake: str, where: str) -> list[str]:
    """``trailpipe lake query`` for the eventIDs of the rows ``where`` keeps, sorted."""
    result = trailpipe("lake", "query", "--lake", lake, "--format", "json",
                       f"SELECT coalesce(eventid, '') AS id FROM cloudtrail WHERE {where}")
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    return sorted(json.loads(line)["id"] for line in result.stdout.splitlines())
