"""The SIEM acceptance site on the shared SASL + TLS cluster (``siem_cluster``): every topic
role under a name unique to one test module, created as the admin super-user; CloudTrail
records from the corpus produced with our own encoder; the JSON mirror as a real daemon
process; ``trailpipe siem`` run as a subprocess, configured by environment like a user's shell.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from kit import start_daemon
from siem_clients import Run, read_properties, wait_until
from siem_java import scram_properties

from pipeline.dev import ClusterInfo
from pipeline.events.mapping import IngestMeta, to_avro
from pipeline.events.partition import event_key
from pipeline.events.wire import encode
from pipeline.topics import ensure_topics, topic_specs
from pipeline.topics_config import TOPIC_ROLES, TopicsConfig

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus" / "cloudtrail"
LOG = logging.getLogger("siem_site")  # librdkafka logs go here instead of stderr
Record = dict[str, Any]
NOT_YET = {KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
           KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError._TIMED_OUT}
"""Errors of a group's first moments (its coordinator is being chosen or loaded)."""


def corpus_records(count: int) -> list[Record]:
    """The first ``count`` corpus records (files in name order) with a string eventID not seen
    before, so an eventID names one record."""
    out: dict[str, Record] = {}
    for path in sorted(CORPUS.glob("*/records.jsonl")):
        for line in path.read_text(encoding="utf-8").split("\n"):
            record = json.loads(line) if line.strip() else None
            event_id = record.get("eventID") if isinstance(record, dict) else None
            if isinstance(event_id, str) and event_id not in out:
                out[event_id] = record  # type: ignore[assignment]
            if len(out) == count:
                return list(out.values())
    raise AssertionError(f"the corpus at {CORPUS} has fewer than {count} distinct eventIDs")


def same(a: Any, b: Any) -> bool:
    """Equal with types (1, 1.0 and True differ), via canonical JSON text."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def assert_same_records(records: list[Record], expected: dict[str, Record], run: Run) -> None:
    """Exactly the expected records, each once, each equal (with types) to what was ingested."""
    ids = [r.get("eventID") for r in records]
    assert len(ids) == len(expected) and set(ids) == set(expected), run.describe()
    differ = [r["eventID"] for r in records if not same(r, expected[r["eventID"]])]
    assert differ == [], f"{len(differ)} records differ from the ingested ones: {differ[:5]}"


@dataclass
class Site:
    """One test module's corner of the shared cluster; ``produced``: eventID -> record, in
    the order produced to ``topics.events``."""

    cluster: ClusterInfo
    workdir: Path
    suffix: str
    produced: dict[str, Record] = field(default_factory=dict)
    mirror: subprocess.Popen[str] | None = None

    @property
    def topics(self) -> TopicsConfig:
        defaults = TopicsConfig()
        return TopicsConfig.model_validate({role: f"{getattr(defaults, role)}.{self.suffix}"
                                            for role in TOPIC_ROLES})

    @property
    def password(self) -> str:
        assert self.cluster.sasl is not None
        return self.cluster.sasl.password

    def admin_conf(self) -> dict[str, Any]:
        """The admin super-user over SASL_PLAINTEXT (librdkafka settings)."""
        return {**self.cluster.client_config(), "logger": LOG}

    def admin_properties(self) -> Path:
        """The admin super-user for Kafka's Java tools (SASL_PLAINTEXT)."""
        return scram_properties(self.workdir / "admin.properties", "SASL_PLAINTEXT", "admin",
                                self.password)

    def secrets(self, name: str) -> Path:
        return self.workdir / "secrets" / name

    def env(self) -> dict[str, str]:
        """A user's shell for ``trailpipe siem``: admin over SASL_PLAINTEXT, our topics."""
        assert self.cluster.state_dir is not None
        env = {**os.environ, "TRAILPIPE_KAFKA__BOOTSTRAP": self.cluster.bootstrap,
               "TRAILPIPE_KAFKA__SECURITY_PROTOCOL": "SASL_PLAINTEXT",
               "TRAILPIPE_KAFKA__SASL__USERNAME": "admin",
               "TRAILPIPE_KAFKA__SASL__PASSWORD": self.password,
               "TRAILPIPE_SIEM__SECRETS_DIR": str(self.workdir / "secrets"),
               "TRAILPIPE_DEV__STATE_DIR": str(self.cluster.state_dir)}
        env.update({f"TRAILPIPE_TOPICS__{role.upper()}": getattr(self.topics, role)
                    for role in TOPIC_ROLES})
        return env

    def siem(self, *args: str) -> str:
        """``trailpipe siem ARGS`` as a subprocess; its stdout (the test fails on exit != 0)."""
        argv = [str(Path(sys.executable).parent / "trailpipe"), "siem", *args]
        done = subprocess.run(argv, env=self.env(), cwd=REPO, capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, f"trailpipe siem {' '.join(args)}: {done.stderr}"
        return done.stdout

    def subscribe(self, name: str, auth: str, *view: str) -> str:
        """Subscribe ``name`` to events and alerts; return once its credential and ACLs are in
        force (they reach the broker through the metadata log)."""
        out = self.siem("subscribe", name, "--topics", "events,alerts", "--auth", auth, *view)
        wait_until(lambda: self.allowed(name), 30, f"subscription {name} to take effect")
        return out

    def allowed(self, name: str) -> bool:
        """Whether ``name``'s own client config (with a current librdkafka: the reference
        client) may read the alerts mirror's committed offsets in its group."""
        conf = {**read_properties(self.secrets(name) / "librdkafka.conf"), "logger": LOG}
        consumer = Consumer(conf)
        try:
            tps = consumer.committed([TopicPartition(self.topics.alerts_json, 0)], timeout=5)
            return all(tp.error is None for tp in tps)
        except KafkaException:
            return False
        finally:
            consumer.close()

    def create_topics(self) -> None:
        ensure_topics(AdminClient(self.admin_conf()), topic_specs(self.topics))

    def produce(self, records: list[Record]) -> None:
        """Encode with our own mapping and produce as the admin, keyed like the producers."""
        producer = Producer({**self.admin_conf(), "enable.idempotence": True,
                             "partitioner": "murmur2_random", "linger.ms": 20})
        ingest = IngestMeta(1_764_000_000_000, "test", "siem-acceptance", "corpus")
        for record in records:
            producer.produce(self.topics.events, encode(to_avro(record, ingest=ingest)),
                             event_key(record))
            self.produced[record["eventID"]] = record
        assert producer.flush(60) == 0

    def start_mirror(self) -> None:
        t = self.topics
        overrides = {"kafka.bootstrap": self.cluster.bootstrap,
                     "kafka.security_protocol": "SASL_PLAINTEXT",
                     "kafka.sasl.username": "admin", "kafka.sasl.password": self.password,
                     **{f"topics.{role}": getattr(t, role) for role in TOPIC_ROLES},
                     "mirror.group": f"mirror-{self.suffix}",
                     "mirror.transactional_id": f"mirror-{self.suffix}",
                     "mirror.views_refresh_ms": 500}
        self.mirror = start_daemon("mirror", overrides)

    def wait_mirrored(self, timeout_s: float = 90) -> None:
        """Until the mirror committed every produced record (its transactions hold the JSON
        records and the consumed offsets together)."""
        def done() -> bool:
            assert self.mirror is not None and self.mirror.poll() is None, \
                self.mirror_log()
            return self.group_lag(f"mirror-{self.suffix}", self.topics.events) == 0
        wait_until(done, timeout_s, "the mirror to commit every produced record")

    def group_lag(self, group: str, topic: str) -> int | None:
        """Offsets between ``group``'s commits and the ends of ``topic`` (read as admin);
        None while the broker cannot tell yet (:data:`NOT_YET`, or another retriable error)."""
        consumer = Consumer({**self.admin_conf(), "group.id": group})
        try:
            parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            tps = [TopicPartition(topic, p) for p in parts]
            committed = {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=10)}
            ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1]
                    for tp in tps}
        except KafkaException as exc:
            if not exc.args[0].retriable() and exc.args[0].code() not in NOT_YET:
                raise
            return None
        finally:
            consumer.close()
        return sum(end - max(committed[p], 0) for p, end in ends.items())

    def mirror_log(self) -> str:
        path = getattr(self.mirror, "log_path", None)
        return "the mirror exited:\n" + (path.read_text()[-3000:] if path else "")

    def stop_mirror(self) -> None:
        if self.mirror is not None and self.mirror.poll() is None:
            self.mirror.terminate()
            self.mirror.wait(30)
