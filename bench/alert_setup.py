"""Set-up for the ``alert`` scenario: constants, the alerter's topics and config file, generated
events encoded and keyed as the producers do, and the alerter as a subprocess."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from bench.archive_drain import end_offsets
from bench.common import BenchError, terminate
from pipeline.config import ProducerConfig
from pipeline.events.mapping import IngestMeta, to_avro
from pipeline.events.partition import event_key
from pipeline.events.wire import encode
from pipeline.kafka import producer_config
from producers.generator.engine import Generator
from producers.generator.scenarios import SCENARIOS

PARTITIONS = 6  # events, hits and state topics alike (the state topic needs >= the hits')
EVENTS = 500_000
ACCOUNTS, REGIONS = 5, 3
EVENT_TIME_RATE = 200.0  # events per second of event time for the pre-filled events
SCENARIO_EVERY = 10_000  # every attack scenario once per this many events
START_MS = 1_764_000_000_000  # fixed, so every run has the same data
SIGMA_DIR = Path("..") / "shared" / "corpus" / "sigma" / "aws_cloudtrail"  # from the repo root
RUN_DIR = Path("var") / "bench-alert"
ROLES = ("events", "alerter_hits", "alerter_state", "insights", "alerts", "health", "dlq")
WATCH_EVERY_S = 0.1
STOP_GRACE_S = 30.0
MIB = 1024 * 1024


# ---------------------------------------------------------------------------------- topics

def alert_topics(tag: str) -> dict[str, str]:
    """Fresh topic names for every role the alerter touches (by ``[topics]`` key)."""
    return {role: f"bench.alert.{role}.{tag}" for role in ROLES}


def create_topics(bootstrap: str, topics: dict[str, str], timeout_s: float = 30) -> None:
    """The alerter's topics: events/hits/state with PARTITIONS partitions (state compacted),
    the others with one; waits until every partition has a leader."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    wanted = {name: PARTITIONS if role in ROLES[:3] else 1 for role, name in topics.items()}
    new = [NewTopic(name, count, -1, config={"cleanup.policy": "compact"}
                    if name == topics["alerter_state"] else {})
           for name, count in wanted.items()]
    for fut in admin.create_topics(new, operation_timeout=timeout_s).values():
        fut.result(timeout=timeout_s)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        listed = admin.list_topics(timeout=timeout_s).topics
        if all(name in listed and len(listed[name].partitions) == count
               and all(p.leader >= 0 for p in listed[name].partitions.values())
               for name, count in wanted.items()):
            return
        time.sleep(0.2)
    raise BenchError(f"the alerter's topics have no leader everywhere after {timeout_s}s")


def delete_topics(bootstrap: str, topics: Iterable[str], groups: Iterable[str]) -> None:
    """Best effort: drop the scenario's topics and consumer groups."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    futures = dict(admin.delete_topics(list(topics), operation_timeout=30))
    if groups:
        futures.update(admin.delete_consumer_groups(list(groups), request_timeout=30))
    for fut in futures.values():
        with suppress(KafkaException):
            fut.result(timeout=30)


# ---------------------------------------------------------------------------------- events

def generator(*, start_ms: int, accounts: int, events_per_s: float,
              scenario_every: int) -> Generator:
    """The seeded generator with every attack scenario mixed in."""
    return Generator(7, accounts, REGIONS, start_ms=start_ms, scenarios=list(SCENARIOS),
                     events_per_second=events_per_s, scenario_every=scenario_every)


def encoded(records: Iterable[dict[str, object]]) -> Iterator[tuple[bytes, bytes]]:
    """``(key, value)`` per record as the producers write them: Avro, keyed account|region."""
    ingest = IngestMeta(START_MS, "bench", "bench-alert", "generated")
    for record in records:
        yield event_key(record), encode(to_avro(record, ingest=ingest))


def events_producer(bootstrap: str, client_id: str) -> Producer:
    """A producer configured as ``trailpipe produce``'s (zstd, linger, batch size)."""
    p = ProducerConfig()
    return Producer(producer_config(
        {"bootstrap.servers": bootstrap, "client.id": client_id, "log_level": 3},
        {"compression.type": p.compression, "linger.ms": str(p.linger_ms),
         "batch.size": str(p.batch_bytes)}))


class Deliveries:
    """Delivery callback counting acknowledgements and keeping the first error."""

    def __init__(self) -> None:
        self.ok = 0
        self.error: KafkaError | None = None

    def __call__(self, err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            self.ok += 1
        elif self.error is None:
            self.error = err


def produce(producer: Producer, topic: str, key: bytes, value: bytes,
            deliveries: Deliveries) -> None:
    """Produce one record, waiting for queue space when the local queue is full."""
    while True:
        try:
            producer.produce(topic, value, key, on_delivery=deliveries)
            return
        except BufferError:
            producer.poll(0.05)


def check_flushed(producer: Producer, deliveries: Deliveries, expected: int) -> None:
    remaining = producer.flush(120)
    if remaining or deliveries.error is not None or deliveries.ok != expected:
        raise BenchError(f"produce incomplete: {deliveries.ok}/{expected} acknowledged, "
                         f"{remaining} undelivered, first error: {deliveries.error}")


def fill(bootstrap: str, topic: str, events: int) -> float:
    """Generate, encode and produce ``events`` records; the seconds it took."""
    gen = generator(start_ms=START_MS, accounts=ACCOUNTS, events_per_s=EVENT_TIME_RATE,
                    scenario_every=SCENARIO_EVERY)
    producer, deliveries = events_producer(bootstrap, "bench-alert-fill"), Deliveries()
    start = time.perf_counter()
    for i, (key, value) in enumerate(encoded(gen.records(events))):
        produce(producer, topic, key, value, deliveries)
        if i % 1_000 == 0:
            producer.poll(0)
    check_flushed(producer, deliveries, events)
    elapsed = time.perf_counter() - start
    del producer
    gc.collect()  # free the producer now, not in the middle of a measurement
    return elapsed


def fill_checked(bootstrap: str, topic: str, events: int) -> tuple[float, dict[int, int]]:
    """:func:`fill`, then the topic's end offsets per partition; BenchError unless the topic
    holds exactly ``events`` records (a fresh topic is expected)."""
    fill_s = fill(bootstrap, topic, events)
    ends = end_offsets(bootstrap, topic)
    if sum(ends.values()) != events:
        raise BenchError(f"the events topic holds {sum(ends.values())}, expected {events}")
    return fill_s, ends


# ---------------------------------------------------------------------------------- alerter

def write_config(path: Path, bootstrap: str, topics: dict[str, str], group: str,
                 sigma_dir: Path) -> None:
    """The alerter's TOML config: the bench cluster, these topics, the SigmaHQ rules on top
    of the default pack, a transactional id of its own, JSON logs at warning."""
    lines = ["[kafka]", f'bootstrap = "{bootstrap}"', "", "[topics]",
             *(f'{role} = "{name}"' for role, name in topics.items()), "", "[alerter]",
             f'group = "{group}"', f'transactional_id = "{group}"',
             f'sigma_paths = ["{sigma_dir}"]', "", "[log]", 'level = "warning"',
             'format = "json"', ""]
    path.write_text("\n".join(lines), encoding="utf-8")


@dataclass(slots=True)
class Alerter:
    """A running ``trailpipe consume alerter``; its stdout (the summary) and stderr (the log)
    go to files in ``log_dir``."""

    proc: subprocess.Popen[bytes]
    stdout: Path
    log: Path
    started: float  # time.monotonic() at spawn


def _clean_env() -> dict[str, str]:
    """This environment without TRAILPIPE_* settings: the config file alone decides."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TRAILPIPE_")}


def spawn_alerter(config: Path, log_dir: Path, name: str) -> Alerter:
    trailpipe = Path(sys.executable).parent / "trailpipe"
    out_path, log_path = log_dir / f"{name}.stdout", log_dir / f"{name}.log"
    with open(out_path, "wb") as out, open(log_path, "wb") as err:
        started = time.monotonic()
        proc = subprocess.Popen([str(trailpipe), "consume", "alerter", "--config", str(config)],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                env=_clean_env(), cwd=log_dir)
    return Alerter(proc, out_path, log_path, started)


def stop_alerter(alerter: Alerter) -> str:
    """SIGTERM (the daemon commits and prints its summary), SIGKILL after a grace; its
    stdout."""
    terminate(alerter.proc, STOP_GRACE_S)
    return alerter.stdout.read_text(errors="replace")
